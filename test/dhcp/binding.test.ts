/**
 * DHCP answers only on the interface it was given. A host namespace with two
 * networks, each a veth pair to a client namespace: the served one
 * (198.18.0.1/24, device rbA0) and another (198.18.1.1/24, device rbB0).
 * rackboot's DhcpServer serves rbA0. A client on the other network must get
 * no answer at all, and the server must not even receive its packets; a
 * witness socket bound to no device shows they did reach the host. Needs
 * root; fails (never skips) without it.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { DhcpEvent } from '../../server/dhcp/server.js';
import { DeviceSocket, type DeviceSocketOptions } from '../../server/net/device-socket.js';
import { Netns, run } from '../support/netns.js';
import { bindingChildScript, type InformConfig } from './binding-child.js';
import { runIn, ServerChild } from './live-support.js';
import { childScript, type ChildServerConfig } from './netns-child.js';

const deviceSocketModule = new URL('../../server/net/device-socket.js', import.meta.url).href;

const servedAddress = '198.18.0.1';
const otherAddress = '198.18.1.1';
const otherClientAddress = '198.18.1.2';
const servedClientMac = '02:00:00:00:0a:01';
const otherClientMac = '02:00:00:00:0b:01';

describe('DHCP on a host with two networks answers only on its own', () => {
  const namespaces: Netns[] = [];
  let host: Netns;
  let served: Netns;
  let other: Netns;
  let server: ServerChild;
  let witness: ServerChild | undefined;
  let scratch: string;
  let script: string;

  /** A veth pair from the host to a new client namespace; the host end gets `cidr`. */
  const joinClient = (hostDevice: string, clientDevice: string, cidr: string, mac: string): Netns => {
    const client = Netns.create('rbbc');
    namespaces.push(client);
    host.linkTo(client, { device: hostDevice, cidr }, { device: clientDevice, mac });
    return client;
  };

  const udhcpc = (ns: Netns, device: string) => runIn(ns, 'busybox', ['udhcpc', '-i', device, '-n', '-q', '-f', '-t', '3', '-T', '1', '-s', script], 30_000);

  const heardFrom = (source: string) => (witness?.events ?? []).filter((e) => e.kind === 'heard' && e['source'] === source).length;

  before(async () => {
    run('busybox', ['udhcpc', '--help']); // fails the suite when busybox has no udhcpc
    host = Netns.create('rbbh');
    namespaces.push(host);
    served = joinClient('rbA0', 'cliA0', `${servedAddress}/24`, servedClientMac);
    other = joinClient('rbB0', 'cliB0', `${otherAddress}/24`, otherClientMac);
    scratch = mkdtempSync(join(tmpdir(), 'rackboot-dhcp-binding-'));
    script = join(scratch, 'udhcpc-script');
    // udhcpc runs this on each event; it only reports, it configures nothing.
    writeFileSync(script, '#!/bin/sh\necho "UDHCPC $1 ip=$ip serverid=$serverid"\n', { mode: 0o755 });
    const config: ChildServerConfig = {
      interfaceName: 'rbA0',
      serverAddress: servedAddress,
      prefixLength: 24,
      pool: { start: '198.18.0.100', end: '198.18.0.199' },
      leaseSeconds: 3600,
      dns: [],
      reservations: {},
    };
    server = new ServerChild(host.spawn(process.execPath, [childScript, 'server', JSON.stringify(config)], { stdio: ['pipe', 'pipe', 'pipe'] }));
    await server.waitFor(() => server.events.find((e) => e.kind === 'ready'), 'ready line');
    witness = new ServerChild(host.spawn(process.execPath, [bindingChildScript, 'witness', JSON.stringify({ port: 67 })], { stdio: ['pipe', 'pipe', 'pipe'] }));
    await witness.waitFor(() => witness!.events.find((e) => e.kind === 'ready'), 'witness ready line');
  });

  after(() => {
    witness?.process.kill('SIGKILL');
    server?.process.stdin?.end('close\n');
    server?.process.kill('SIGKILL');
    for (const ns of namespaces.reverse()) ns.delete();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  test('udhcpc on the other network gets no answer; the server never receives its broadcasts', async () => {
    const result = await udhcpc(other, 'cliB0');
    assert.notEqual(result.code, 0, `udhcpc on the other network got a lease:\n${result.stdout}\n${result.stderr}`);
    assert.doesNotMatch(result.stdout, /UDHCPC bound/);
    // udhcpc sent (3 DISCOVERs from 0.0.0.0:68) and the host heard them ...
    await witness!.waitFor(() => (heardFrom('0.0.0.0:68') >= 3 ? true : undefined), 'DISCOVERs from the other network at the witness');
    // ... but on another device than the server's, so it received nothing.
    const { stats } = await server.stats();
    assert.equal(stats.received, 0, `server received ${stats.received} packets from the other network`);
    assert.deepEqual(
      server.events.filter((e) => e.kind === 'reply'),
      [],
    );
  });

  test('a unicast INFORM to the server address from the other network is not received either', async () => {
    // The host accepts a datagram for any of its addresses on any interface
    // (the weak host model), so this would reach a socket bound to no device.
    other.ip('addr', 'add', `${otherClientAddress}/24`, 'dev', 'cliB0');
    other.ip('route', 'add', `${servedAddress}/32`, 'via', otherAddress);
    const config: InformConfig = { localAddress: otherClientAddress, serverAddress: servedAddress, waitMs: 1500 };
    const result = await runIn(other, process.execPath, [bindingChildScript, 'inform', JSON.stringify(config)], 10_000);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), { sent: true, answered: false });
    await witness!.waitFor(() => (heardFrom(`${otherClientAddress}:68`) >= 1 ? true : undefined), 'the INFORM at the witness');
    const { stats } = await server.stats();
    assert.equal(stats.received, 0);
  });

  test('udhcpc on the served network gets a lease', async () => {
    const result = await udhcpc(served, 'cliA0');
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, new RegExp(`UDHCPC bound ip=198\\.18\\.0\\.100 serverid=${servedAddress.replace(/\./g, '\\.')}`));
    // udhcpc can exit before the server's event lines have been read here.
    const replies = await server.waitFor(() => {
      const found = server.events.filter((e): e is Extract<DhcpEvent, { kind: 'reply' }> => e.kind === 'reply').map((e) => [e.mac, e.result]);
      return found.length >= 2 ? found : undefined;
    }, 'two replies');
    assert.deepEqual(replies, [
      [servedClientMac, 'offer'],
      [servedClientMac, 'ack'],
    ]);
  });
});

describe('DeviceSocket', () => {
  /** A socket on lo, and a promise of its next onReadable. */
  const openOnLo = () => {
    let readable: () => void = () => undefined;
    let wakeUps = 0;
    const socket = new DeviceSocket({ device: 'lo', address: '127.0.0.1', port: 0 }, () => {
      wakeUps++;
      readable();
    });
    const nextReadable = () => new Promise<void>((resolve) => (readable = resolve));
    return { socket, nextReadable, wakeUps: () => wakeUps };
  };

  test('a socket on lo reads what queued since its wake-up in one go, and sends a batch in one call', async () => {
    const { socket, nextReadable, wakeUps } = openOnLo();
    try {
      const port = socket.port();
      assert.ok(port > 0);
      const woken = nextReadable();
      assert.deepEqual(socket.send([{ bytes: Buffer.from('one'), port, address: '127.0.0.1' }]), [null]);
      await woken;
      assert.equal(wakeUps(), 1);
      // Not watched until resume(): what arrives now waits in the kernel, and wakes nobody.
      const sent = socket.send(['two', 'three', 'four'].map((text) => ({ bytes: Buffer.from(text), port, address: '127.0.0.1' })));
      assert.deepEqual(sent, [null, null, null]);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(wakeUps(), 1);
      const read = socket.read(3);
      assert.deepEqual(
        read.map(({ message, address, port: from }) => [message?.toString(), address, from]),
        [
          ['one', '127.0.0.1', port],
          ['two', '127.0.0.1', port],
          ['three', '127.0.0.1', port],
        ],
      );
      // At most max a read; the rest stays queued, and resume() wakes at once for it.
      const again = nextReadable();
      socket.resume();
      await again;
      assert.equal(wakeUps(), 2);
      assert.deepEqual(
        socket.read(64).map(({ message }) => message?.toString()),
        ['four'],
      );
      assert.deepEqual(socket.read(64), []);
      // A datagram longer than a read keeps is dropped, and said so (message null), not cut short.
      assert.deepEqual(socket.send([{ bytes: Buffer.alloc(9000, 1), port, address: '127.0.0.1' }]), [null]);
      const long = nextReadable();
      socket.resume();
      await long;
      assert.deepEqual(
        socket.read(64).map(({ message }) => message),
        [null],
      );
    } finally {
      socket.close();
    }
  });

  test('a datagram the kernel refuses is reported by name, and the others of its batch still go', async () => {
    const { socket, nextReadable } = openOnLo();
    try {
      const port = socket.port();
      const woken = nextReadable();
      const results = socket.send([
        { bytes: Buffer.from('first'), port, address: '127.0.0.1' },
        { bytes: Buffer.alloc(70_000), port, address: '127.0.0.1' },
        { bytes: Buffer.from('last'), port, address: '127.0.0.1' },
      ]);
      assert.equal(results[0], null);
      assert.equal(results[1]?.code, 'EMSGSIZE');
      assert.equal(results[1]?.syscall, 'sendmmsg');
      assert.match(results[1]!.message, new RegExp(`^sendmmsg EMSGSIZE 127\\.0\\.0\\.1:${port}$`));
      assert.equal(results[2], null);
      await woken;
      assert.deepEqual(
        socket.read(64).map(({ message }) => message?.toString()),
        ['first', 'last'],
      );
      socket.close();
      assert.equal(socket.send([{ bytes: Buffer.from('late'), port, address: '127.0.0.1' }])[0]?.code, 'EBADF');
      assert.deepEqual(socket.read(64), []);
    } finally {
      socket.close();
    }
  });

  const open = (options: DeviceSocketOptions) => new DeviceSocket(options, () => undefined);

  test('errors carry the errno code and the call that failed, like Node system errors', async () => {
    assert.throws(() => open({ device: 'no-such-if0', address: '0.0.0.0', port: 0 }), {
      code: 'ENODEV',
      syscall: 'setsockopt',
      message: /^setsockopt ENODEV SO_BINDTODEVICE no-such-if0/,
    });
    assert.throws(() => open({ device: 'lo', address: '198.18.255.254', port: 0 }), {
      code: 'EADDRNOTAVAIL',
      syscall: 'bind',
      message: /^bind EADDRNOTAVAIL 198\.18\.255\.254:0 on lo/,
    });
    // A holder without SO_REUSEADDR: nobody may share its port.
    const holder = dgram.createSocket('udp4');
    holder.bind(0, '127.0.0.1');
    await once(holder, 'listening');
    try {
      const { port } = holder.address();
      assert.throws(() => open({ device: 'lo', address: '127.0.0.1', port }), { code: 'EADDRINUSE', syscall: 'bind' });
    } finally {
      holder.close();
    }
  });

  test('the receive buffer asked for is forced past net.core.rmem_max with CAP_NET_ADMIN; without it, capped there, and no error', async () => {
    const rmemMax = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
    const wanted = 2 * rmemMax;
    const socket = open({ device: 'lo', address: '127.0.0.1', port: 0, receiveBufferBytes: wanted });
    try {
      // Linux reports twice the size set.
      assert.equal(socket.receiveBufferSize(), 2 * wanted);
    } finally {
      socket.close();
    }
    // The same as root without CAP_NET_ADMIN (setpriv drops it from the bounding set): SO_RCVBUF, capped.
    const script = `import(${JSON.stringify(deviceSocketModule)})
      .then(({ DeviceSocket }) => new DeviceSocket({ device: 'lo', address: '127.0.0.1', port: 0, receiveBufferBytes: ${wanted} }, () => undefined))
      .then((socket) => { console.log(socket.receiveBufferSize()); socket.close(); }, (error) => { console.error(error.message); process.exit(1); })`;
    const child = spawnSync('setpriv', ['--bounding-set=-net_admin', '--inh-caps=-net_admin', process.execPath, '-e', script], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(child.status, 0, child.stderr);
    assert.equal(Number(child.stdout.trim()), 2 * rmemMax);
  });

  test('arguments are checked before any socket is made', () => {
    assert.throws(() => open({ device: 'an-overlong-device-name', address: '0.0.0.0', port: 0 }), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => open({ device: 'lo', address: 'not-an-address', port: 0 }), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => open({ device: 'lo', address: '0.0.0.0', port: 70000 }), { code: 'ERR_INVALID_ARG_TYPE' });
  });
});
