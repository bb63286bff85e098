import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { switchCurrent } from '../../server/assets/builds.js';
import { BUILD_FILES } from '../../server/assets/manifest.js';
import { writeTestBuild } from '../support/assets.js';
import { addClient, httpPort, serverAddress, startRack, type Rack, type RackClient } from '../support/boot.js';

/**
 * A channel's iPXE is what its machines run: the loader firmware fetches by
 * bare name (undionly.kpxe and ipxe.efi by TFTP, ipxe.efi by HTTP Boot)
 * comes from the build the machine boots, found from its address. Two
 * builds whose files say which they are; one machine on the default
 * channel, one on testing, and a stranger with an address of its own.
 */

let assets: string;
let rack: Rack;
let onDefault: RackClient;
let onTesting: RackClient;
let stranger: RackClient;

before(async () => {
  assets = await mkdtemp(path.join(tmpdir(), 'rackboot-loaders-'));
  for (const [id, channel] of [
    ['20261201T000000.000Z-0000000a', undefined],
    ['20261202T000000.000Z-0000000b', 'testing'],
  ] as const) {
    await writeTestBuild(assets, id, Object.fromEntries(BUILD_FILES.map((name) => [name, Buffer.from(`${name} of ${id}\n`)])), undefined, channel);
    await switchCurrent(assets, id, channel);
  }
  rack = await startRack(
    {
      'node01.yaml': 'mac: 52:54:00:12:35:01\nhostname: node01\n',
      'node02.yaml': 'mac: 52:54:00:12:35:02\nhostname: node02\nboot:\n  channel: testing\n',
    },
    { bridge: true, assets },
  );
  onDefault = await addClient(rack, '52:54:00:12:35:01');
  onDefault.dhcp();
  onTesting = await addClient(rack, '52:54:00:12:35:02');
  onTesting.dhcp();
  stranger = await addClient(rack, '52:54:00:66:66:66');
  stranger.setAddress('198.18.0.250/24');
});

after(async () => {
  for (const client of [onDefault, onTesting, stranger]) client?.close();
  await rack?.close();
  if (assets) await rm(assets, { recursive: true, force: true });
});

test("each machine's loaders come from its channel's build, by TFTP and by HTTP; a stranger's from the default channel", { timeout: 60_000 }, () => {
  const fetch = (client: RackClient, url: string) => client.ns.exec('curl', ['-sS', '--fail', url]).trim();
  const loaders = (client: RackClient) => [
    fetch(client, `tftp://${serverAddress}/undionly.kpxe`),
    fetch(client, `tftp://${serverAddress}/ipxe.efi`),
    fetch(client, `http://${serverAddress}:${httpPort}/ipxe.efi`),
  ];
  const of = (id: string) => ['undionly.kpxe', 'ipxe.efi', 'ipxe.efi'].map((name) => `${name} of ${id}`);
  assert.deepEqual(loaders(onTesting), of('20261202T000000.000Z-0000000b'));
  assert.deepEqual(loaders(onDefault), of('20261201T000000.000Z-0000000a'));
  assert.deepEqual(loaders(stranger), of('20261201T000000.000Z-0000000a'));
  // A build named in the path is that build, whoever asks.
  assert.equal(
    fetch(onTesting, `tftp://${serverAddress}/builds/20261201T000000.000Z-0000000a/undionly.kpxe`),
    'undionly.kpxe of 20261201T000000.000Z-0000000a',
  );
});
