import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { runRackboot } from './helpers/run.js';

const rackboot = (args: string[]) => runRackboot(args);

test('whatif: the example profile, as BIOS and as EFI, without a build', async () => {
  const bios = await rackboot(['whatif', '52-54-00-12-34-56', '--profiles', 'profiles/examples', '--assets', '/nonexistent', '--address', '198.18.0.1']);
  assert.equal(bios.code, 0, bios.stderr);
  const report = JSON.parse(bios.stdout) as Record<string, any>;
  assert.equal(report.mac, '52:54:00:12:34:56');
  assert.equal(report.profile.hostname, 'node01');
  assert.equal(report.profile.source, 'profiles/examples/node01.yaml');
  assert.equal(report.result, 'no-build');
  assert.deepEqual(report.dhcp.firmware, { kind: 'tftp', file: 'undionly.kpxe' });
  assert.deepEqual(report.dhcp.ipxe, { kind: 'http', url: 'http://198.18.0.1/boot.ipxe' });
  assert.match(report.script, /the server has no boot parts yet \(run "rackboot build"\)/);

  const efi = await rackboot(['whatif', '52:54:00:12:34:56', '--arch', 'efi64', '--profiles', 'profiles/examples', '--assets', '/nonexistent']);
  assert.deepEqual((JSON.parse(efi.stdout) as Record<string, any>).dhcp.firmware, { kind: 'tftp', file: 'ipxe.efi' });
});

test('whatif: with a build, the exact command lines and script; unknown MAC uses the default', async () => {
  const work = await mkdtemp(path.join(tmpdir(), 'rackboot-cli-'));
  try {
    const build = path.join(work, 'assets/builds/b1');
    await mkdir(build, { recursive: true });
    await writeFile(path.join(build, 'manifest.json'), JSON.stringify({ id: 'b1', created: '', release: 'bookworm', files: [] }));
    await import('node:fs/promises').then((fs) => fs.symlink('builds/b1', path.join(work, 'assets/current')));
    const result = await rackboot(['whatif', 'aa:bb:cc:dd:ee:01', '--profiles', 'profiles', '--assets', path.join(work, 'assets'), '--address', '198.18.0.1', '--http-port', '8080']);
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as Record<string, any>;
    assert.equal(report.result, 'boot');
    assert.equal(report.build, 'b1');
    assert.equal(report.profile.hostname, 'node-aabbccddee01');
    assert.equal(report.xenCommandLine, 'console=com1,vga com1=115200,8n1 dom0_mem=256M,max:256M');
    assert.match(report.kernelCommandLine, /rackboot\.mac=aa:bb:cc:dd:ee:01 rackboot\.hostname=node-aabbccddee01 rackboot\.net=dhcp/);
    assert.match(report.script, /^kernel http:\/\/198\.18\.0\.1:8080\/builds\/b1\/xen console=com1,vga/m);
    // default.yaml's demo guests, which this empty build cannot start.
    assert.deepEqual(report.menu, ['standard', 'testing']);
    assert.equal(report.defaultEntry, 'standard');
    assert.deepEqual(report.domains.map((domain: { name: string; start: boolean }) => [domain.name, domain.start]), [['demo1', false], ['demo2', false]]);
    assert.deepEqual(report.notes, ['domain demo1 not started: build has no vmlinuz or guest.initrd.gz', 'domain demo2 not started: build has no vmlinuz or guest.initrd.gz']);
    assert.match(report.runtimeEnv, /^RACKBOOT_DOMAINS=''$/m);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});

test('bad command lines fail with exit 2 and say what is wrong', async () => {
  const mac = await rackboot(['whatif', 'nonsense']);
  assert.equal(mac.code, 2);
  assert.match(mac.stderr, /rackboot: "nonsense" is not a MAC address/);

  const noInterface = await rackboot(['serve']);
  assert.equal(noInterface.code, 2);
  assert.match(noInterface.stderr, /Missing required argument: interface/);

  const missing = await rackboot(['serve', '--interface', 'nosuchif0', '--profiles', 'profiles']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /rackboot: interface "nosuchif0" does not exist/);

  const tftpServer = await rackboot(['serve', '--interface', 'lo', '--tftp-server', '198.18.0.300', '--profiles', 'profiles']);
  assert.equal(tftpServer.code, 2);
  assert.match(tftpServer.stderr, /rackboot: --tftp-server "198\.18\.0\.300": not an IPv4 address/);

  const rate = await rackboot(['serve', '--interface', 'lo', '--dhcp-new-clients-per-second', '0', '--profiles', 'profiles']);
  assert.equal(rate.code, 2);
  assert.match(rate.stderr, /--dhcp-new-clients-per-second must be a number above 0, not 0/);
  const firstLease = await rackboot(['serve', '--interface', 'lo', '--first-lease-time', '30', '--profiles', 'profiles']);
  assert.equal(firstLease.code, 2);
  assert.match(firstLease.stderr, /--first-lease-time must be a whole number of seconds from 60, not 30/);

  const unknown = await rackboot(['frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /Unknown argument: frobnicate/);
});

test('whatif --circuit-id/--remote-id: what a machine in that slot would get', async () => {
  const args = ['whatif', '02:00:00:00:00:99', '--profiles', 'profiles/examples', '--assets', '/nonexistent', '--address', '198.18.0.1'];
  const inSlot = await rackboot([...args, '--circuit-id', 'r1', '--remote-id', 'sw-rack3']);
  assert.equal(inSlot.code, 0, inSlot.stderr);
  const report = JSON.parse(inSlot.stdout) as Record<string, any>;
  assert.equal(report.slot, 'circuit-id "r1" remote-id "sw-rack3"');
  assert.equal(report.profile.hostname, 'rack3-slot1');
  assert.deepEqual(report.reservation, { address: '198.18.3.11/24', source: 'profiles/examples/rack3-slot1.yaml' });

  const otherRelay = JSON.parse((await rackboot([...args, '--circuit-id', '0x7231', '--remote-id', 'sw-rack4'])).stdout) as Record<string, any>;
  assert.equal(otherRelay.profile, null, 'no profile for that slot, and profiles/examples has no default');
  assert.equal(otherRelay.result, 'no-profile');

  const bad = await rackboot([...args, '--circuit-id', '0x7']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /rackboot: --circuit-id "0x7": "0x7" is not hex bytes/);
});

test('serve refuses profiles that take its own address or the router\'s as their static address, naming file, line and field', async () => {
  const { assertRoot, Netns } = await import('./helpers/netns.js');
  const { cliPath } = await import('./helpers/build.js');
  assertRoot();
  const work = await mkdtemp(path.join(tmpdir(), 'rackboot-cli-serve-'));
  const ns = Netns.create('rbcli');
  const peer = Netns.create('rbclp');
  try {
    ns.linkTo(peer, { device: 'd0', cidr: '198.18.0.1/24' }, { device: 'p0', cidr: '198.18.0.2/24' });
    await mkdir(path.join(work, 'profiles'));
    const staticProfile = (mac: string, address: string) => `mac: ${mac}\nhostname: node-${mac.slice(-2)}\nnetwork:\n  mode: static\n  address: ${address}/24\n`;
    await writeFile(path.join(work, 'profiles/node01.yaml'), staticProfile('02:00:00:00:0c:01', '198.18.0.1'));
    await writeFile(path.join(work, 'profiles/node02.yaml'), staticProfile('02:00:00:00:0c:02', '198.18.0.254'));
    const args = [cliPath, 'serve', '--interface', 'd0', '--address', '198.18.0.1', '--dhcp', 'off', '--router', '198.18.0.254', '--http-port', '0', '--tftp-port', '0'];
    args.push('--profiles', path.join(work, 'profiles'), '--assets', path.join(work, 'assets'), '--state', path.join(work, 'state'));
    const child = ns.spawn(process.execPath, args, { env: { ...process.env, RACKBOOT_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    try {
      const deadline = Date.now() + 20_000;
      while (!output.includes('rackboot is serving') && child.exitCode === null && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      assert.match(output, /rackboot is serving/);
      assert.match(output, /node01\.yaml:5:12: network\.address: 198\.18\.0\.1 is this server's address; a host cannot have it as its static address \(this file is not served\)/);
      assert.match(output, /node02\.yaml:5:12: network\.address: 198\.18\.0\.254 is the router's address \(--router\); a host cannot have it/);
    } finally {
      child.kill('SIGKILL');
    }
  } finally {
    peer.delete();
    ns.delete();
    await rm(work, { recursive: true, force: true });
  }
});
