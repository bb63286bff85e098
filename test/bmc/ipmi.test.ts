import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { powerCycleToNetwork } from '../../server/bmc/ipmi.js';
import { HostPower } from '../../server/bmc/power.js';
import { silentLogger } from '../../server/log.js';
import type { BmcConfig } from '../../server/profiles/profile.js';
import { freePort } from '../support/dhcp.js';
import { startIpmiSim, type IpmiSim } from '../support/ipmi-sim.js';

/**
 * rackboot's IPMI client (ipmitool, lanplus) against OpenIPMI's ipmi_sim on
 * loopback: the boot device set to the network, then a power cycle (or a
 * power on, when the machine is off), as the BMC's chassis calls show; and
 * each way it fails, named. Needs openipmi and ipmitool (install-deps.sh
 * --test installs both).
 */

let sim: IpmiSim;
let bmc: BmcConfig;
let work: string;

before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'rackboot-bmc-'));
  const port = await freePort();
  sim = await startIpmiSim({ address: '127.0.0.1', port, user: 'admin', password: 'rack-secret' });
  bmc = { address: '127.0.0.1', port, user: 'admin', passwordFile: sim.passwordFile, cipherSuite: 3 };
});

after(async () => {
  await sim?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

/** The chassis calls made from `from` on, once they stop changing for a moment (ipmi_sim powers on after it reads the power off). */
async function callsFrom(from: number, last: RegExp): Promise<string[]> {
  await sim.waitForCall(last, 15_000);
  return sim.calls().slice(from);
}

describe('BMC over IPMI (ipmitool against ipmi_sim)', () => {
  test('a machine that is on: next boot from the network, then a power cycle (off, then on)', async () => {
    const from = sim.calls().length;
    const result = await powerCycleToNetwork(bmc, false);
    assert.deepEqual(result, { wasOn: true, efi: false });
    // ipmi_sim turns "cycle" into off, then on once the chassis reads off.
    const calls = await callsFrom(from, /^set power 1$/);
    assert.deepEqual(
      calls.filter((call) => call !== 'get power'),
      ['get boot', 'set boot pxe', 'set power 0', 'set power 1'],
    );
    assert.ok(calls.indexOf('set boot pxe') < calls.indexOf('set power 0'), 'the boot device is set before the power goes off');
  });

  test('a machine that is off is powered on; UEFI asks for an EFI network boot (ipmi_sim keeps only the device)', async () => {
    const off = sim.calls().length;
    const { execFileSync } = await import('node:child_process');
    execFileSync('ipmitool', [
      '-I',
      'lanplus',
      '-C',
      '3',
      '-H',
      '127.0.0.1',
      '-p',
      String(bmc.port),
      '-U',
      'admin',
      '-f',
      sim.passwordFile,
      'chassis',
      'power',
      'off',
    ]);
    await sim.waitForCall(/^set power 0$/, 5000);
    const from = sim.calls().length;
    assert.ok(from > off);
    const result = await powerCycleToNetwork(bmc, true);
    assert.deepEqual(result, { wasOn: false, efi: true });
    assert.deepEqual(await callsFrom(from, /^set power 1$/), ['get boot', 'set boot pxe', 'get power', 'set power 1']);
  });

  test('failures name the BMC and what went wrong: a wrong password, a suite the BMC lacks, an unreadable password file, no BMC there', async () => {
    const wrong = path.join(work, 'wrong');
    await writeFile(wrong, 'not-the-password\n', { mode: 0o600 });
    const before = sim.calls().length;
    await assert.rejects(powerCycleToNetwork({ ...bmc, passwordFile: wrong }, false), {
      name: 'BmcError',
      message: `BMC 127.0.0.1:${bmc.port}: ipmitool chassis bootdev pxe: Error: Unable to establish IPMI v2 / RMCP+ session`,
    });
    await assert.rejects(powerCycleToNetwork({ ...bmc, cipherSuite: 17 }, false), (error: Error) => {
      assert.match(error.message, new RegExp(`^BMC 127\\.0\\.0\\.1:${bmc.port}: ipmitool chassis bootdev pxe: .*invalid authentication algorithm`));
      return true;
    });
    await assert.rejects(powerCycleToNetwork({ ...bmc, passwordFile: path.join(work, 'missing') }, false), {
      message: `BMC 127.0.0.1:${bmc.port}: cannot read its passwordFile ${path.join(work, 'missing')} (ENOENT)`,
    });
    const nobody = await freePort();
    await assert.rejects(powerCycleToNetwork({ ...bmc, port: nobody }, false), (error: Error) => {
      assert.match(error.message, new RegExp(`^BMC 127\\.0\\.0\\.1:${nobody}: ipmitool chassis bootdev pxe: .*Unable to establish IPMI v2 / RMCP\\+ session`));
      return true;
    });
    await assert.rejects(powerCycleToNetwork(bmc, false, { ipmitool: '/nonexistent/ipmitool' }), {
      message: `BMC 127.0.0.1:${bmc.port}: /nonexistent/ipmitool is not installed (apt install ipmitool)`,
    });
    assert.deepEqual(sim.calls().slice(before), [], 'nothing reached the chassis');
  });

  test("HostPower: the platform of the host's last boot script, one power-cycle per host at a time, and hosts with no BMC", async () => {
    const asked: Array<{ efi: boolean }> = [];
    let release: () => void = () => undefined;
    const bootScripts = new Map<string, 'bios' | 'efi64'>();
    const power = new HostPower(
      (mac) => (mac === '52:54:00:00:19:01' ? bmc : undefined),
      (mac) => bootScripts.get(mac),
      silentLogger(),
      async (_bmc, efi) => {
        asked.push({ efi });
        await new Promise<void>((resolve) => (release = resolve));
        return { wasOn: true, efi };
      },
    );
    assert.deepEqual(await power.powerCycle('52:54:00:00:19:02', 'test'), { kind: 'no-bmc' });
    bootScripts.set('52:54:00:00:19:01', 'efi64');
    const first = power.powerCycle('52:54:00:00:19:01', 'test');
    assert.deepEqual(await power.powerCycle('52:54:00:00:19:01', 'test'), { kind: 'busy', bmc: `127.0.0.1:${bmc.port}` });
    release();
    assert.deepEqual(await first, { kind: 'done', bmc: `127.0.0.1:${bmc.port}`, result: { wasOn: true, efi: true } });
    const forced = power.powerCycle('52:54:00:00:19:01', 'test', false);
    release();
    await forced;
    assert.deepEqual(asked, [{ efi: true }, { efi: false }]);
    const failing = new HostPower(
      () => bmc,
      () => undefined,
      silentLogger(),
      async () => {
        throw new Error('BMC 127.0.0.1:1: no answer');
      },
    );
    assert.deepEqual(await failing.powerCycle('52:54:00:00:19:01', 'test'), {
      kind: 'failed',
      bmc: `127.0.0.1:${bmc.port}`,
      problem: 'BMC 127.0.0.1:1: no answer',
    });
  });
});
