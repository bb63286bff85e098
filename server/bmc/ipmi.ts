/**
 * Power a host through its BMC over IPMI v2.0 (RMCP+), with Debian's
 * ipmitool (its lanplus interface): the one IPMI client every BMC vendor
 * is tested against, so rackboot does not carry a second RMCP+ stack. The
 * password goes to ipmitool as a file (-f), never on a command line that
 * ps shows.
 */

import { execFile } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import type { BmcConfig } from '../profiles/profile.js';

export class BmcError extends Error {
  constructor(
    readonly bmc: string,
    message: string,
  ) {
    super(`BMC ${bmc}: ${message}`);
    this.name = 'BmcError';
  }
}

/** host:port as logs and errors name a BMC. */
export function bmcName(bmc: Pick<BmcConfig, 'address' | 'port'>): string {
  return `${bmc.address}:${bmc.port}`;
}

export interface PowerCycleResult {
  /** Whether the host was powered on (cycled) or off (powered on). */
  wasOn: boolean;
  /** The boot device flag set for the next boot: the network, in UEFI mode when efi. */
  efi: boolean;
}

export interface IpmiOptions {
  /** The ipmitool to run (default: ipmitool on PATH). */
  ipmitool?: string;
  /** Per ipmitool command, including its own retries (default 30 s). */
  timeoutMs?: number;
}

/** ipmitool's arguments for one command on `bmc`, without the command. */
export function ipmitoolArgs(bmc: BmcConfig): string[] {
  // -N 1 -R 3: a second for the first reply, three tries; a BMC that never answers fails in about 12 s (ipmitool's defaults take 20 s or more).
  return [
    '-I',
    'lanplus',
    '-C',
    String(bmc.cipherSuite),
    '-H',
    bmc.address,
    '-p',
    String(bmc.port),
    '-U',
    bmc.user,
    '-f',
    bmc.passwordFile,
    '-N',
    '1',
    '-R',
    '4',
  ];
}

/** What ipmitool said when it failed, as one line: its messages, without the usage text. */
export function ipmitoolProblem(stderr: string, stdout: string, code: number | string | null): string {
  const lines = `${stderr}\n${stdout}`
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
  const text = lines.slice(0, 3).join('; ');
  return text.length > 0 ? text.slice(0, 400) : `ipmitool exited with ${String(code)} and said nothing`;
}

async function ipmitool(bmc: BmcConfig, command: string[], options: IpmiOptions): Promise<string> {
  const program = options.ipmitool ?? 'ipmitool';
  return await new Promise((resolve, reject) => {
    execFile(
      program,
      [...ipmitoolArgs(bmc), ...command],
      { timeout: options.timeoutMs ?? 30_000, encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' } },
      (error, stdout, stderr) => {
        if (error === null) {
          resolve(stdout);
          return;
        }
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') reject(new BmcError(bmcName(bmc), `${program} is not installed (apt install ipmitool)`));
        else if (error.killed) reject(new BmcError(bmcName(bmc), `ipmitool ${command.join(' ')}: no answer within ${(options.timeoutMs ?? 30_000) / 1000} s`));
        else reject(new BmcError(bmcName(bmc), `ipmitool ${command.join(' ')}: ${ipmitoolProblem(stderr, stdout, error.code ?? null)}`));
      },
    );
  });
}

/**
 * Set the host's next boot to the network (one boot only, as IPMI's boot
 * flags are) and power-cycle it: a host that is off is powered on. The BMC
 * resets the machine however hung its software is.
 */
export async function powerCycleToNetwork(bmc: BmcConfig, efi: boolean, options: IpmiOptions = {}): Promise<PowerCycleResult> {
  try {
    await access(bmc.passwordFile, constants.R_OK);
  } catch (error) {
    throw new BmcError(bmcName(bmc), `cannot read its passwordFile ${bmc.passwordFile} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  await ipmitool(bmc, ['chassis', 'bootdev', 'pxe', ...(efi ? ['options=efiboot'] : [])], options);
  const status = await ipmitool(bmc, ['chassis', 'power', 'status'], options);
  const power = /Chassis Power is (on|off)/i.exec(status)?.[1]?.toLowerCase();
  if (power === undefined)
    throw new BmcError(bmcName(bmc), `ipmitool chassis power status: want "Chassis Power is on" or "off", got ${JSON.stringify(status.trim())}`);
  await ipmitool(bmc, ['chassis', 'power', power === 'on' ? 'cycle' : 'on'], options);
  return { wasOn: power === 'on', efi };
}
