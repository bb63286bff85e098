import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { Agent, createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { sendDownload, type BodyPath, type DownloadFile, type SendOptions } from '../../server/http/downloads.js';
import { FileCache } from '../../server/http/file-cache.js';
import { nativeBinding } from '../../server/net/native.js';

/**
 * File bodies sent with sendfile(2) (server/native/send_file.c through
 * server/http/file-send.ts) on loopback, checked with real curl and Node's
 * own client: whole files, ranges, resuming, keep-alive, clients that go
 * away or stall, many at once, pages that are not in the page cache, and
 * the descriptors left behind (none).
 */

const exec = promisify(execFile);
const FILE_BYTES = 24 * 1024 * 1024;
let work: string;
let data: Buffer;
let file: DownloadFile;
let server: Server;
let base: string;
/** How each request's body went out, and on which client port, in order of completion. */
const served: Array<{ url: string; path: BodyPath | 'error'; remotePort: number; error?: string }> = [];
/** Responses held by the test (url "/hold"): the server side of a stalled client. */
const held: ServerResponse[] = [];
/** The memory copy behind "/hot". */
const hotCache = new FileCache(64 * 1024 * 1024);
/** Per-URL send options and file. */
const routes = new Map<string, { file: () => DownloadFile; options: SendOptions }>();

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const openDescriptors = async () => (await readdir('/proc/self/fd')).length;

before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'rackboot-file-send-'));
  data = randomBytes(FILE_BYTES);
  await writeFile(path.join(work, 'initrd.gz'), data);
  file = { path: path.join(work, 'initrd.gz'), size: data.length, sha256: sha256(data), mtime: (await stat(path.join(work, 'initrd.gz'))).mtime };
  routes.set('/file', { file: () => file, options: {} });
  routes.set('/hold', { file: () => file, options: {} });
  routes.set('/corked', { file: () => file, options: {} });
  routes.set('/stream', { file: () => file, options: { sendfile: false } });
  routes.set('/memory', { file: () => file, options: { sendfile: false, cache: new FileCache(64 * 1024 * 1024) } });
  routes.set('/hot', { file: () => file, options: { cache: hotCache } });
  // The manifest says more bytes than the file has (a file truncated after publishing).
  routes.set('/short', { file: () => ({ ...file, size: file.size + 4096 }), options: {} });
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '';
    const route = routes.get(url);
    if (!route) {
      res.statusCode = 404;
      res.end();
      return;
    }
    if (url === '/hold') held.push(res);
    // Headers written into a corked socket wait in Node's buffer: the body must still come after them.
    if (url === '/corked') res.socket!.cork();
    const remotePort = req.socket.remotePort ?? 0;
    sendDownload(req.method ?? 'GET', req.headers, res, route.file(), route.options).then(
      (how) => served.push({ url, path: how, remotePort }),
      (error: NodeJS.ErrnoException) => {
        served.push({ url, path: 'error', remotePort, error: error.code ?? error.message });
        res.destroy();
      },
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server?.closeAllConnections();
  if (server) await new Promise((resolve) => server.close(resolve));
  if (work) await rm(work, { recursive: true, force: true });
});

/** Waits until `count` requests in all have been served. */
async function servedCount(count: number): Promise<void> {
  for (let i = 0; i < 400 && served.length < count; i++) await delay(25);
  assert.ok(served.length >= count, `${served.length} requests finished, want ${count}`);
}

/** The open descriptors once the server has no connection left (earlier tests' clients have gone). */
async function quietDescriptors(): Promise<number> {
  const connections = () => new Promise<number>((resolve, reject) => server.getConnections((error, count) => (error ? reject(error) : resolve(count))));
  for (let i = 0; i < 200 && (await connections()) > 0; i++) await delay(10);
  assert.equal(await connections(), 0, 'no connection left from earlier tests');
  return openDescriptors();
}

/** The number of open descriptors once it is `want` again, or after 2 s. */
async function settledDescriptors(want: number): Promise<number> {
  let now = await openDescriptors();
  for (let i = 0; i < 100 && now !== want; i++) {
    await delay(20);
    now = await openDescriptors();
  }
  return now;
}

test('a cacheable file: the first body by sendfile (and the file loaded meanwhile), then from memory while few are in flight, by sendfile again when many are', async () => {
  const fetchHot = async (): Promise<void> => {
    const body = Buffer.from(await (await fetch(`${base}/hot`)).arrayBuffer());
    assert.equal(sha256(body), file.sha256);
  };
  const pathsOf = (from: number) =>
    served
      .slice(from)
      .filter((entry) => entry.url === '/hot')
      .map((entry) => entry.path);
  let from = served.length;
  await fetchHot();
  await servedCount(from + 1);
  assert.deepEqual(pathsOf(from), ['sendfile']);
  // The cache's load, started by that request (slower on a busy machine).
  for (let i = 0; i < 400 && hotCache.peek(file.path, file.sha256) === undefined; i++) await delay(25);
  assert.ok(hotCache.peek(file.path, file.sha256), 'the first request loaded the file into memory');
  from = served.length;
  await fetchHot();
  await fetchHot();
  await servedCount(from + 2);
  assert.deepEqual(pathsOf(from), ['memory', 'memory'], 'one at a time: from the memory copy');
  from = served.length;
  await Promise.all(Array.from({ length: 12 }, fetchHot));
  await servedCount(from + 12);
  const crowd = pathsOf(from);
  assert.ok(
    crowd.includes('sendfile') && crowd.every((how) => how === 'sendfile' || how === 'memory'),
    `12 at once: past 4 in flight by sendfile (${crowd.join(' ')})`,
  ); // fetch keeps its connections for later: close them, as the tests after this count connections.
  server.closeIdleConnections();
});

test('a whole file goes out with sendfile, byte-exact, over HTTP/1.1 and 1.0; HEAD sends no body', async () => {
  const out = path.join(work, 'whole');
  const before = served.length;
  const { stdout } = await exec('curl', ['-sS', '-o', out, '-w', '%{http_code} %{size_download}', `${base}/file`]);
  assert.equal(stdout, `200 ${FILE_BYTES}`);
  assert.equal(sha256(await readFile(out)), file.sha256);
  await servedCount(before + 1);
  assert.equal(served[before]!.path, 'sendfile');

  const head = await exec('curl', ['-sS', '-I', `${base}/file`]);
  assert.match(head.stdout, new RegExp(`content-length: ${FILE_BYTES}`, 'i'));
  await servedCount(before + 2);
  assert.equal(served[before + 1]!.path, 'none');

  // HTTP/1.0 without keep-alive: Node closes the connection after the body, not before it.
  const old = await exec('curl', ['-sS', '-v', '--http1.0', '-o', out, '-w', '%{size_download}', `${base}/file`]);
  assert.match(old.stderr, /> GET \/file HTTP\/1\.0\r?\n/);
  assert.match(old.stderr, /< connection: close/i);
  assert.equal(old.stdout, String(FILE_BYTES));
  assert.equal(sha256(await readFile(out)), file.sha256);
  await servedCount(before + 3);
  assert.equal(served[before + 2]!.path, 'sendfile');
});

test('headers still queued in Node (a corked socket) go out before the body', async () => {
  const out = path.join(work, 'corked');
  const before = served.length;
  const { stdout } = await exec('curl', ['-sS', '-r', '10-1048585', '-o', out, '-w', '%{http_code}', `${base}/corked`]);
  assert.equal(stdout, '206');
  assert.ok((await readFile(out)).equals(data.subarray(10, 1048586)));
  await servedCount(before + 1);
  assert.equal(served[before]!.path, 'sendfile');
});

test('ranges with sendfile: a middle range (206), a suffix range, an open end; 416 past the end', async () => {
  const out = path.join(work, 'range');
  const before = served.length;
  const cases: Array<[string, number, number]> = [
    ['1000-1999', 1000, 2000],
    ['-5000', FILE_BYTES - 5000, FILE_BYTES],
    [`${FILE_BYTES - 3 * 1024 * 1024 - 7}-`, FILE_BYTES - 3 * 1024 * 1024 - 7, FILE_BYTES],
  ];
  for (const [range, start, end] of cases) {
    const { stdout } = await exec('curl', ['-sS', '-r', range, '-o', out, '-w', '%{http_code} %{header_json}', `${base}/file`]);
    const [status, headers] = [stdout.slice(0, 3), JSON.parse(stdout.slice(4)) as Record<string, string[]>];
    assert.equal(status, '206', range);
    assert.deepEqual(headers['content-range'], [`bytes ${start}-${end - 1}/${FILE_BYTES}`]);
    assert.ok((await readFile(out)).equals(data.subarray(start, end)), `range ${range} is byte-exact`);
  }
  await servedCount(before + cases.length);
  assert.deepEqual(
    served.slice(before).map((s) => s.path),
    ['sendfile', 'sendfile', 'sendfile'],
  );
  const { stdout } = await exec('curl', ['-sS', '-r', `${FILE_BYTES}-`, '-o', '/dev/null', '-w', '%{http_code}', `${base}/file`]);
  assert.equal(stdout, '416');
});

test('a download killed half-way resumes with curl -C - to the right sha256', async () => {
  const target = path.join(work, 'resumed');
  const first = spawn('curl', ['-s', '--limit-rate', '4M', '-o', target, `${base}/file`], { stdio: 'ignore' });
  const exited = once(first, 'exit');
  for (let i = 0; i < 100 && ((await stat(target).catch(() => undefined))?.size ?? 0) < 2_000_000; i++) await delay(50);
  first.kill('SIGKILL');
  await exited;
  const partial = (await stat(target)).size;
  assert.ok(partial > 0 && partial < FILE_BYTES, `partial download ${partial} of ${FILE_BYTES} bytes`);
  const { stderr } = await exec('curl', ['-sS', '-v', '-C', '-', '-o', target, `${base}/file`]);
  assert.match(stderr, new RegExp(`Range: bytes=${partial}-`), 'curl asked for the rest only');
  assert.match(stderr, /< HTTP\/1\.1 206/);
  assert.equal(sha256(await readFile(target)), file.sha256);
});

test('keep-alive: curl fetches twice on one connection, and Node reuses one socket for three ranges', async () => {
  const one = path.join(work, 'one');
  const two = path.join(work, 'two');
  const { stderr } = await exec('curl', ['-sS', '-v', '-r', '0-99999', '-o', one, `${base}/file`, '--next', '-o', two, `${base}/file`]);
  assert.match(stderr, /Re-using existing connection/);
  assert.ok((await readFile(one)).equals(data.subarray(0, 100000)));
  assert.equal(sha256(await readFile(two)), file.sha256);

  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const sockets = new Set<Socket>();
  const before = served.length;
  const ranges: Array<[number, number]> = [
    [0, 4 * 1024 * 1024 - 1],
    [FILE_BYTES - 12345, FILE_BYTES - 1],
    [777, 9 * 1024 * 1024 + 776],
  ];
  for (const [start, end] of ranges) {
    const body = await new Promise<Buffer>((resolve, reject) => {
      const req = request(`${base}/file`, { agent, headers: { range: `bytes=${start}-${end}` } }, (res) => {
        assert.equal(res.statusCode, 206);
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('error', reject);
      });
      req.on('socket', (socket) => sockets.add(socket));
      req.on('error', reject);
      req.end();
    });
    assert.ok(body.equals(data.subarray(start, end + 1)), `bytes ${start}-${end}`);
  }
  agent.destroy();
  assert.equal(sockets.size, 1, 'one connection for all three');
  await servedCount(before + 3);
  const answered = served.slice(before);
  assert.deepEqual(
    answered.map((s) => s.path),
    ['sendfile', 'sendfile', 'sendfile'],
  );
  assert.equal(new Set(answered.map((s) => s.remotePort)).size, 1, 'the server saw one client port');
});

/** The complete HTTP/1.1 responses (Content-Length bodies) at the front of `bytes`. */
function splitResponses(bytes: Buffer): Array<{ head: string; body: Buffer }> {
  const responses: Array<{ head: string; body: Buffer }> = [];
  let at = 0;
  for (;;) {
    const headEnd = bytes.indexOf('\r\n\r\n', at);
    if (headEnd < 0) return responses;
    const head = bytes.subarray(at, headEnd).toString('latin1');
    const length = Number(/^content-length: (\d+)$/im.exec(head)?.[1]);
    if (headEnd + 4 + length > bytes.length) return responses;
    responses.push({ head, body: bytes.subarray(headEnd + 4, headEnd + 4 + length) });
    at = headEnd + 4 + length;
  }
}

test('pipelined requests: the second response waits for the first, both with sendfile, in order', async () => {
  const before = served.length;
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  const ranges: Array<[number, number]> = [
    [5, 3 * 1024 * 1024 + 4],
    [FILE_BYTES - 2 * 1024 * 1024, FILE_BYTES - 1],
    [0, 99],
  ];
  // All three in one write: Node answers them one after the other on the connection.
  client.write(ranges.map(([start, end]) => `GET /file HTTP/1.1\r\nHost: test\r\nRange: bytes=${start}-${end}\r\n\r\n`).join(''));
  const chunks: Buffer[] = [];
  let responses: Array<{ head: string; body: Buffer }> = [];
  for await (const chunk of client) {
    chunks.push(chunk as Buffer);
    responses = splitResponses(Buffer.concat(chunks));
    if (responses.length === 3) break; // closes the connection
  }
  assert.equal(responses.length, 3);
  ranges.forEach(([start, end], i) => {
    assert.match(responses[i]!.head, new RegExp(`^HTTP/1.1 206 .*\r\ncontent-range: bytes ${start}-${end}/${FILE_BYTES}`, 'is'));
    assert.ok(responses[i]!.body.equals(data.subarray(start, end + 1)), `body ${i} is bytes ${start}-${end}`);
  });
  await servedCount(before + 3);
  assert.deepEqual(
    served.slice(before).map((s) => s.path),
    ['sendfile', 'sendfile', 'sendfile'],
  );
});

test('a client that goes away mid-file: others are served, no descriptor is left open', async () => {
  const descriptors = await quietDescriptors();
  const before = served.length;
  // Reads 1 MB, then resets the connection with most of the file unsent.
  const quitter = connect((server.address() as AddressInfo).port, '127.0.0.1');
  quitter.write('GET /file HTTP/1.1\r\nHost: test\r\n\r\n');
  let received = 0;
  for await (const chunk of quitter) {
    received += (chunk as Buffer).length;
    if (received > 1_000_000) break; // leaving the loop destroys the socket
  }
  const out = path.join(work, 'other');
  await exec('curl', ['-sS', '-o', out, `${base}/file`]);
  assert.equal(sha256(await readFile(out)), file.sha256);
  await servedCount(before + 2);
  const outcomes = served
    .slice(before)
    .map((s) => s.path + (s.error ? ` ${s.error}` : ''))
    .sort();
  assert.equal(outcomes.length, 2);
  assert.equal(outcomes[1], 'sendfile');
  assert.match(outcomes[0]!, /^error (EPIPE|ECONNRESET|ERR_STREAM_PREMATURE_CLOSE)$/);
  assert.equal(await settledDescriptors(descriptors), descriptors, 'descriptors open before and after');
});

test('a stalled client is cut off when the server closes its socket: the send stops and the connection closes', async () => {
  const descriptors = await quietDescriptors();
  const before = served.length;
  const stalled = connect((server.address() as AddressInfo).port, '127.0.0.1');
  stalled.pause(); // never reads: the server's send buffer fills and the send waits for room
  stalled.write('GET /hold HTTP/1.1\r\nHost: test\r\n\r\n');
  for (let i = 0; i < 100 && held.length === 0; i++) await delay(20);
  await delay(300);
  assert.equal(served.length, before, 'still sending to the stalled client');
  const closed = once(stalled, 'close');
  held.pop()!.socket!.destroy();
  stalled.resume(); // read what was queued; then the end must come, not more waiting
  await Promise.race([closed, delay(5000).then(() => assert.fail('the connection stayed open after the server closed it'))]);
  await servedCount(before + 1);
  assert.equal(served[before]!.path, 'error');
  assert.equal(served[before]!.error, 'ERR_STREAM_PREMATURE_CLOSE');
  assert.equal(await settledDescriptors(descriptors), descriptors);
});

test('a file shorter than its size: the connection is cut where the file ends, nothing is left open', async () => {
  const descriptors = await quietDescriptors();
  const before = served.length;
  const result = await exec('curl', ['-sS', '-o', '/dev/null', `${base}/short`]).then(
    () => 'complete',
    (error: { code: number; stderr: string }) => `curl ${error.code}: ${error.stderr.trim()}`,
  );
  assert.match(result, /^curl 18: .*4096 bytes remaining/);
  await servedCount(before + 1);
  assert.equal(served[before]!.error, 'ERR_FILE_ENDED');
  assert.equal(await settledDescriptors(descriptors), descriptors);
});

test('32 downloads at once, all byte-exact', async () => {
  const before = served.length;
  const downloads = Array.from({ length: 32 }, (_, i) => {
    const out = path.join(work, `many-${i}`);
    return exec('curl', ['-sS', '-o', out, `${base}/file`]).then(async () => sha256(await readFile(out)));
  });
  const sums = await Promise.all(downloads);
  assert.deepEqual(new Set(sums), new Set([file.sha256]));
  await servedCount(before + 32);
  assert.ok(served.slice(before).every((s) => s.path === 'sendfile'));
  await Promise.all(Array.from({ length: 32 }, (_, i) => rm(path.join(work, `many-${i}`))));
});

for (const check of ['cachestat', 'mincore'] as const) {
  test(`pages not in the page cache are read off the event loop, byte-exact (checked with ${check})`, async () => {
    // mincore is what kernels before 6.5 (Debian 12's 6.1) use.
    nativeBinding().FileSend.checkWithMincore(check === 'mincore');
    try {
      // Written back first (dirty pages stay), then GNU dd drops the file's pages from the page cache ("iflag=nocache count=0").
      await exec('sync', [file.path]);
      await exec('dd', [`if=${file.path}`, 'iflag=nocache', 'count=0', 'status=none']);
      const { stdout } = await exec('fincore', ['--bytes', '--noheadings', '--output', 'RES', file.path]);
      assert.ok(Number(stdout.trim()) < FILE_BYTES / 2, `the file is out of the page cache (${stdout.trim()} bytes resident)`);
      const before = served.length;
      const cold = path.join(work, 'cold');
      await exec('curl', ['-sS', '-o', cold, `${base}/file`]);
      assert.equal(sha256(await readFile(cold)), file.sha256);
      // Then from the page cache, in ranges that start and end inside pages.
      const warm = path.join(work, 'warm');
      await exec('curl', ['-sS', '-r', '4097-9000000', '-o', warm, `${base}/file`]);
      assert.ok((await readFile(warm)).equals(data.subarray(4097, 9000001)));
      await servedCount(before + 2);
      assert.deepEqual(
        served.slice(before).map((s) => s.path),
        ['sendfile', 'sendfile'],
      );
    } finally {
      nativeBinding().FileSend.checkWithMincore(false);
    }
  });
}

test('with sendfile off, Node writes the body: from a read stream, or from the memory cache', async () => {
  const before = served.length;
  for (const url of ['/stream', '/memory', '/memory']) {
    const out = path.join(work, 'node');
    await exec('curl', ['-sS', '-o', out, `${base}${url}`]);
    assert.equal(sha256(await readFile(out)), file.sha256, url);
  }
  await servedCount(before + 3);
  assert.deepEqual(
    served.slice(before).map((s) => s.path),
    ['stream', 'memory', 'memory'],
  );
});
