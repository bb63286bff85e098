import assert from 'node:assert/strict';
import { readlink, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { addClient, httpPort, serverAddress, startRack } from '../support/boot.js';
import { cliPath, ensureTestBuild } from '../support/build.js';
import { freePort } from '../support/dhcp.js';
import { startIpmiSim } from '../support/ipmi-sim.js';
import { collect } from '../support/run.js';

/**
 * `rackboot` as the admin API's client, against a running server on a test
 * wire: profiles list, show, apply (a good file, and one whose problems the
 * API names by line and field) and rm; leases release; builds list and
 * switch; hosts; the token from the state folder, --token-file or
 * RACKBOOT_TOKEN; the server as a bare address. Needs root; fails (never
 * skips) without it.
 */

test(
  'profiles list/show/apply/rm, leases release, builds list/switch, hosts and power-cycle drive a running server through its admin API',
  { timeout: 120_000 },
  async () => {
    const assets = await ensureTestBuild();
    const build = path.basename(await readlink(path.join(assets, 'current')));
    const rack = await startRack({ 'node01.yaml': 'mac: 02:00:00:00:ad:01\nhostname: node01\n' }, { bridge: true });
    try {
      const state = path.join(rack.work, 'state');
      const server = `${serverAddress}:${httpPort}`;
      const cli = async (args: string[], env: Record<string, string> = {}) =>
        collect(rack.ns.spawn(process.execPath, [cliPath, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }), {
          timeoutMs: 30_000,
          what: args.join(' '),
        });
      const ok = async (args: string[], env: Record<string, string> = {}) => {
        const result = await cli(args, env);
        assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
        return result.stdout;
      };
      const admin = ['--server', server, '--state', state];

      assert.match(
        await ok(['profiles', 'list', ...admin]),
        /^FILE\s+SERVED\s+MAC\s+HOSTNAME\s+PROBLEMS\nnode01\.yaml\s+yes\s+02:00:00:00:ad:01\s+node01\s+0\n$/,
      );

      const good = path.join(rack.work, 'node02.yaml');
      await writeFile(good, 'mac: 02:00:00:00:ad:02\nhostname: node02\n');
      assert.equal(await ok(['profiles', 'apply', good, ...admin]), 'saved node02.yaml: node02 (02:00:00:00:ad:02)\n');
      assert.equal(await ok(['profiles', 'show', 'node02', ...admin]), 'mac: 02:00:00:00:ad:02\nhostname: node02\n');

      const bad = path.join(rack.work, 'node03.yaml');
      await writeFile(bad, 'mac: 02:00:00:00:ad:03\nhostname: node03\nssh: maybe\n');
      const refused = await cli(['profiles', 'apply', bad, ...admin]);
      assert.equal(refused.code, 2);
      assert.match(
        refused.stderr,
        /^rackboot: PUT \/api\/profiles\/node03: 422 profile node03\.yaml was not saved\n {2}\S*\/profiles\/node03\.yaml:3:6: ssh: want true or false, got the string "maybe"\n$/,
      );

      // Valid but likely wrong: the server saves it and warns, in its log.
      const twin = path.join(rack.work, 'node04.yaml');
      await writeFile(twin, 'mac: 02:00:00:00:ad:04\nhostname: node01\nnetwork:\n  mode: static\n  address: 198.18.9.4/24\n');
      assert.equal(await ok(['profiles', 'apply', twin, ...admin]), 'saved node04.yaml: node01 (02:00:00:00:ad:04)\n');
      const warnings = () =>
        rack
          .events()
          .filter((event) => event.msg === 'profile warning')
          .map((event) => String(event.warning));
      for (let i = 0; i < 50 && warnings().length < 3; i++) await new Promise((resolve) => setTimeout(resolve, 100));
      assert.deepEqual(
        warnings().map((line) => line.replace(/^\S*\/profiles\//, '')),
        [
          'node01.yaml: warning: hostname node01 is also the hostname in ' + path.join(rack.profiles, 'node04.yaml'),
          'node04.yaml: warning: hostname node01 is also the hostname in ' + path.join(rack.profiles, 'node01.yaml'),
          'node04.yaml: warning: static address 198.18.9.4 is on none of the subnets rackboot serves (198.18.0.0/24): its DHCP gives that machine no reservation, and the machine may not reach the server',
        ],
      );
      assert.equal(await ok(['profiles', 'rm', 'node04', ...admin]), 'deleted node04\n');
      assert.equal(await ok(['profiles', 'rm', 'node02', ...admin]), 'deleted node02\n');
      const gone = await cli(['profiles', 'show', 'node02', ...admin]);
      assert.equal(gone.code, 2);
      assert.match(gone.stderr, /^rackboot: GET \/api\/profiles\/node02: 404 no profile file "node02"/);

      // A group file: one profile per hosts: entry, listed as a group; host rows say which file made a profile.
      const group = path.join(rack.work, 'lab.yaml');
      await writeFile(group, 'ssh: true\nhosts:\n  - {mac: 02:00:00:00:ad:09, hostname: lab09}\n  - {mac: 02:00:00:00:ad:0a, hostname: lab10}\n');
      assert.equal(await ok(['profiles', 'apply', group, ...admin]), 'saved lab.yaml: group of 2 (lab09, lab10)\n');
      assert.match(await ok(['profiles', 'list', ...admin]), /^lab\.yaml\s+yes\s+group of 2\s+-\s+0$/m);
      const taken = path.join(rack.work, 'lab2.yaml');
      await writeFile(taken, 'hosts:\n  - {mac: 02:00:00:00:ad:0a, hostname: again}\n');
      const clash = await cli(['profiles', 'apply', taken, ...admin]);
      assert.equal(clash.code, 2);
      assert.match(
        clash.stderr,
        /\/profiles\/lab2\.yaml:2:11: hosts\[0\]\.mac: 02:00:00:00:ad:0a is already the MAC of \S*\/profiles\/lab\.yaml \(hosts\[1\]\)\n$/,
      );

      // A lease, then its release.
      const client = await addClient(rack, '02:00:00:00:ad:09');
      const address = client.dhcp();
      const rows = JSON.parse(await ok(['hosts', '--json', ...admin])) as Array<{ mac: string; hostname: string; profile: string; profileFrom: string }>;
      const row = rows.find((candidate) => candidate.mac === '02:00:00:00:ad:09');
      assert.deepEqual([row?.hostname, row?.profile, row?.profileFrom], ['lab09', 'lab.yaml', 'lab.yaml (group entry hosts[0], line 3)']);
      assert.equal(await ok(['leases', 'release', address, ...admin]), `released ${address} (02:00:00:00:ad:09); it is released now\n`);

      const builds = await ok(['builds', 'list', ...admin]);
      assert.match(builds, new RegExp(`^${build.replaceAll('.', '\\.')}\\s+\\S+\\s+bookworm\\s+default\\s+default$`, 'm'));
      assert.equal(await ok(['builds', 'switch', build, ...admin]), `current build: ${build}\n`);
      assert.equal(await ok(['builds', 'switch', build, '--channel', 'testing', ...admin]), `current build of channel testing: ${build}\n`);
      assert.match(
        await ok(['builds', 'list', ...admin]),
        new RegExp(`^${build.replaceAll('.', '\\.')}\\s+\\S+\\s+bookworm\\s+default\\s+default,testing$`, 'm'),
      );
      // Rollouts through the CLI: nothing to show yet, and a start that has nothing to move says why.
      assert.equal(await ok(['rollout', 'status', ...admin]), 'no rollout\n');
      const same = await cli(['rollout', 'start', '--channel', 'testing', '--build', build, ...admin]);
      assert.equal(same.code, 2);
      assert.match(same.stderr, new RegExp(`^rackboot: POST /api/rollouts: 409 ${build.replaceAll('.', '\\.')} is already channel testing's current build`));
      const fresh = await cli(['rollout', 'start', '--channel', 'nightly', '--build', build, '--first', '25%', ...admin]);
      assert.match(fresh.stderr, /^rackboot: POST \/api\/rollouts: 409 channel nightly has no current build to roll out from/);
      const badFirst = await cli(['rollout', 'start', '--build', build, '--first', 'some', ...admin]);
      assert.match(badFirst.stderr, /^rackboot: POST \/api\/rollouts: 400 --first some: want a number of hosts/);
      const none = await cli(['rollout', 'abort', '--channel', 'testing', ...admin]);
      assert.match(none.stderr, /^rackboot: POST \/api\/rollouts\/testing\/abort: 404 channel testing has no rollout/);
      // The shared test build's folder keeps no channel of this test's.
      await rm(path.join(assets, 'channels'), { recursive: true, force: true });
      const noBuild = await cli(['builds', 'switch', 'nope', ...admin]);
      assert.equal(noBuild.code, 2);
      assert.match(noBuild.stderr, /^rackboot: PUT \/api\/builds\/current: 404 no build "nope"/);

      // Power through a BMC (ipmi_sim in the wire's namespace, on its loopback): a host that names one, one that names none, a wrong password.
      const bmcPort = await freePort();
      const sim = await startIpmiSim({
        address: '127.0.0.1',
        port: bmcPort,
        user: 'admin',
        password: 'rack-secret',
        spawn: (command, args, options) => rack.ns.spawn(command, args, options),
      });
      try {
        const bmcProfile = path.join(rack.work, 'bmc01.yaml');
        const withBmc = (passwordFile: string) =>
          `mac: 02:00:00:00:ad:0b\nhostname: bmc01\nbmc:\n  address: 127.0.0.1\n  port: ${bmcPort}\n  user: admin\n  passwordFile: ${passwordFile}\n  cipherSuite: 3\n`;
        await writeFile(bmcProfile, withBmc(sim.passwordFile));
        assert.equal(await ok(['profiles', 'apply', bmcProfile, ...admin]), 'saved bmc01.yaml: bmc01 (02:00:00:00:ad:0b)\n');
        assert.equal(
          await ok(['power-cycle', '02-00-00-00-AD-0B', ...admin]),
          `02:00:00:00:ad:0b: power-cycled through its BMC 127.0.0.1:${bmcPort}; next boot: network\n`,
        );
        await sim.waitForCall(/^set power 1$/, 15_000);
        assert.deepEqual(
          sim.calls().filter((call) => call !== 'get power'),
          ['get boot', 'set boot pxe', 'set power 0', 'set power 1'],
        );
        const logged = rack.events().find((event) => event.event === 'bmc');
        assert.equal(logged?.mac, '02:00:00:00:ad:0b');
        assert.equal(logged?.bmc, `127.0.0.1:${bmcPort}`);
        assert.equal(logged?.why, 'asked through the admin API');
        const noBmc = await cli(['power-cycle', '02:00:00:00:ad:01', ...admin]);
        assert.equal(noBmc.code, 2);
        assert.match(noBmc.stderr, /: 404 02:00:00:00:ad:01's profile names no BMC \(bmc: in its own file\)\n$/);
        const wrongPassword = path.join(rack.work, 'wrong.password');
        await writeFile(wrongPassword, 'not-it\n', { mode: 0o600 });
        await writeFile(bmcProfile, withBmc(wrongPassword));
        await ok(['profiles', 'apply', bmcProfile, ...admin]);
        const refusedByBmc = await cli(['power-cycle', '02:00:00:00:ad:0b', ...admin]);
        assert.equal(refusedByBmc.code, 2);
        assert.match(
          refusedByBmc.stderr,
          new RegExp(`: 502 BMC 127\\.0\\.0\\.1:${bmcPort}: ipmitool chassis bootdev pxe: Error: Unable to establish IPMI v2 / RMCP\\+ session\\n$`),
        );
        assert.doesNotMatch(rack.server.transcript, /rack-secret/, 'the password is in no log line');
      } finally {
        await sim.close();
      }

      // The token three ways: --token-file, RACKBOOT_TOKEN (a wrong one here), the state folder.
      const tokenFile = path.join(rack.work, 'token');
      await writeFile(tokenFile, await import('node:fs/promises').then((fs) => fs.readFile(path.join(state, 'admin.token'), 'utf8')), { mode: 0o600 });
      assert.match(await ok(['hosts', '--server', server, '--token-file', tokenFile, '--state', '/nonexistent']), /02:00:00:00:ad:09/);
      const wrong = await cli(['profiles', 'list', '--server', server, '--state', '/nonexistent'], { RACKBOOT_TOKEN: 'not-the-token' });
      assert.equal(wrong.code, 2);
      assert.match(wrong.stderr, /^rackboot: GET \/api\/profiles: 401 /);
      assert.match(await ok(['profiles', 'list', '--state', state], { RACKBOOT_SERVER: `http://${server}` }), /node01\.yaml/);
      // hosts asks the server RACKBOOT_SERVER names, as the admin commands do (its state folder is locked by the server).
      assert.match(await ok(['hosts', '--state', state], { RACKBOOT_SERVER: server }), /02:00:00:00:ad:09/);
    } finally {
      await rack.close();
    }
  },
);
