/**
 * The hosts rackboot can power-cycle: those whose profile names a BMC. One
 * power-cycle per host at a time; every one logged with the MAC, the BMC
 * and what came of it. The network boot's platform (BIOS or UEFI) is the
 * one the host's last boot script was for, so its next boot asks for the
 * same firmware path.
 */

import type { Logger } from 'pino';
import type { Platform } from '../core/facts.js';
import type { BmcConfig } from '../profiles/profile.js';
import { bmcName, powerCycleToNetwork, type PowerCycleResult } from './ipmi.js';

export type PowerCycleOutcome =
  | { kind: 'done'; bmc: string; result: PowerCycleResult }
  | { kind: 'no-bmc' }
  | { kind: 'busy'; bmc: string }
  | { kind: 'failed'; bmc: string; problem: string };

export class HostPower {
  private readonly cycling = new Set<string>();

  constructor(
    /** The host's BMC, from its profile; undefined when it names none. */
    private readonly bmcOf: (mac: string) => BmcConfig | undefined,
    /** The platform of the host's last boot script, when one went to it. */
    private readonly platformOf: (mac: string) => Platform | undefined,
    private readonly log: Logger,
    private readonly cycle: (bmc: BmcConfig, efi: boolean) => Promise<PowerCycleResult> = powerCycleToNetwork,
  ) {}

  hasBmc(mac: string): boolean {
    return this.bmcOf(mac) !== undefined;
  }

  /**
   * Power-cycle the host into a network boot through its BMC. `efi`
   * undefined: UEFI when its last boot script was (BIOS when none was seen).
   */
  async powerCycle(mac: string, why: string, efi?: boolean): Promise<PowerCycleOutcome> {
    const bmc = this.bmcOf(mac);
    if (bmc === undefined) return { kind: 'no-bmc' };
    const name = bmcName(bmc);
    if (this.cycling.has(mac)) return { kind: 'busy', bmc: name };
    this.cycling.add(mac);
    const uefi = efi ?? this.platformOf(mac) === 'efi64';
    try {
      const result = await this.cycle(bmc, uefi);
      this.log.info(
        { event: 'bmc', mac, bmc: name, action: result.wasOn ? 'power-cycle' : 'power-on', nextBoot: uefi ? 'network (UEFI)' : 'network', why },
        `bmc: ${result.wasOn ? 'power-cycled' : 'powered on (it was off)'} through ${name}, next boot from the network`,
      );
      return { kind: 'done', bmc: name, result };
    } catch (error) {
      const problem = error instanceof Error ? error.message : String(error);
      this.log.error({ event: 'bmc', mac, bmc: name, why, problem }, `bmc: could not power-cycle the host through ${name}`);
      return { kind: 'failed', bmc: name, problem };
    } finally {
      this.cycling.delete(mac);
    }
  }
}
