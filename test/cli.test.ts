import assert from 'node:assert/strict';
import { access, mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { cliPath } from './support/build.js';
import { assertRoot, Netns } from './support/netns.js';
import { collect, runRackboot, type Finished } from './support/run.js';

const rackboot = (args: string[]) => runRackboot(args);

/** A test wire: a namespace with d0 at 198.18.0.1/24 (and a peer on it), a work folder with a profiles folder, and serve's command line on it. */
interface Wire {
  ns: Netns;
  work: string;
  profiles: string;
  /** `rackboot serve FLAGS` on d0 with the work folder's profiles, assets and state, unless FLAGS name others. */
  serveArgs(flags: string[]): string[];
  /** Run it to its exit. */
  run(args: string[]): Promise<Finished>;
  /** Start it, wait for "rackboot is serving" (or its exit), stop it; what it printed, as info-level JSON lines. */
  untilServing(args: string[]): Promise<string>;
}

async function onWire(label: string, body: (wire: Wire) => Promise<void>): Promise<void> {
  assertRoot();
  const work = await mkdtemp(path.join(tmpdir(), `rackboot-cli-${label}-`));
  const ns = Netns.create(`rbc${label}`);
  const peer = Netns.create(`rbc${label}p`);
  const env = { ...process.env, RACKBOOT_LOG_LEVEL: 'info' };
  try {
    ns.linkTo(peer, { device: 'd0', cidr: '198.18.0.1/24' }, { device: 'p0', cidr: '198.18.0.2/24' });
    const profiles = path.join(work, 'profiles');
    await mkdir(profiles);
    await body({
      ns,
      work,
      profiles,
      serveArgs: (flags) => {
        const unless = (flag: string, value: string) => (flags.includes(flag) ? [] : [flag, value]);
        return [
          cliPath,
          'serve',
          ...unless('--interface', 'd0'),
          ...unless('--profiles', profiles),
          ...unless('--assets', path.join(work, 'assets')),
          ...unless('--state', path.join(work, 'state')),
          ...flags,
        ];
      },
      run: (args) => collect(ns.spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] }), { timeoutMs: 20_000 }),
      untilServing: async (args) => {
        const child = ns.spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
        let output = '';
        child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
        child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
        const deadline = Date.now() + 20_000;
        while (!output.includes('rackboot is serving') && child.exitCode === null && Date.now() < deadline)
          await new Promise((resolve) => setTimeout(resolve, 50));
        child.kill('SIGKILL');
        return output;
      },
    });
  } finally {
    ns.delete();
    peer.delete();
    await rm(work, { recursive: true, force: true });
  }
}

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
  assert.equal(report.profileFrom, 'profiles/examples/node01.yaml (its own file)');

  // A machine of the example group: its entry, and the guest MAC derived from its own.
  const member = await rackboot(['whatif', '52:54:00:03:00:02', '--profiles', 'profiles/examples', '--assets', '/nonexistent']);
  assert.equal(member.code, 0, member.stderr);
  const memberReport = JSON.parse(member.stdout) as Record<string, any>;
  assert.equal(memberReport.profile.hostname, 'r3n02');
  assert.equal(memberReport.reservation.address, '198.18.3.22/24');
  assert.equal(memberReport.profileFrom, 'profiles/examples/rack3.yaml (group entry hosts[1], line 20)');

  // A CHAP secret travels only to its host: whatif shows that there is one, not what it is.
  const storage = await rackboot(['whatif', '52:54:00:00:07:01', '--profiles', 'profiles/examples', '--assets', '/nonexistent']);
  assert.equal(storage.code, 0, storage.stderr);
  assert.doesNotMatch(storage.stdout, /change-this-secret/);
  assert.deepEqual((JSON.parse(storage.stdout) as Record<string, any>).profile.storage.iscsi[0].chap, {
    user: 'xen07',
    secret: '(hidden: sent only to the host)',
  });
});

test('whatif: with a build, the exact command lines and script; unknown MAC uses the default', async () => {
  const work = await mkdtemp(path.join(tmpdir(), 'rackboot-cli-'));
  try {
    const build = path.join(work, 'assets/builds/b1');
    await mkdir(build, { recursive: true });
    await writeFile(path.join(build, 'manifest.json'), JSON.stringify({ id: 'b1', created: '2026-11-25T18:00:00Z', release: 'bookworm', files: [] }));
    await import('node:fs/promises').then((fs) => fs.symlink('builds/b1', path.join(work, 'assets/current')));
    const result = await rackboot([
      'whatif',
      'aa:bb:cc:dd:ee:01',
      '--profiles',
      'profiles',
      '--assets',
      path.join(work, 'assets'),
      '--address',
      '198.18.0.1',
      '--http-port',
      '8080',
    ]);
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as Record<string, any>;
    assert.equal(report.result, 'boot');
    assert.equal(report.build, 'b1');
    assert.equal(report.profile.hostname, 'node-aabbccddee01');
    assert.equal(report.xenCommandLine, 'console=com1,vga com1=115200,8n1 dom0_mem=256M,max:256M');
    assert.match(report.kernelCommandLine, /rackboot\.mac=aa:bb:cc:dd:ee:01 rackboot\.hostname=node-aabbccddee01 rackboot\.net=dhcp/);
    assert.match(report.script, /^set rbstep xen && kernel http:\/\/198\.18\.0\.1:8080\/builds\/b1\/xen console=com1,vga/m);
    // default.yaml's demo guests, which this empty build cannot start.
    assert.deepEqual(report.menu, ['standard', 'testing']);
    assert.equal(report.defaultEntry, 'standard');
    assert.deepEqual(
      report.domains.map((domain: { name: string; start: boolean }) => [domain.name, domain.start]),
      [
        ['demo1', false],
        ['demo2', false],
      ],
    );
    assert.deepEqual(report.notes, [
      'domain demo1 not started: build has no vmlinuz or guest.initrd.gz',
      'domain demo2 not started: build has no vmlinuz or guest.initrd.gz',
    ]);
    assert.match(report.runtimeEnv, /^RACKBOOT_DOMAINS=''$/m);
    assert.equal(report.buildFrom, "the default channel's current build");

    // A host whose profile names a channel gets that channel's current build, and whatif says why.
    const channelBuild = path.join(work, 'assets/builds/c1');
    await mkdir(channelBuild, { recursive: true });
    await writeFile(
      path.join(channelBuild, 'manifest.json'),
      JSON.stringify({ id: 'c1', created: '2026-11-26T18:00:00Z', release: 'bookworm', channel: 'testing', files: [] }),
    );
    await mkdir(path.join(work, 'assets/channels'));
    await import('node:fs/promises').then((fs) => fs.symlink('../builds/c1', path.join(work, 'assets/channels/testing')));
    await mkdir(path.join(work, 'profiles'));
    await writeFile(path.join(work, 'profiles/n2.yaml'), 'mac: aa:bb:cc:dd:ee:02\nhostname: n2\nboot:\n  channel: testing\n');
    const onChannel = await rackboot(['whatif', 'aa:bb:cc:dd:ee:02', '--profiles', path.join(work, 'profiles'), '--assets', path.join(work, 'assets')]);
    assert.equal(onChannel.code, 0, onChannel.stderr);
    const channelReport = JSON.parse(onChannel.stdout) as Record<string, any>;
    assert.equal(channelReport.build, 'c1');
    assert.equal(channelReport.buildFrom, "channel testing's current build (boot.channel in n2.yaml)");
    assert.match(channelReport.script, /\/builds\/c1\/xen /);
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
  assert.match(missing.stderr, /rackboot: --interface nosuchif0: no such interface/);

  const tftpServer = await rackboot(['serve', '--interface', 'lo', '--tftp-server', '198.18.0.300', '--profiles', 'profiles']);
  assert.equal(tftpServer.code, 2);
  assert.match(tftpServer.stderr, /rackboot: --tftp-server "198\.18\.0\.300": want an IPv4 address/);

  const rate = await rackboot(['serve', '--interface', 'lo', '--dhcp-new-clients-per-second', '0', '--profiles', 'profiles']);
  assert.equal(rate.code, 2);
  assert.match(rate.stderr, /rackboot: --dhcp-new-clients-per-second "0": want a number above 0\n/);
  const firstLease = await rackboot(['serve', '--interface', 'lo', '--first-lease-time', '30', '--profiles', 'profiles']);
  assert.equal(firstLease.code, 2);
  assert.match(firstLease.stderr, /rackboot: --first-lease-time "30": want a whole number of seconds from 60\n/);

  const unknown = await rackboot(['frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /Unknown argument: frobnicate/);
});

test('usage errors name the flag and the text given, first, with a pointer to --help instead of a page of it', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['serve', '--interface', 'lo', '--http-port', 'eighty'], /^rackboot: --http-port "eighty": want a port number from 0 to 65535\n/],
    [['serve', '--interface', 'lo', '--tftp-port', '69x'], /^rackboot: --tftp-port "69x": want a port number from 0 to 65535\n/],
    [['serve', '--interface', 'lo', '--dhcp-port=70000'], /^rackboot: --dhcp-port "70000": want a port number from 0 to 65535\n/],
    [['serve', '--interface', 'lo', '--lease-time', '-5'], /^rackboot: --lease-time "-5": want a whole number of seconds from 60\n/],
    [['serve', '--interface', 'lo', '--tftp-max-transfers', '0'], /^rackboot: --tftp-max-transfers "0": want a whole number from 1\n/],
    [['serve', '--interface', 'lo', '--keep-events', '2.5'], /^rackboot: --keep-events "2.5": want a whole number from 1\n/],
    [['serve', '--interface', 'lo', '--router', '198.18.0'], /^rackboot: --router "198\.18\.0": want an IPv4 address/],
    [['serve', '--interface', 'lo', '--dns', '198.18.0.53', '--dns', 'ns1'], /^rackboot: --dns "ns1": want an IPv4 address/],
    [['serve', '--interface', 'lo', '--pool', '198.18.0.100'], /^rackboot: --pool "198\.18\.0\.100": want START-END/],
    // The mistyped flag, not the required one it was meant to be.
    [['serve', '--intreface', 'lo'], /^rackboot: unknown flag --intreface; did you mean --interface\?\n\(rackboot serve --help lists the options\)\n$/],
    [['serve', '--interface', 'lo', '--dhcp-known-onyl'], /^rackboot: unknown flag --dhcp-known-onyl; did you mean --dhcp-known-only\?\n/],
    [['serv', '--interface', 'lo'], /^rackboot: unknown command "serv"; did you mean serve\?\n\(rackboot --help lists the options\)\n$/],
    [['build', '--keep', '0'], /^rackboot: --keep "0": want a whole number of builds from 1\n/],
    [['whatif', '02:00:00:00:00:01', '--address', 'localhost'], /^rackboot: --address "localhost": want an IPv4 address/],
    [['leases', 'release', '198.18.0.300', '--server', '127.0.0.1'], /^rackboot: leases release "198\.18\.0\.300": want an IPv4 address/],
  ];
  for (const [args, expected] of cases) {
    const result = await rackboot(args);
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, expected, args.join(' '));
    assert.doesNotMatch(result.stderr, /Options:/, `${args.join(' ')}: no page of help`);
  }
});

test('completion prints a bash completion script for rackboot', async () => {
  const result = await rackboot(['completion']);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /complete -o bashdefault -o default -F _rackboot_yargs_completions rackboot/);
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

test("serve refuses profiles that take its own address or the router's as their static address, naming file, line and field", () =>
  onWire('srv', async (wire) => {
    const staticProfile = (mac: string, address: string) =>
      `mac: ${mac}\nhostname: node-${mac.slice(-2)}\nnetwork:\n  mode: static\n  address: ${address}/24\n`;
    await writeFile(path.join(wire.profiles, 'node01.yaml'), staticProfile('02:00:00:00:0c:01', '198.18.0.1'));
    await writeFile(path.join(wire.profiles, 'node02.yaml'), staticProfile('02:00:00:00:0c:02', '198.18.0.254'));
    const output = await wire.untilServing(
      wire.serveArgs(['--address', '198.18.0.1', '--dhcp', 'off', '--router', '198.18.0.254', '--http-port', '0', '--tftp-port', '0']),
    );
    assert.match(output, /rackboot is serving/);
    assert.match(
      output,
      /node01\.yaml:5:12: network\.address: 198\.18\.0\.1 is this server's address; a host cannot have it as its static address \(this file is not served\)/,
    );
    assert.match(output, /node02\.yaml:5:12: network\.address: 198\.18\.0\.254 is the router's address \(--router\); a host cannot have it/);
  }));

test('serve: a missing profile folder stops it at once, naming the flag, and leaves no state folder behind; an empty one is served with a warning', () =>
  onWire('fo', async (wire) => {
    const flags = ['--dhcp', 'off', '--http-port', '0', '--tftp-port', '0'];
    const misspelt = path.join(wire.work, 'profles');
    const missing = await wire.run(wire.serveArgs([...flags, '--profiles', misspelt]));
    assert.equal(missing.code, 2, missing.stderr);
    assert.equal(missing.stderr, `rackboot: --profiles ${misspelt}: no such folder (make it, or name the folder that holds the profiles)\n`);
    await assert.rejects(access(path.join(wire.work, 'state')), 'no state folder was made');
    // An interface that is there but has no IPv4 address is not "missing".
    wire.ns.ip('link', 'add', 'bare0', 'type', 'veth', 'peer', 'name', 'bare1');
    wire.ns.ip('link', 'set', 'bare0', 'up');
    const bare = await wire.run(wire.serveArgs([...flags, '--profiles', misspelt, '--interface', 'bare0']));
    assert.equal(bare.code, 2, bare.stderr);
    assert.match(bare.stderr, /^rackboot: --interface bare0: it has no IPv4 address/);

    const output = await wire.untilServing(wire.serveArgs(flags));
    assert.match(output, /rackboot is serving/);
    const warning = output.split('\n').find((line) => line.includes('the profile folder holds no profile'));
    assert.ok(warning, output);
    assert.equal(JSON.parse(warning).level, 40);
  }));

test('hosts --server takes an address without a scheme (http:// is implied), and says what it wants for one it cannot use', async () => {
  const work = await mkdtemp(path.join(tmpdir(), 'rackboot-cli-hosts-'));
  try {
    await mkdir(path.join(work, 'state'));
    await writeFile(path.join(work, 'state', 'admin.token'), 'x'.repeat(43) + '\n', { mode: 0o600 });
    // A server that refuses the token: the request reached it over http://, and its answer is shown as the admin commands show one.
    const { createServer } = await import('node:http');
    const server = createServer((req, res) => res.writeHead(403).end(`no (${req.url})\n`));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const bare = await rackboot(['hosts', '--server', `127.0.0.1:${port}`, '--state', path.join(work, 'state')]);
      assert.equal(bare.code, 2);
      assert.equal(bare.stderr, 'rackboot: GET /api/hosts: 403 no (/api/hosts)\n');
    } finally {
      server.close();
    }
    const bad = await rackboot(['hosts', '--server', 'ftp://127.0.0.1', '--state', path.join(work, 'state')]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^rackboot: --server "ftp:\/\/127\.0\.0\.1": want an http:\/\/ or https:\/\/ address/);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});

test("build --host refuses an image no server could check: no --address, or a --state without the server's token key", async () => {
  const work = await mkdtemp(path.join(tmpdir(), 'rackboot-cli-host-'));
  try {
    const base = [
      'build',
      '--host',
      '52:54:00:12:34:56',
      '--profiles',
      'profiles/examples',
      '--assets',
      path.join(work, 'assets'),
      '--iso-file',
      path.join(work, 'x.iso'),
    ];
    const noAddress = await rackboot([...base, '--state', path.join(work, 'state')]);
    assert.equal(noAddress.code, 2);
    assert.match(noAddress.stderr, /^rackboot: --host needs --address: the address of the rackboot server this host's image fetches its secrets from\n/);
    const noKey = await rackboot([...base, '--address', '198.18.0.1', '--state', path.join(work, 'state')]);
    assert.equal(noKey.code, 2);
    assert.equal(
      noKey.stderr,
      `rackboot: --state ${path.join(work, 'state')} has no host-token.key: name the state folder of the rackboot serve that will hand this host its secrets (serve makes the key when it first starts)\n`,
    );
    await assert.rejects(
      import('node:fs/promises').then((fs) => fs.access(path.join(work, 'state'))),
      'no state folder or key was made',
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});

test('serve: a port another process holds stops it before "serving", naming the port and the holder (HTTP over TCP, TFTP over UDP)', () =>
  onWire('po', async (wire) => {
    for (const [what, holderScript, expected] of [
      [
        'HTTP',
        "require('node:http').createServer().listen(8080, '198.18.0.1', () => console.log('held'))",
        /^rackboot: http: cannot listen on 198\.18\.0\.1:8080: EADDRINUSE \(held by node, pid (\d+)\)\n$/,
      ],
      [
        'TFTP',
        "require('node:dgram').createSocket('udp4').bind(6969, '198.18.0.1', () => console.log('held'))",
        /^rackboot: tftp: cannot bind 198\.18\.0\.1:6969: EADDRINUSE \(held by node, pid (\d+)\)\n$/,
      ],
    ] as const) {
      const holder = wire.ns.spawn(process.execPath, ['-e', holderScript], { stdio: ['ignore', 'pipe', 'inherit'] });
      try {
        await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
        const result = await wire.run(wire.serveArgs(['--dhcp', 'off', '--http-port', '8080', '--tftp-port', '6969']));
        assert.equal(result.code, 2, `${what}: ${result.stderr}`);
        const match = expected.exec(result.stderr);
        assert.ok(match, `${what}: ${result.stderr}`);
        assert.equal(Number(match[1]), holder.pid, `${what}: the holder's pid`);
        assert.doesNotMatch(result.stdout, /rackboot is serving/, what);
      } finally {
        holder.kill();
      }
    }
  }));

test('serve --dhcp full without --pool stops before anything is made, suggesting a pool and proxy mode', () =>
  onWire('pl', async (wire) => {
    const result = await wire.run(wire.serveArgs([]));
    assert.equal(result.code, 2, result.stderr);
    assert.equal(
      result.stderr,
      "rackboot: --dhcp full (the default) makes rackboot this network's DHCP server: name the addresses it may hand out with --pool START-END (for instance --pool 198.18.0.128-198.18.0.254, the upper half of 198.18.0.1/24); beside the network's own DHCP server, use --dhcp proxy\n",
    );
    await assert.rejects(access(path.join(wire.work, 'state')), 'no state folder was made');
  }));

test("install-deps: the demo's list holds what serving, building and the demo use, and none of the test peers; --test adds them", async () => {
  const { runCommand } = await import('./support/run.js');
  const { repoRoot } = await import('./support/build.js');
  const list = async (...args: string[]) =>
    (await runCommand('bash', [path.join(repoRoot, 'builder/install-deps.sh'), ...args, '--list'])).stdout.trim().split('\n');
  const base = await list();
  const all = await list('--test');
  for (const needed of ['g++', 'debootstrap', 'squashfs-tools', 'xorriso', 'qemu-system-x86', 'ipxe-qemu', 'ovmf', 'iproute2'])
    assert.ok(base.includes(needed), needed);
  for (const peer of ['chromium', 'nginx', 'kea-dhcp4-server', 'wrk', 'dnsmasq-base', 'tcpdump', 'busybox', 'curl']) {
    assert.ok(!base.includes(peer), `the demo does not install ${peer}`);
    assert.ok(all.includes(peer), `the tests install ${peer}`);
  }
  assert.deepEqual(all.slice(0, base.length), base);
  const bad = await runCommand('bash', [path.join(repoRoot, 'builder/install-deps.sh'), '--tests']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown argument --tests/);
});

test('manpage: rackboot(8) from the help of every command, which groff renders without a warning', async () => {
  const { runCommand } = await import('./support/run.js');
  const page = await rackboot(['manpage']);
  assert.equal(page.code, 0, page.stderr);
  assert.match(page.stdout, /^\.TH RACKBOOT 8 "" "rackboot \d+\.\d+\.\d+" "System Administration"\n/);
  const sections = [...page.stdout.matchAll(/^\.SS "rackboot (.*)"$/gm)].map((match) => match[1]!.replaceAll('\\-', '-'));
  for (const command of ['serve', 'leases release', 'hosts', 'build', 'builds switch', 'whatif', 'profiles apply', 'profiles validate'])
    assert.ok(sections.includes(command), `${command}: ${sections.join(', ')}`);
  assert.match(page.stdout, /^\.B \\-\\-drain\\-seconds$/m, "serve's options are there");
  const file = path.join(await mkdtemp(path.join(tmpdir(), 'rackboot-man-')), 'rackboot.8');
  try {
    await writeFile(file, page.stdout);
    const rendered = await runCommand('groff', ['-man', '-Tutf8', '-ww', file]);
    assert.equal(rendered.code, 0, rendered.stderr);
    assert.equal(rendered.stderr, '', 'no groff warning');
    assert.match(rendered.stdout, /rackboot serve/);
  } finally {
    await rm(path.dirname(file), { recursive: true, force: true });
  }
});

test('serve --dhcp full beside another process on UDP port 67 (both with SO_REUSEADDR, so the bind succeeds) warns, naming it', () =>
  onWire('sh', async (wire) => {
    const holder = wire.ns.spawn(
      process.execPath,
      ['-e', "require('node:dgram').createSocket({ type: 'udp4', reuseAddr: true }).bind(67, () => console.log('held'))"],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
      const output = await wire.untilServing(wire.serveArgs(['--pool', '198.18.0.100-198.18.0.150', '--http-port', '0', '--tftp-port', '0']));
      const warning = output.split('\n').find((line) => line.includes('another process also listens on UDP port 67'));
      assert.ok(warning, output);
      assert.deepEqual(JSON.parse(warning).holders, [{ pid: holder.pid, command: 'node' }]);
    } finally {
      holder.kill();
    }
  }));
