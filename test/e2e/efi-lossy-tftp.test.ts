import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { bootMachine, serverAddress, startRack, type Rack } from '../support/boot.js';

/**
 * OVMF's UEFI PXE client fetches ipxe.efi (about 1 MB) by TFTP through the
 * lossy relay (1% of datagrams dropped each way, 10 ms each way), which
 * stands on a second address of the rack's wire; `--tftp-server` makes the
 * DHCP reply send the firmware there. The rest of the boot (iPXE's HTTP)
 * goes to rackboot directly.
 */
const relayAddress = '198.18.0.2';
const relayMain = fileURLToPath(new URL('../support/tftp/relay-main.js', import.meta.url));
const mac = '52:54:00:12:34:5a';

let rack: Rack;
let relay: ChildProcess;
let relayLines: AsyncIterator<string>;

before(async () => {
  rack = await startRack(
    {
      'node05.yaml': [
        `mac: ${mac}`,
        'hostname: node05',
        'network:',
        '  mode: static',
        '  address: 198.18.0.55/24',
        '  gateway: 198.18.0.1',
        'boot:',
        '  kernelArgs: "rackboot.poweroff=1"',
        '',
      ].join('\n'),
    },
    { serveArgs: ['--tftp-server', relayAddress] },
  );
  rack.ns.ip('addr', 'add', `${relayAddress}/24`, 'dev', 'tap0');
  relay = rack.ns.spawn(process.execPath, [relayMain, relayAddress, relayAddress, serverAddress, '69', '0.01', '10', '69'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  relayLines = createInterface({ input: relay.stdout! })[Symbol.asyncIterator]();
  const first = await relayLines.next();
  assert.deepEqual(JSON.parse(String(first.value)), { port: 69 }, 'the relay listens on port 69');
});

after(async () => {
  if (relay !== undefined && relay.exitCode === null) relay.kill('SIGKILL');
  await rack?.close();
});

test('UEFI PXE boots to the ready line with its TFTP through a relay that drops 1% and delays 10 ms each way', { timeout: 600_000 }, async () => {
  const result = await bootMachine(rack, 'efi', mac, 540_000);
  process.stderr.write(`UEFI boot of node05 to ready, TFTP through the lossy relay: ${result.seconds.toFixed(1)} s\n`);
  assert.equal(result.hostname, 'node05');
  assert.equal(result.ip, '198.18.0.55/24');

  const exited = once(relay, 'exit');
  relay.kill('SIGTERM');
  const counters = JSON.parse(String((await relayLines.next()).value)) as { forwarded: number; dropped: number; serverPortsFollowed: number };
  await exited;
  process.stderr.write(`relay: ${JSON.stringify(counters)}\n`);
  // ipxe.efi is about 700 DATA blocks of 1468 bytes or more, each answered.
  assert.ok(counters.forwarded > 500, `the relay carried the TFTP transfer (${counters.forwarded} datagrams)`);
  assert.ok(counters.serverPortsFollowed >= 1, 'the relay followed a transfer port');

  const events = rack.events();
  // The DHCP offer named the relay as the TFTP server...
  const offers = events.filter((event) => event.mac === mac && (event.boot as { kind?: string } | undefined)?.kind === 'tftp');
  assert.ok(offers.length > 0, `DHCP replies to ${mac} chose a TFTP boot file`);
  for (const offer of offers) assert.deepEqual(offer.boot, { kind: 'tftp', file: 'ipxe.efi', server: relayAddress });
  // ...and rackboot served ipxe.efi to the relay, not to the machine.
  const finished = events.filter((event) => event.msg === 'tftp transfer finished' && event.file === 'ipxe.efi');
  assert.ok(finished.length >= 1, 'ipxe.efi was transferred to the end');
  for (const event of finished) assert.match(String(event.client), new RegExp(`^${relayAddress.replaceAll('.', '\\.')}:`));
  const started = events.filter((event) => event.msg === 'tftp transfer started' && event.file === 'ipxe.efi');
  for (const [i, event] of finished.entries()) {
    const { blocks, retransmits, earlyAcks, durationMs } = event;
    const { blockSize, windowSize } = started[i] ?? {};
    process.stderr.write(`ipxe.efi by TFTP through the relay: ${JSON.stringify({ blocks, blockSize, windowSize, retransmits, earlyAcks, durationMs })}\n`);
  }
});
