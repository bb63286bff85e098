import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { tftpHostFile } from '../../server/core/host-files.js';
import { addClient, startRack, serverAddress, httpPort, type Rack, type RackClient } from '../support/boot.js';

let rack: Rack;
/** The host itself, on the wire: it takes its address from rackboot by DHCP, as iPXE does. */
let host: RackClient;

before(async () => {
  rack = await startRack(
    {
      'node01.yaml': [
        'mac: 52:54:00:12:34:56',
        'hostname: node01',
        'rootPasswordHash: "$6$salt$' + 'a'.repeat(86) + '"',
        'domains:',
        '  - name: web1',
        '',
      ].join('\n'),
    },
    { bridge: true },
  );
  host = await addClient(rack, '52:54:00:12:34:56');
  host.dhcp();
});

after(async () => {
  host?.close();
  await rack?.close();
});

test('tftpHostFile: which generated files TFTP serves', () => {
  assert.deepEqual(tftpHostFile('hosts/52-54-00-12-34-56/boot.ipxe'), { mac: '52-54-00-12-34-56', name: 'boot.ipxe' });
  assert.deepEqual(tftpHostFile('hosts/52-54-00-12-34-56/builds/b1/xen.cfg'), { mac: '52-54-00-12-34-56', name: 'xen.cfg', buildId: 'b1' });
  assert.deepEqual(tftpHostFile('hosts/52-54-00-12-34-56/builds/b1/testing/xen.cfg'), {
    mac: '52-54-00-12-34-56',
    name: 'xen.cfg',
    buildId: 'b1',
    entry: 'testing',
  });
  assert.deepEqual(tftpHostFile('hosts/52-54-00-12-34-56/domains/web1.cfg'), { mac: '52-54-00-12-34-56', name: 'domain.cfg', domain: 'web1' });
  assert.equal(tftpHostFile('hosts/52-54-00-12-34-56/domains/.cfg'), undefined);
  assert.equal(tftpHostFile('hosts/52-54-00-12-34-56/domains/web1'), undefined);
  assert.equal(tftpHostFile('hosts/52-54-00-12-34-56/runtime.env'), undefined, 'the root hash never goes out by TFTP');
  assert.equal(tftpHostFile('hosts/52-54-00-12-34-56'), undefined);
  assert.equal(tftpHostFile('ipxe.efi'), undefined);
});

test('per-host files by TFTP are the bytes HTTP serves, with the right tsize', { timeout: 60_000 }, async () => {
  const http = host.ns.exec('curl', ['-sS', '--fail', `http://${serverAddress}:${httpPort}/hosts/52-54-00-12-34-56/boot.ipxe?platform=pcbios`]);
  // Multiboot lines name the build by its digest alone: iPXE has 512 bytes for all of them.
  assert.match(http, /^set rbstep xen && kernel http:\/\/198\.18\.0\.1:8080\/b\/[0-9a-f]{8}\/xen console=com1/m);
  const tftp = host.ns.exec('curl', ['-sS', '--fail', `tftp://${serverAddress}/hosts/52-54-00-12-34-56/boot.ipxe`]);
  // The same script, but each one carries a token of its own (per boot, see host-token.ts), of the same length.
  const tokens = (script: string) => [...script.matchAll(/rackboot\.token=(b\.\S+)/g)].map((match) => match[1]!);
  const withoutTokens = (script: string) => script.replaceAll(/rackboot\.token=\S+/g, 'rackboot.token=TOKEN');
  assert.equal(withoutTokens(tftp), withoutTokens(http));
  assert.ok(tokens(http).length >= 2 && new Set([...tokens(http), ...tokens(tftp)]).size === 2, 'one token per script, used by each of its Xen entries');

  // tsize (RFC 2349) names the generated file's exact length.
  const trace = host.ns.exec('sh', [
    '-c',
    `atftp --trace --option "tsize 0" --get -r hosts/52-54-00-12-34-56/boot.ipxe -l /dev/null ${serverAddress} 2>&1; true`,
  ]);
  assert.match(trace, new RegExp(`tsize: ${Buffer.byteLength(http)}\\b|tsize ${Buffer.byteLength(http)}\\b`), trace);

  const build = /, build (\S+), entry /.exec(http)![1]!;
  const digest = /\/b\/([0-9a-f]{8})\/xen /.exec(http)![1]!;
  assert.ok(build.endsWith(`-${digest}`));
  const bytes = (url: string) => host.ns.exec('curl', ['-sS', '--fail', '-o', '/dev/null', '-w', '%{size_download}', url]);
  assert.equal(bytes(`http://${serverAddress}:${httpPort}/b/${digest}/vmlinuz`), bytes(`http://${serverAddress}:${httpPort}/builds/${build}/vmlinuz`));
  const cfgHttp = host.ns.exec('curl', ['-sS', '--fail', `http://${serverAddress}:${httpPort}/hosts/52-54-00-12-34-56/builds/${build}/xen.cfg`]);
  const cfgTftp = host.ns.exec('curl', ['-sS', '--fail', `tftp://${serverAddress}/hosts/52-54-00-12-34-56/builds/${build}/xen.cfg`]);
  assert.equal(withoutTokens(cfgTftp), withoutTokens(cfgHttp));
  assert.match(cfgTftp, /^\[rackboot\]$/m);

  // A domain config is the host's secret: served with the newest boot token,
  // in its header, to the address it was handed to; TFTP carries no token.
  const domainUrl = `http://${serverAddress}:${httpPort}/hosts/52-54-00-12-34-56/domains/web1.cfg`;
  const newest = tokens(cfgTftp)[0]!;
  const domainHttp = host.ns.exec('curl', ['-sS', '--fail', '-H', `X-Rackboot-Token: ${newest}`, domainUrl]);
  assert.match(domainHttp, /^name = "web1"$/m);
  assert.match(domainHttp, /rackboot\.token=g\./, 'the guest gets a token of its own');
  assert.throws(() => host.ns.exec('curl', ['-sS', '--fail', domainUrl]), /403/);
  assert.throws(() => host.ns.exec('curl', ['-sS', '--fail', `${domainUrl}?token=${newest}`]), /403/, 'a token in the URL counts for nothing');
  assert.throws(() => host.ns.exec('curl', ['-sS', '--fail', `tftp://${serverAddress}/hosts/52-54-00-12-34-56/domains/web1.cfg`]));

  // The secrets file is HTTP only.
  assert.throws(() => host.ns.exec('curl', ['-sS', '--fail', `tftp://${serverAddress}/hosts/52-54-00-12-34-56/runtime.env`]));
});

test("a stranger on the wire, even on the host's own address, gets the boot script without a token, and no secrets", { timeout: 60_000 }, async () => {
  const stranger = await addClient(rack, '02:00:00:00:0b:ad');
  try {
    const scriptUrl = `http://${serverAddress}:${httpPort}/hosts/52-54-00-12-34-56/boot.ipxe?platform=pcbios`;
    // With its own address from rackboot, then with the host's address put on its own interface.
    for (const take of [() => stranger.dhcp(), () => stranger.setAddress(`${host.address}/24`)]) {
      take();
      const script = stranger.ns.exec('curl', ['-sS', '--fail', scriptUrl]);
      assert.doesNotMatch(script, /rackboot\.token=/);
      assert.match(script, /^echo rackboot: no boot token for 52:54:00:12:34:56: /m);
      assert.doesNotMatch(stranger.ns.exec('curl', ['-sS', '--fail', `tftp://${serverAddress}/hosts/52-54-00-12-34-56/boot.ipxe`]), /rackboot\.token=/);
    }
    assert.match(stranger.ns.exec('curl', ['-sS', '--fail', scriptUrl]), /neighbour table has 02:00:00:00:0b:ad for 198\.18\.0\.\d+, not 52:54:00:12:34:56/);
    const refused = stranger.ns.exec('curl', [
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `http://${serverAddress}:${httpPort}/hosts/52-54-00-12-34-56/runtime.env`,
    ]);
    assert.equal(refused, '403');
  } finally {
    stranger.close();
  }
  host.setAddress(`${host.address}/24`); // the host's own address again, after the stranger's use of it
});

test('events: busybox wget posts a report with the boot token as the runtime does; it is logged with the MAC and listed', { timeout: 60_000 }, async () => {
  host.dhcp(); // a new boot: DHCP, then the boot script with its token
  const script = host.ns.exec('curl', ['-sS', '--fail', `http://${serverAddress}:${httpPort}/hosts/52-54-00-12-34-56/boot.ipxe?platform=pcbios`]);
  const token = /rackboot\.token=(b\.\S+)/.exec(script)![1]!;
  const url = `http://${serverAddress}:${httpPort}/hosts/52:54:00:12:34:56/events`;
  // Without the token (from anyone, the host too), a report is refused and not stored.
  assert.throws(() => host.ns.exec('busybox', ['wget', '-q', '-O', '/dev/null', '--post-data', 'stage=ready', url]));
  host.ns.exec('busybox', [
    'wget',
    '-q',
    '-O',
    '/dev/null',
    '--header',
    `X-Rackboot-Token: ${token}`,
    '--post-data',
    'stage=domain-started&domain=web1&detail=domid%3D1',
    url,
  ]);
  // A refused report (a stage the runtime never reports): busybox wget exits non-zero on the 400.
  assert.throws(() =>
    host.ns.exec('busybox', ['wget', '-q', '-O', '/dev/null', '--header', `X-Rackboot-Token: ${token}`, '--post-data', 'stage=hibernating', url]),
  );
  // The host's timeline also holds what the servers saw (the files fetched above); the report is the runtime's one event.
  const timeline = JSON.parse(host.ns.exec('curl', ['-sS', '--fail', url])) as Array<Record<string, unknown>>;
  assert.ok(timeline.some((event) => event.source === 'http' && event.stage === 'boot.ipxe'));
  const listed = timeline.filter((event) => event.source === 'runtime');
  assert.equal(listed.length, 1);
  assert.deepEqual(
    { ...listed[0], id: undefined, time: undefined },
    { id: undefined, time: undefined, mac: '52:54:00:12:34:56', source: 'runtime', stage: 'domain-started', domain: 'web1', detail: 'domid=1' },
  );
  const deadline = Date.now() + 5000;
  const logged = () => rack.events().filter((event) => event.event === 'host-event' || event.event === 'host-event-refused');
  while (logged().length < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(
    logged().map((event) => [event.event, event.mac, event.stage ?? event.field]),
    [
      ['host-event-refused', '52:54:00:12:34:56', 'ready'],
      ['host-event', '52:54:00:12:34:56', 'domain-started'],
      ['host-event-refused', '52:54:00:12:34:56', 'stage'],
    ],
  );
});
