import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { formatProfileError } from '../../server/profiles/error.js';
import { parseProfile, parseProfileFile } from '../../server/profiles/parse.js';
import { groupMembers, profileForHost } from '../../server/profiles/profile.js';

// dist/test/profiles/ -> the repository root
const repo = fileURLToPath(new URL('../../../', import.meta.url));

async function parseRepoFile(relative: string) {
  const result = parseProfile(await readFile(repo + relative, 'utf8'), relative);
  assert.ok(result.ok, result.ok ? '' : result.errors.map(formatProfileError).join('\n'));
  return result.profile;
}

test('profiles/default.yaml parses: dhcp, node-{mac}, no ssh, standard entry, two demo guests', async () => {
  const profile = await parseRepoFile('profiles/default.yaml');
  assert.deepEqual(profile, {
    source: 'profiles/default.yaml',
    mac: null,
    hostname: 'node-{mac}',
    network: { mode: 'dhcp' },
    ssh: false,
    timezone: 'Etc/UTC',
    boot: { entry: 'standard', xenArgs: 'dom0_mem=256M,max:256M', kernelArgs: '', menuTimeout: 5 },
    sshAuthorizedKeys: [],
    aptUpdate: false,
    domains: ['demo1', 'demo2'].map((name) => ({
      name,
      memory: 96,
      vcpus: 1,
      kernel: 'vmlinuz',
      ramdisk: 'guest.initrd.gz',
      extraArgs: '',
      bridge: 'xenbr0',
      autostart: true,
      restart: false,
    })),
  });
  assert.equal(profileForHost(profile, '52:54:00:12:34:56').hostname, 'node-525400123456');
});

test('profiles/examples/node01.yaml parses as a full static profile', async () => {
  const profile = await parseRepoFile('profiles/examples/node01.yaml');
  assert.equal(profile.mac, '52:54:00:12:34:56');
  assert.equal(profile.hostname, 'node01');
  assert.deepEqual(profile.network, {
    mode: 'static',
    address: '198.18.0.50',
    prefixLength: 24,
    gateway: '198.18.0.1',
    dns: ['198.18.0.1'],
  });
  assert.equal(profile.ssh, true);
  assert.match(profile.rootPasswordHash ?? '', /^\$6\$rackbootexample\$/);
});

test('the example hash is the SHA-512 crypt of "rackboot", as its comment says', async (t) => {
  const profile = await parseRepoFile('profiles/examples/node01.yaml');
  let again: string;
  try {
    again = execFileSync('openssl', ['passwd', '-6', '-salt', 'rackbootexample', 'rackboot'], { encoding: 'utf8' }).trim();
  } catch {
    t.skip('openssl is not installed');
    return;
  }
  assert.equal(profile.rootPasswordHash, again);
});

test('profiles/examples/rack3.yaml parses as a group of three static machines sharing one guest', async () => {
  const result = parseProfileFile(await readFile(repo + 'profiles/examples/rack3.yaml', 'utf8'), 'profiles/examples/rack3.yaml');
  assert.ok(result.ok, result.ok ? '' : result.errors.map(formatProfileError).join('\n'));
  const members = groupMembers(result.profile);
  assert.deepEqual(
    members.map((member) => [
      member.mac,
      member.hostname,
      member.network.mode === 'static' ? `${member.network.address}/${member.network.prefixLength} via ${member.network.gateway}` : '',
    ]),
    [
      ['52:54:00:03:00:01', 'r3n01', '198.18.3.21/24 via 198.18.3.1'],
      ['52:54:00:03:00:02', 'r3n02', '198.18.3.22/24 via 198.18.3.1'],
      ['52:54:00:03:00:03', 'r3n03', '198.18.3.23/24 via 198.18.3.1'],
    ],
  );
  assert.deepEqual(
    members.map((member) => member.domains.map((domain) => domain.name)),
    [['web'], ['web'], ['web']],
  );
});

test('profiles/examples/xen07-storage.yaml parses: a volume group, iSCSI with CHAP, volume, file and LUN disks, a private bridge, a VLAN and Debian guests', async () => {
  const profile = await parseRepoFile('profiles/examples/xen07-storage.yaml');
  assert.deepEqual(
    profile.storage?.volumeGroups.map((group) => [group.name, group.disks.length, group.initialize]),
    [['vg0', 2, true]],
  );
  assert.equal(profile.storage?.iscsi[0]?.chap?.user, 'xen07');
  assert.deepEqual(
    profile.domains.map((domain) => [
      domain.name,
      (domain.disks ?? []).map((disk) => `${disk.kind} ${disk.device}`),
      domain.bridge,
      domain.network?.kind ?? '-',
    ]),
    [
      ['web1', ['volume xvda', 'file xvdb'], 'xenbr0', '-'],
      ['db1', ['iscsi xvda'], 'xenbr0', '-'],
      ['lab1', [], 'lab0', 'private'],
      ['lab2', [], 'lab0', 'private'],
      ['vlan42', [], 'vlan42', 'vlan'],
      ['mail1', ['volume xvda'], 'xenbr0', '-'],
      ['build1', [], 'xenbr0', '-'],
    ],
  );
  assert.deepEqual(
    profile.domains.filter((domain) => domain.image === 'debian').map((domain) => [domain.name, domain.root, domain.memory, domain.firstBoot?.network.mode]),
    [
      ['mail1', 'xvda', 256, 'static'],
      ['build1', 'ram', 512, 'dhcp'],
    ],
  );
});
