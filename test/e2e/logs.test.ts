import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { addClient, httpPort, serverAddress, startRack } from '../support/boot.js';
import { cliPath } from '../support/build.js';
import { collect } from '../support/run.js';
import { until } from '../support/until.js';

/**
 * Hosts' syslog on a test wire: a host that took its address from
 * rackboot's DHCP sends lines with util-linux logger (RFC 5424 and RFC
 * 3164, over UDP), and `rackboot logs` shows them, by boot: lines before
 * its boot script are boot 0, after it boot 1. A stranger on the same
 * wire (its own MAC, an address it chose) sends lines too: they reach no
 * host's log, and the server says why. The server's neighbour entries are
 * flushed first: a host that only sends is asked for its MAC (ARP). Needs root; fails (never skips) without it.
 */

const hostMac = '02:00:00:00:19:01';

test("a host's syslog lines are kept per boot and shown by rackboot logs; a stranger's are attributed to no one", { timeout: 120_000 }, async () => {
  const rack = await startRack({ 'h1.yaml': `mac: ${hostMac}\nhostname: h1\n` }, { bridge: true });
  try {
    const admin = ['--server', `${serverAddress}:${httpPort}`, '--state', path.join(rack.work, 'state')];
    const logs = async (args: string[]) => {
      const result = await collect(rack.ns.spawn(process.execPath, [cliPath, 'logs', ...args, ...admin], { stdio: ['ignore', 'pipe', 'pipe'] }), {
        timeoutMs: 30_000,
        what: `rackboot logs ${args.join(' ')}`,
      });
      assert.equal(result.code, 0, result.stderr);
      return result.stdout;
    };
    const host = await addClient(rack, hostMac);
    host.dhcp();
    const stranger = await addClient(rack, '02:66:66:66:66:66');
    stranger.setAddress('198.18.0.77/24');
    const send = (client: typeof host, args: string[], text: string, transport: string[] = ['--udp']) =>
      client.ns.exec('logger', ['--server', serverAddress, '--port', '514', ...transport, ...args, text]);

    // The server's kernel needs no neighbour entry to receive a datagram: with
    // the entries gone, the host is known only after the server asks (ARP).
    rack.ns.ip('neigh', 'flush', 'dev', 'br0');
    send(host, ['--rfc5424', '-t', 'rackboot-runtime', '-p', 'daemon.info'], 'before the boot script');
    send(host, ['--rfc3164', '-t', 'udhcpc'], 'lease obtained');
    send(stranger, ['--rfc5424', '-t', 'rackboot-runtime'], 'a stranger pretending');
    // What the server said, without the polls' own request lines.
    const context = () =>
      rack.server.transcript
        .split('\n')
        .filter((line) => !line.includes('"event":"http"'))
        .join('\n')
        .slice(-4000) +
      rack.ns
        .exec('curl', ['-sS', `http://${serverAddress}:${httpPort}/metrics`])
        .split('\n')
        .filter((line) => line.startsWith('rackboot_syslog'))
        .join('\n');
    await until('two lines in the log', 20_000, async () => ((await logs([hostMac])).split('\n').filter(Boolean).length >= 2 ? true : undefined), context);

    // Its boot script starts boot 1.
    host.ns.exec('curl', ['-sSf', '-o', '/dev/null', `http://${serverAddress}:${httpPort}/hosts/${hostMac}/boot.ipxe?platform=pcbios`]);
    send(host, ['--rfc5424', '-t', 'rackboot-runtime'], 'ready hostname=h1');
    // TCP too (RFC 6587), in both framings.
    send(host, ['--rfc5424', '-t', 'rackboot-runtime'], 'over TCP, octet-counted', ['--tcp', '--octet-count']);
    send(host, ['--rfc3164', '-t', 'udhcpc'], 'over TCP, one line', ['--tcp']);
    await until(
      'the lines of boot 1',
      20_000,
      async () => ((await logs([hostMac, '--boot', '1'])).split('\n').filter(Boolean).length >= 3 ? true : undefined),
      context,
    );

    const all = (await logs([hostMac]))
      .split('\n')
      .filter(Boolean)
      .map((line) => line.replace(/ \d{4}-\d\d-\d\dT\S+Z /, ' TIME ').replace(/\(\d+ bytes\)$/, '(NN bytes)'));
    assert.deepEqual(all, [
      '0 TIME syslog rackboot-runtime: before the boot script',
      '0 TIME syslog udhcpc: lease obtained',
      // The server's own line: the host fetched its boot script (what iPXE does first).
      '1 TIME ipxe ipxe: iPXE fetched its boot script (NN bytes)',
      '1 TIME syslog rackboot-runtime: ready hostname=h1',
      '1 TIME syslog rackboot-runtime: over TCP, octet-counted',
      '1 TIME syslog udhcpc: over TCP, one line',
    ]);
    const json = (await logs([hostMac, '--boot', '1', '--json']))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.deepEqual(
      json.map((line) => [line.mac, line.boot, line.source, line.app, line.severity, String(line.text).replace(/\(\d+ bytes\)$/, '(NN bytes)')]),
      [
        [hostMac, 1, 'ipxe', 'ipxe', 6, 'iPXE fetched its boot script (NN bytes)'],
        [hostMac, 1, 'syslog', 'rackboot-runtime', 5, 'ready hostname=h1'],
        [hostMac, 1, 'syslog', 'rackboot-runtime', 5, 'over TCP, octet-counted'],
        [hostMac, 1, 'syslog', 'udhcpc', 5, 'over TCP, one line'],
      ],
    );
    assert.equal(await logs(['02:66:66:66:66:66']), '', "the stranger's MAC has no log");
    const metrics = rack.ns.exec('curl', ['-sSf', `http://${serverAddress}:${httpPort}/metrics`]);
    assert.match(metrics, /^rackboot_syslog_datagrams_total\{result="kept"\} 5$/m);
    assert.match(metrics, /^rackboot_syslog_datagrams_total\{result="stranger"\} 1$/m, 'the stranger is counted');
    assert.doesNotMatch(await logs([hostMac]), /stranger/);
    // A stranger's TCP connection is closed as it opens (logger may or may not see it fail).
    try {
      send(stranger, ['-t', 'evil'], 'a stranger over TCP', ['--tcp']);
    } catch {
      // refused: what is asserted is the server's count
    }
    const refused = () => /^rackboot_syslog_tcp_refused_total 1$/m.test(rack.ns.exec('curl', ['-sSf', `http://${serverAddress}:${httpPort}/metrics`]));
    await until("the stranger's TCP connection refused", 10_000, () => (refused() ? true : undefined), context);
    assert.doesNotMatch(await logs([hostMac]), /a stranger over TCP/);
    assert.match(
      rack.server.transcript,
      /"remote":"198\.18\.0\.77","reason":"198\.18\.0\.77 \(02:66:66:66:66:66\) is not the address rackboot's DHCP gave 02:66:66:66:66:66, nor its profile's static address"/,
      "the stranger's drop is said with its reason",
    );
    host.close();
    stranger.close();
  } finally {
    await rack.close();
  }
});
