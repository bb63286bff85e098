/**
 * Two `rackboot serve --database` on one wire and one PostgreSQL, and a
 * QEMU machine (BIOS, iPXE) network-booting between them: the server that
 * hands the machine its boot script is killed with SIGKILL right after, so
 * its next download fails. The boot script asks DHCP again, the other
 * server answers (the dead one's heartbeat is stale), names itself, and the
 * machine boots from it to the ready line, with the address it had.
 *
 * Each server has its own copy of the build folder (builds are copied to
 * every server; the build is chosen by id, so both serve the same bytes).
 * Both reach PostgreSQL through its Unix socket.
 *
 * Needs root, iproute2, QEMU and Debian's postgresql-15; fails, never
 * skips, without them.
 */
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConsoleWatcher, readyLinePattern, spawnQemu, assertQemu } from '../../server/demo/qemu.js';
import { ensureTestBuild, cliPath } from '../support/build.js';
import { watchOutput } from '../support/failure-report.js';
import { assertRoot, Netns } from '../support/netns.js';
import { POSTGRES_PASSWORD, startPostgres, type TestPostgres } from '../support/postgres.js';
import { runRackboot } from '../support/run.js';
import { until } from '../support/until.js';

const MAC = '52:54:00:12:34:70';
const SERVERS = { a: '198.18.0.1', b: '198.18.0.3' } as const;

interface Peer {
  name: 'a' | 'b';
  address: string;
  ns: Netns;
  server: ConsoleWatcher;
  child: ChildProcess;
  events(): Array<Record<string, unknown>>;
}

test(
  'two servers on one database: the one that gave a machine its boot script is killed, and the machine boots from the other to the ready line',
  { timeout: 600_000 },
  async (t) => {
    assertRoot();
    await assertQemu('bios');
    const dir = await mkdtemp(join(tmpdir(), 'rackboot-failover-'));
    const namespaces: Netns[] = [];
    const peers: Peer[] = [];
    let postgres: TestPostgres | undefined;
    let qemu: ChildProcess | undefined;
    try {
      postgres = await startPostgres();
      await postgres.createDatabase('failover');
      const database = postgres.socketUrl('failover').replace(`:${POSTGRES_PASSWORD}@`, '@');
      await writeFile(join(dir, 'pgpass'), `*:*:failover:rackboot:${POSTGRES_PASSWORD}\n`, { mode: 0o600 });
      const env = { ...process.env, PGPASSFILE: join(dir, 'pgpass'), RACKBOOT_LOG_LEVEL: 'debug' };

      // One set of profiles, in the database.
      await mkdir(join(dir, 'profiles'));
      await writeFile(join(dir, 'profiles', 'default.yaml'), ['hostname: "node-{mac}"', 'boot:', '  kernelArgs: "rackboot.poweroff=1"', ''].join('\n'));
      const imported = await runRackboot(['profiles', 'import', join(dir, 'profiles'), '--database', database], { timeoutMs: 60_000, env });
      assert.equal(imported.code, 0, imported.stderr);

      // The build, copied to each server.
      const assets = await ensureTestBuild();
      for (const name of ['a', 'b']) execFileSync('cp', ['-a', '--reflink=auto', assets, join(dir, `assets-${name}`)]);
      const currentA = await readlink(join(dir, 'assets-a', 'current'));
      assert.equal(await readlink(join(dir, 'assets-b', 'current')), currentA, 'the same build is current at both servers');

      // The wire: a bridge holding the machine's tap and a link to each server.
      const wire = Netns.create('rbfow');
      namespaces.push(wire);
      wire.ip('link', 'add', 'br0', 'type', 'bridge');
      wire.ip('tuntap', 'add', 'dev', 'tap0', 'mode', 'tap');
      wire.ip('link', 'set', 'tap0', 'master', 'br0');
      wire.ip('link', 'set', 'tap0', 'up');
      wire.ip('link', 'set', 'br0', 'up');
      for (const name of ['a', 'b'] as const) {
        const ns = Netns.create(`rbfo${name}`);
        namespaces.push(ns);
        ns.linkTo(wire, { device: 'vs', cidr: `${SERVERS[name]}/24` }, { device: `p${name}` });
        wire.ip('link', 'set', `p${name}`, 'master', 'br0');
        const child = ns.spawn(
          process.execPath,
          [
            cliPath,
            'serve',
            '--interface',
            'vs',
            '--pool',
            '198.18.0.100-198.18.0.150',
            '--profiles',
            join(dir, 'profiles'),
            '--assets',
            join(dir, `assets-${name}`),
            '--state',
            join(dir, `state-${name}`),
            '--database',
            database,
            '--http-port',
            '8080',
            '--drain-seconds',
            '2',
            '--config',
            '/dev/null',
          ],
          { env },
        );
        const server = new ConsoleWatcher(child);
        watchOutput(`rackboot serve log (${name})`, () => server.transcript, { lines: 120, shared: true });
        peers.push({
          name,
          address: SERVERS[name],
          ns,
          server,
          child,
          events: () =>
            server.transcript
              .split('\n')
              .filter((line) => line.startsWith('{'))
              .map((line) => JSON.parse(line) as Record<string, unknown>),
        });
      }
      for (const peer of peers) await peer.server.waitFor(/rackboot is serving/, 30_000, `server ${peer.name} to start`);
      // Each server reads the other's heartbeat within a second.
      await until(
        'two live servers in the database',
        15_000,
        async () =>
          (await postgres!.psql('failover', "SELECT count(*) FROM servers WHERE seen_at > now() - interval '3 seconds'")) === '2' ? true : undefined,
        () => peers.map((peer) => peer.server.transcript.slice(-2000)).join('\n'),
      );
      await new Promise((resolve) => setTimeout(resolve, 1500));

      const started = Date.now();
      qemu = spawnQemu(wire.name, { firmware: 'bios', mac: MAC, tap: 'tap0' });
      const machine = new ConsoleWatcher(qemu);
      watchOutput(`QEMU console of ${MAC}`, () => machine.transcript);

      // The server that hands out the boot script dies at once: the machine's next download from it fails.
      const scripted = (peer: Peer) => peer.events().some((e) => e.event === 'boot-script' && e.mac === MAC);
      const first = await until(
        'a boot script for the machine',
        300_000,
        () => peers.find(scripted),
        () => machine.transcript.slice(-3000),
      );
      first.child.kill('SIGKILL');
      const killedAt = Date.now();
      const other = peers.find((peer) => peer !== first)!;
      const firstAck = first.events().find((e) => e.result === 'ack' && e.mac === MAC && e.type === 'DHCPREQUEST');
      assert.ok(firstAck, `server ${first.name} ACKed the machine before its boot script`);

      const ready = await machine.waitFor(readyLinePattern, 420_000, 'the ready line');
      const seconds = (Date.now() - started) / 1000;
      const otherEvents = other.events();
      const otherAck = otherEvents.find((e) => e.result === 'ack' && e.mac === MAC && Date.parse(String(e.time)) > killedAt);
      assert.ok(otherAck, `server ${other.name} ACKed the machine after the kill`);
      assert.equal(otherAck.address, firstAck.address, 'the machine kept the address it was given (the lease is the database’s)');
      assert.ok(
        otherEvents.some((e) => e.event === 'boot-script' && e.mac === MAC),
        `server ${other.name} gave the machine its boot script`,
      );
      assert.equal(ready.groups!.ip!.split('/')[0], firstAck.address);
      assert.match(ready.groups!.hostname!, /^node-/);
      // The runtime reported to the live server: it got its settings there.
      assert.ok(
        otherEvents.some((e) => e.event === 'runtime-env' && e.mac === MAC),
        `the runtime read its settings from server ${other.name}`,
      );
      t.diagnostic(
        `failover: ${first.name} killed ${((killedAt - started) / 1000).toFixed(1)} s into the boot, ${other.name} ACKed ${((Date.parse(String(otherAck.time)) - killedAt) / 1000).toFixed(1)} s after the kill; ready after ${seconds.toFixed(1)} s`,
      );
    } finally {
      qemu?.kill('SIGKILL');
      for (const peer of peers) peer.child.kill('SIGKILL');
      for (const ns of namespaces.reverse()) ns.delete();
      await postgres?.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
);
