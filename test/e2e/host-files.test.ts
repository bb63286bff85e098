import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { tftpHostFile } from '../../server/boot/host-files.js';
import { startRack, serverAddress, httpPort, type Rack } from '../helpers/boot.js';

let rack: Rack;

before(async () => {
  rack = await startRack({
    'node01.yaml': ['mac: 52:54:00:12:34:56', 'hostname: node01', 'rootPasswordHash: "$6$salt$' + 'a'.repeat(86) + '"', 'domains:', '  - name: web1', ''].join('\n'),
  });
});

after(async () => {
  await rack?.close();
});

test('tftpHostFile: which generated files TFTP serves', () => {
  assert.deepEqual(tftpHostFile('hosts/52-54-00-12-34-56/boot.ipxe'), { mac: '52-54-00-12-34-56', name: 'boot.ipxe' });
  assert.deepEqual(tftpHostFile('hosts/52-54-00-12-34-56/builds/b1/xen.cfg'), { mac: '52-54-00-12-34-56', name: 'xen.cfg', buildId: 'b1' });
  assert.deepEqual(tftpHostFile('hosts/52-54-00-12-34-56/builds/b1/testing/xen.cfg'), {
    mac: '52-54-00-12-34-56', name: 'xen.cfg', buildId: 'b1', entry: 'testing',
  });
  assert.deepEqual(tftpHostFile('hosts/52-54-00-12-34-56/domains/web1.cfg'), { mac: '52-54-00-12-34-56', name: 'domain.cfg', domain: 'web1' });
  assert.equal(tftpHostFile('hosts/52-54-00-12-34-56/domains/.cfg'), undefined);
  assert.equal(tftpHostFile('hosts/52-54-00-12-34-56/domains/web1'), undefined);
  assert.equal(tftpHostFile('hosts/52-54-00-12-34-56/runtime.env'), undefined, 'the root hash never goes out by TFTP');
  assert.equal(tftpHostFile('hosts/52-54-00-12-34-56'), undefined);
  assert.equal(tftpHostFile('ipxe.efi'), undefined);
});

test('per-host files by TFTP are the bytes HTTP serves, with the right tsize', { timeout: 60_000 }, async () => {
  const http = rack.ns.exec('curl', ['-sS', '--fail', `http://${serverAddress}:${httpPort}/hosts/52-54-00-12-34-56/boot.ipxe?platform=pcbios`]);
  assert.match(http, /^kernel http:\/\/198\.18\.0\.1:8080\/builds\/.+\/xen console=com1/m);
  const tftp = rack.ns.exec('curl', ['-sS', '--fail', `tftp://${serverAddress}/hosts/52-54-00-12-34-56/boot.ipxe`]);
  // The same script, but each one carries a token of its own (per boot, see host-token.ts), of the same length.
  const tokens = (script: string) => [...script.matchAll(/rackboot\.token=(\S+)/g)].map((match) => match[1]!);
  const withoutTokens = (script: string) => script.replaceAll(/rackboot\.token=\S+/g, 'rackboot.token=TOKEN');
  assert.equal(withoutTokens(tftp), withoutTokens(http));
  assert.ok(tokens(http).length >= 2 && new Set([...tokens(http), ...tokens(tftp)]).size === 2, 'one token per script, used by each of its Xen entries');

  // tsize (RFC 2349) names the generated file's exact length.
  const trace = rack.ns.exec('sh', [
    '-c',
    `atftp --trace --option "tsize 0" --get -r hosts/52-54-00-12-34-56/boot.ipxe -l /dev/null ${serverAddress} 2>&1; true`,
  ]);
  assert.match(trace, new RegExp(`tsize: ${Buffer.byteLength(http)}\\b|tsize ${Buffer.byteLength(http)}\\b`), trace);

  const build = /builds\/([^/]+)\/xen /.exec(http)![1]!;
  const cfgHttp = rack.ns.exec('curl', ['-sS', '--fail', `http://${serverAddress}:${httpPort}/hosts/52-54-00-12-34-56/builds/${build}/xen.cfg`]);
  const cfgTftp = rack.ns.exec('curl', ['-sS', '--fail', `tftp://${serverAddress}/hosts/52-54-00-12-34-56/builds/${build}/xen.cfg`]);
  assert.equal(withoutTokens(cfgTftp), withoutTokens(cfgHttp));
  assert.match(cfgTftp, /^\[rackboot\]$/m);

  // A domain config is the host's secret: served with the host's boot token;
  // over TFTP, which carries no token, only to the host's leased address.
  const domainUrl = `http://${serverAddress}:${httpPort}/hosts/52-54-00-12-34-56/domains/web1.cfg`;
  const domainHttp = rack.ns.exec('curl', ['-sS', '--fail', `${domainUrl}?token=${tokens(http)[0]}`]);
  assert.match(domainHttp, /^name = "web1"$/m);
  assert.throws(() => rack.ns.exec('curl', ['-sS', '--fail', domainUrl]), /403/);
  assert.throws(() => rack.ns.exec('curl', ['-sS', '--fail', `tftp://${serverAddress}/hosts/52-54-00-12-34-56/domains/web1.cfg`]));

  // The secrets file is HTTP only.
  assert.throws(() => rack.ns.exec('curl', ['-sS', '--fail', `tftp://${serverAddress}/hosts/52-54-00-12-34-56/runtime.env`]));
});

test('events: busybox wget posts a report as the runtime does; it is logged with the MAC and listed', { timeout: 60_000 }, async () => {
  const url = `http://${serverAddress}:${httpPort}/hosts/52:54:00:12:34:56/events`;
  rack.ns.exec('busybox', ['wget', '-q', '-O', '/dev/null', '--post-data', 'stage=domain-started&domain=web1&detail=domid%3D1', url]);
  // A refused report: busybox wget exits non-zero on the 400.
  assert.throws(() => rack.ns.exec('busybox', ['wget', '-q', '-O', '/dev/null', '--post-data', 'stage=rebooting', url]));
  // The host's timeline also holds what the servers saw (the files fetched above); the report is the runtime's one event.
  const timeline = JSON.parse(rack.ns.exec('curl', ['-sS', '--fail', url])) as Array<Record<string, unknown>>;
  assert.ok(timeline.some((event) => event.source === 'http' && event.stage === 'boot.ipxe'));
  const listed = timeline.filter((event) => event.source === 'runtime');
  assert.equal(listed.length, 1);
  assert.deepEqual(
    { ...listed[0], id: undefined, time: undefined },
    { id: undefined, time: undefined, mac: '52:54:00:12:34:56', source: 'runtime', stage: 'domain-started', domain: 'web1', detail: 'domid=1' },
  );
  const deadline = Date.now() + 5000;
  const logged = () => rack.events().filter((event) => event.event === 'host-event' || event.event === 'host-event-refused');
  while (logged().length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(
    logged().map((event) => [event.event, event.mac, event.stage ?? event.field]),
    [
      ['host-event', '52:54:00:12:34:56', 'domain-started'],
      ['host-event-refused', '52:54:00:12:34:56', 'stage'],
    ],
  );
});
