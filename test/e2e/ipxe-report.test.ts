import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { ensureTestBuild, cliPath } from '../support/build.js';
import { httpPort, serverAddress, startMachine, startRack } from '../support/boot.js';
import { until } from '../support/until.js';

/**
 * iPXE tells the server what failed: QEMU's BIOS iPXE boots from a build
 * whose runtime initrd is gone, its `module .../initrd.gz` fails, and the
 * boot script's `:failed` label reports the step and iPXE's error number.
 * The server keeps it as a failed event on the host's timeline and a line
 * in its log (QEMU's iPXE ROM writes to the screen, not the serial line:
 * without the report no one would see why). Needs root and QEMU; fails
 * (never skips) without them.
 */

const mac = '52:54:00:12:19:01';
const scratch = await mkdtemp(path.join(tmpdir(), 'rackboot-ipxe-report-'));
after(() => rm(scratch, { recursive: true, force: true }));

test("iPXE's failure at a boot file reaches the server: the step, iPXE's error, on the timeline and in the host's log", { timeout: 300_000 }, async () => {
  // The test build, hard-linked, without the runtime initrd.
  const assets = path.join(scratch, 'assets');
  execFileSync('cp', ['-al', await ensureTestBuild(), assets]);
  const build = await realpath(path.join(assets, 'current'));
  assert.ok(build.startsWith(`${await realpath(assets)}/`), `the copy's current build is its own: ${build}`);
  await rm(path.join(build, 'initrd.gz'));
  const rack = await startRack({ 'node.yaml': `mac: ${mac}\nhostname: broken01\nboot:\n  menuTimeout: 0\n` }, { assets });
  const machine = await startMachine(rack, 'bios', mac);
  try {
    const failed = await until(
      "iPXE's report of the failed initrd.gz",
      240_000,
      () => rack.events().find((event) => event.event === 'host-event' && event.mac === mac && event.stage === 'failed'),
      () => machine.console.transcript.slice(-2000),
    );
    assert.equal(failed.source, 'http');
    assert.match(String(failed.detail), /^iPXE failed at initrd\.gz: iPXE error 0x[0-9a-f]{8} \(https:\/\/ipxe\.org\/err\/[0-9a-f]{8}\)$/);
    // The server could not send the file (its build lost it: 500), and the report came from the machine's own address.
    assert.ok(rack.events().some((event) => event.event === 'http' && String(event.path).endsWith('/initrd.gz') && event.status === 500));
    assert.equal(failed.remote, rack.events().find((event) => event.event === 'http' && String(event.path).endsWith('/initrd.gz'))?.remote);
    const log = rack.ns.exec(process.execPath, [cliPath, 'logs', mac, '--server', `${serverAddress}:${httpPort}`, '--state', path.join(rack.work, 'state')]);
    assert.match(log, /^1 \S+ ipxe ipxe: iPXE failed at initrd\.gz: iPXE error 0x[0-9a-f]{8} /m, log);
    const timeline = JSON.parse(rack.ns.exec('curl', ['-sSf', `http://${serverAddress}:${httpPort}/hosts/${mac}/events`])) as Array<{
      stage: string;
      detail?: string;
    }>;
    assert.ok(
      timeline.some((event) => event.stage === 'failed' && event.detail === failed.detail),
      JSON.stringify(timeline),
    );
  } finally {
    machine.qemu.kill('SIGKILL');
    await rack.close();
  }
});
