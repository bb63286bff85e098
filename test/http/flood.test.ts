import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { request, type IncomingMessage } from 'node:http';
import { connect, createServer as createTcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import express from 'express';
import { pino } from 'pino';
import { AssetStore } from '../../server/assets/builds.js';
import { createHttpApp } from '../../server/http/app.js';
import { listenHttp } from '../../server/http/limits.js';
import { createStatusRouter } from '../../server/http/status.js';
import { silentLogger } from '../../server/log.js';
import { serve, type RunningServer } from '../../server/serve.js';
import type { HostStatus } from '../../server/status/snapshot.js';
import { cliPath, ensureTestBuild } from '../support/build.js';

/**
 * One client cannot take HTTP down: connection floods from many sockets
 * and addresses, a server whose descriptors run out, a thousand live
 * status pages at once, and one that never reads. Real sockets on loopback
 * (127.0.0.0/8: every flood address is another 127.x address).
 */

let work: string;

before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'rackboot-flood-'));
});

after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

async function freePort(kind: 'tcp' | 'udp'): Promise<number> {
  if (kind === 'udp') {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const { port } = socket.address();
    socket.close();
    return port;
  }
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Sockets that connect and send nothing; `closedByServer` counts those the server closed. */
class Flood {
  readonly sockets: Socket[] = [];
  closedByServer = 0;
  private ending = false;

  async open(port: number, localAddress: string, count: number): Promise<void> {
    await Promise.all(
      Array.from(
        { length: count },
        () =>
          new Promise<void>((resolve) => {
            const socket = connect({ port, host: '127.0.0.1', localAddress });
            this.sockets.push(socket);
            socket.on('error', () => undefined);
            socket.resume(); // to see the server's end of it
            socket.once('close', () => {
              if (!this.ending) this.closedByServer += 1;
              resolve();
            });
            socket.once('connect', () => resolve());
          }),
      ),
    );
  }

  get stillOpen(): number {
    return this.sockets.length - this.closedByServer;
  }

  end(): void {
    this.ending = true;
    for (const socket of this.sockets) socket.destroy();
  }
}

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(50);
  }
}

/** One GET on a connection of its own (no keep-alive), from `localAddress`. */
function get(port: number, urlPath: string, localAddress = '127.0.0.1'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: urlPath, localAddress, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('connection floods: past the per-address and total caps sockets are closed on arrival, idle ones time out, and the server keeps answering', async () => {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info', base: undefined }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const dir = path.join(work, 'serve');
  await mkdir(path.join(dir, 'profiles'), { recursive: true });
  const httpPort = await freePort('tcp');
  const running: RunningServer = await serve({
    interfaceName: 'lo',
    address: '127.0.0.1',
    dhcp: 'off',
    dns: [],
    leaseSeconds: 3600,
    profiles: path.join(dir, 'profiles'),
    assets: path.join(dir, 'assets'),
    state: path.join(dir, 'state'),
    httpPort,
    tftpPort: await freePort('udp'),
    dhcpPort: 67,
    httpLimits: {
      maxConnections: 60,
      maxConnectionsPerAddress: 20,
      headersTimeoutMs: 1500,
      requestTimeoutMs: 3000,
      keepAliveTimeoutMs: 500,
      checkIntervalMs: 200,
    },
    log,
  });
  const flood = new Flood();
  try {
    // One address: 20 stay, 30 are closed at once; other addresses are still served.
    await flood.open(httpPort, '127.0.0.2', 50);
    await until(() => flood.closedByServer === 30, '30 sockets past the per-address cap closed');
    assert.equal(flood.stillOpen, 20);
    assert.equal((await get(httpPort, '/boot.ipxe')).status, 200, 'another address is served while one is at its cap');

    // More addresses: the total cap holds (the 20 from 127.0.0.2 stay open).
    for (const address of ['127.0.0.3', '127.0.0.4', '127.0.0.5']) await flood.open(httpPort, address, 20);
    await delay(100);
    assert.ok(flood.stillOpen <= 60, `${flood.stillOpen} flood connections open, the total cap is 60`);

    // They send nothing: the headers timeout closes every one of them, and the server answers again.
    await until(() => flood.stillOpen === 0, 'the idle flood connections to be closed by the server');
    assert.equal((await get(httpPort, '/boot.ipxe')).status, 200);
    const text = (await get(httpPort, '/metrics')).body;
    const perAddress = Number(/rackboot_http_connections_refused_total\{cap="per-address"\} (\d+)/.exec(text)?.[1] ?? 0);
    const total = Number(/rackboot_http_connections_refused_total\{cap="total"\} (\d+)/.exec(text)?.[1] ?? 0);
    assert.equal(perAddress, 30);
    assert.ok(total >= 20, `${total} connections refused at the total cap`);
    // Counted, and logged as a summary: not one line per refused connection.
    const refusedLines = lines.filter((line) => line.event === 'http-connection-refused');
    assert.ok(refusedLines.length >= 1 && refusedLines.length <= 2, `${refusedLines.length} log lines for ${perAddress + total} refused connections`);
  } finally {
    flood.end();
    await running.close();
  }
});

test('an HTTP port that is taken makes the server fail to start, loudly', async () => {
  const taken = createTcpServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const port = (taken.address() as { port: number }).port;
  try {
    await assert.rejects(listenHttp(express(), { port, address: '127.0.0.1', log: silentLogger() }), /http: cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE/);
  } finally {
    await new Promise((resolve) => taken.close(resolve));
  }
});

test('the timeouts bound receiving a request only: a slow reader gets the whole image', async () => {
  const assets = new AssetStore(await ensureTestBuild());
  const build = (await assets.current())!;
  const iso = build.manifest.files.find((file) => file.name === 'rackboot.iso')!;
  const app = createHttpApp({ assets, lookupProfile: () => undefined, endpoints: { address: '127.0.0.1', httpPort: 80 }, log: silentLogger() });
  const http = await listenHttp(app, {
    port: 0,
    address: '127.0.0.1',
    log: silentLogger(),
    limits: { headersTimeoutMs: 500, requestTimeoutMs: 1000, keepAliveTimeoutMs: 500, checkIntervalMs: 100 },
  });
  try {
    const port = (http.server.address() as { port: number }).port;
    // About 4 s at 6 MB/s: four times the request timeout, eight times the headers timeout.
    const target = path.join(work, 'slow.iso');
    const curl = spawn('curl', ['-sS', '--fail', '--limit-rate', '6M', '-o', target, `http://127.0.0.1:${port}/builds/${build.id}/rackboot.iso`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    curl.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise((resolve) => curl.once('exit', resolve));
    assert.equal(code, 0, stderr);
    assert.equal(
      createHash('sha256')
        .update(await readFile(target))
        .digest('hex'),
      iso.sha256,
    );
  } finally {
    await http.close();
  }
});

test('a server whose descriptors run out under a flood keeps running: load sampling fails, is logged, and recovers', async () => {
  const dir = path.join(work, 'emfile');
  await mkdir(path.join(dir, 'profiles'), { recursive: true });
  const httpPort = await freePort('tcp');
  const child = spawn(
    'prlimit',
    [
      '--nofile=256:256',
      '--',
      process.execPath,
      cliPath,
      'serve',
      '--interface',
      'lo',
      '--address',
      '127.0.0.1',
      '--dhcp',
      'off',
      '--profiles',
      path.join(dir, 'profiles'),
      '--assets',
      path.join(dir, 'assets'),
      '--state',
      path.join(dir, 'state'),
      '--http-port',
      String(httpPort),
      '--tftp-port',
      String(await freePort('udp')),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const lines: Array<Record<string, unknown>> = [];
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    const complete = output.split('\n');
    output = complete.pop()!;
    for (const line of complete) if (line.startsWith('{')) lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let exited: number | null = null;
  child.once('exit', (code) => (exited = code ?? -1));
  const flood = new Flood();
  try {
    await until(() => lines.some((line) => line.msg === 'rackboot is serving') || exited !== null, 'the server to start');
    assert.equal(exited, null, stderr);
    // 10 addresses x 40 idle connections: more than the 256 descriptors, within the per-address cap.
    for (let i = 2; i < 12; i++) await flood.open(httpPort, `127.0.0.${i}`, 40);
    await until(() => lines.some((line) => line.event === 'load-sample-failed') || exited !== null, 'load sampling to fail');
    assert.equal(exited, null, `the server exited under the flood: ${stderr}`);
    flood.end();
    await until(async () => (await get(httpPort, '/boot.ipxe').catch(() => ({ status: 0 }))).status === 200, 'the server to answer after the flood');
    await until(() => lines.some((line) => line.event === 'load-sample-recovered'), 'load sampling to work again');
    assert.equal(exited, null);
    const state = JSON.parse((await get(httpPort, '/status/state.json')).body) as { load: { cpuPercent: number } | null };
    assert.equal(typeof state.load?.cpuPercent, 'number');
  } finally {
    flood.end();
    child.kill('SIGTERM');
    await new Promise((resolve) => (exited !== null ? resolve(undefined) : child.once('exit', resolve)));
  }
});

/** A status router on its own server with room for many connections from one address. */
async function statusServer(options: {
  hosts: () => Promise<HostStatus[]> | HostStatus[];
  maxStreams?: number;
  maxBufferedBytes?: number;
  intervalMs?: number;
}) {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info', base: undefined }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const status = createStatusRouter({
    log,
    ...(options.maxStreams !== undefined ? { maxStreams: options.maxStreams } : {}),
    ...(options.maxBufferedBytes !== undefined ? { maxBufferedBytes: options.maxBufferedBytes } : {}),
    ...(options.intervalMs !== undefined ? { intervalMs: options.intervalMs } : {}),
    sources: {
      server: { address: '127.0.0.1', interface: 'lo', dhcp: 'off', startedAt: new Date(0).toISOString(), version: 'test' },
      hosts: options.hosts,
      build: async () => undefined,
      downloads: async () => [],
      load: () => undefined,
    },
  });
  const app = express();
  app.use('/status', status.router);
  const http = await listenHttp(app, { port: 0, address: '127.0.0.1', log, limits: { maxConnections: 5000, maxConnectionsPerAddress: 5000 } });
  return { status, http, lines, port: (http.server.address() as { port: number }).port };
}

test('1000 parallel live status pages: at most the cap get a stream, the rest 503', async () => {
  // A snapshot that takes a moment, as a real one reading the host list does.
  const { status, http, port } = await statusServer({ maxStreams: 50, hosts: async () => (await delay(20), []) });
  const responses: IncomingMessage[] = [];
  try {
    const statuses = await Promise.all(
      Array.from(
        { length: 1000 },
        () =>
          new Promise<number>((resolve, reject) => {
            const req = request({ host: '127.0.0.1', port, path: '/status/stream', agent: false }, (res) => {
              responses.push(res);
              if (res.statusCode !== 200) res.resume();
              resolve(res.statusCode ?? 0);
            });
            req.on('error', reject);
            req.end();
          }),
      ),
    );
    assert.equal(statuses.filter((code) => code === 200).length, 50);
    assert.equal(statuses.filter((code) => code === 503).length, 950);
    assert.equal(status.streams().open, 50);
  } finally {
    for (const res of responses) res.destroy();
    status.close();
    await http.close();
  }
});

test('a live page that never reads is dropped at the buffer limit; one that reads stays', async () => {
  let version = 0;
  const filler = 'x'.repeat(200_000);
  // Every snapshot differs and weighs about 200 KB.
  const hosts = () => [
    {
      mac: '52:54:00:00:00:01',
      hostname: `${filler}${version++}`,
      profile: null,
      profileFrom: null,
      address: null,
      stage: 'ready',
      lastSeen: new Date(0).toISOString(),
      lastBootSeconds: null,
      failures: 0,
      lastFailure: null,
      alarms: 0,
      lastAlarm: null,
      build: null,
      xen: null,
      kernel: null,
      storage: null,
    },
  ];
  const limit = 512 * 1024;
  const { status, http, lines, port } = await statusServer({ hosts, maxBufferedBytes: limit, intervalMs: 20 });
  const stalled = connect({ port, host: '127.0.0.1' });
  stalled.on('error', () => undefined);
  let readerBytes = 0;
  let reader: IncomingMessage | undefined;
  try {
    await new Promise<void>((resolve) => stalled.once('connect', resolve));
    stalled.write('GET /status/stream HTTP/1.1\r\nHost: rackboot\r\n\r\n');
    stalled.pause(); // and never reads
    reader = await new Promise<IncomingMessage>((resolve) => request({ host: '127.0.0.1', port, path: '/status/stream', agent: false }, resolve).end());
    reader.on('data', (chunk: Buffer) => (readerBytes += chunk.length));
    await until(() => status.streams().dropped === 1, 'the stalled page to be dropped', 30_000);
    assert.equal(status.streams().open, 1, 'the reading page stays');
    const drop = lines.find((line) => line.event === 'status-stream-dropped')!;
    // What waited unsent never grew past the limit plus one snapshot.
    assert.ok(Number(drop.buffered) > limit && Number(drop.buffered) <= limit + 2 * filler.length, `dropped with ${String(drop.buffered)} bytes unsent`);
    const before = readerBytes;
    await until(() => readerBytes > before + 1_000_000, 'the reading page to go on receiving');
  } finally {
    stalled.destroy();
    reader?.destroy();
    status.close();
    await http.close();
  }
});
