import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, access } from 'node:fs/promises';
import path from 'node:path';

/** Firmware files from Debian's ovmf package. */
export const ovmfCode = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const ovmfVarsTemplate = '/usr/share/OVMF/OVMF_VARS_4M.fd';

/**
 * bios: SeaBIOS with QEMU's iPXE ROM; efi: OVMF's own UEFI PXE client;
 * efi-http: OVMF's UEFI HTTP Boot client (PXE switched off).
 */
export type Firmware = 'bios' | 'efi' | 'efi-http';

export interface QemuMachineOptions {
  firmware: Firmware;
  mac: string;
  /** Tap device (inside the namespace QEMU runs in). */
  tap: string;
  memoryMiB?: number;
  /** Emulated CPUs (-smp); one unless asked. QEMU runs each on a host thread of its own (multi-threaded TCG). */
  cpus?: number;
  /** Writable copy of OVMF's variable store (efi only); see prepareOvmfVars. */
  ovmfVars?: string;
  /** Disks (raw image files), each on its own kind of controller, with the serial the guest sees. */
  disks?: ReadonlyArray<{ file: string; serial: string; bus: 'virtio' | 'sata' | 'usb' }>;
  /** A reboot restarts the machine (a rack's machine, rebooted by a rollout or reset by its watchdog); else QEMU exits on one. */
  rebootable?: boolean;
  /** A QMP socket (unix path) to control the machine through: how a simulated BMC powers it off and on. */
  qmp?: string;
}

/**
 * The CPU every emulated machine gets. KVM cannot run Xen on these hosts, so
 * QEMU emulates (TCG); "-cpu max" makes Xen's PV dom0 crash under TCG,
 * Haswell-noTSX does not. Without ERMS (-erms) Linux clears and copies pages
 * with rep stosq/movsq, not rep stosb/movsb, which TCG (QEMU 7.2) runs one
 * byte per loop: a Debian dom0 short of memory had soft lockups of 20-50 s
 * in xenconsoled, vgs and xl, each in clear_page_erms; the next boot,
 * without ERMS, had none.
 */
export const emulatedCpu = 'Haswell-noTSX,-erms';

/** QEMU's -smp for `cpus` emulated CPUs: nothing for one (QEMU's default) or unset. */
export function cpuArgs(cpus: number | undefined): string[] {
  return cpus === undefined || cpus === 1 ? [] : ['-smp', String(cpus)];
}

/**
 * QEMU arguments for a machine that network-boots from a tap device, on
 * emulatedCpu. BIOS machines get an e1000 with QEMU's iPXE option ROM
 * (already iPXE: it sends user class "iPXE"). EFI machines get virtio-net
 * with no option ROM ("romfile="), so OVMF's own UEFI PXE client boots, the
 * way most UEFI PCs do.
 */
export function qemuArgs(options: QemuMachineOptions): string[] {
  const args = [
    '-accel',
    'tcg',
    '-cpu',
    emulatedCpu,
    '-m',
    String(options.memoryMiB ?? 1024),
    ...cpuArgs(options.cpus),
    '-display',
    'none',
    '-serial',
    'stdio',
    '-monitor',
    'none',
    ...(options.rebootable === true ? [] : ['-no-reboot']),
    ...(options.qmp === undefined ? [] : ['-qmp', `unix:${options.qmp},server=on,wait=off`]),
    '-netdev',
    `tap,id=n0,ifname=${options.tap},script=no,downscript=no`,
  ];
  if (options.firmware === 'bios') {
    args.push('-boot', 'n', '-device', `e1000,netdev=n0,mac=${options.mac}`);
  } else {
    if (!options.ovmfVars) throw new Error('an EFI machine needs a writable copy of OVMF_VARS (prepareOvmfVars)');
    args.push(
      '-drive',
      `if=pflash,format=raw,readonly=on,file=${ovmfCode}`,
      '-drive',
      `if=pflash,format=raw,file=${options.ovmfVars}`,
      '-device',
      `virtio-net-pci,netdev=n0,mac=${options.mac},romfile=`,
    );
    if (options.firmware === 'efi-http') {
      // With PXE on, OVMF tries HTTP Boot only after minutes of PXE time-outs.
      args.push('-fw_cfg', 'name=opt/org.tianocore/IPv4PXESupport,string=n', '-fw_cfg', 'name=opt/org.tianocore/IPv6PXESupport,string=n');
    }
  }
  for (const [index, disk] of (options.disks ?? []).entries()) {
    const drive = `disk${index}`;
    args.push('-drive', `file=${disk.file},format=raw,if=none,id=${drive}`);
    if (disk.bus === 'virtio') args.push('-device', `virtio-blk-pci,drive=${drive},serial=${disk.serial}`);
    if (disk.bus === 'sata') args.push('-device', `ahci,id=ahci${index}`, '-device', `ide-hd,drive=${drive},bus=ahci${index}.0,serial=${disk.serial}`);
    if (disk.bus === 'usb') args.push('-device', `qemu-xhci,id=xhci${index}`, '-device', `usb-storage,drive=${drive},bus=xhci${index}.0,serial=${disk.serial}`);
  }
  return args;
}

/** OVMF writes boot variables: every machine needs its own copy of the store. */
export async function prepareOvmfVars(dir: string): Promise<string> {
  const target = path.join(dir, 'OVMF_VARS.fd');
  await copyFile(ovmfVarsTemplate, target);
  return target;
}

export async function assertQemu(firmware: Firmware): Promise<void> {
  const needed = ['/usr/bin/qemu-system-x86_64', ...(firmware === 'bios' ? [] : [ovmfCode, ovmfVarsTemplate])];
  for (const file of needed) {
    try {
      await access(file);
    } catch {
      throw new Error(`${file} is missing: install qemu-system-x86, ipxe-qemu and ovmf (builder/install-deps.sh does)`);
    }
  }
}

/**
 * The line the runtime prints when it has applied its profile; only a
 * whole line counts (the serial console delivers it in pieces, and Xen's
 * serial driver turns the runtime's "\r\n" into "\r\r\n"). `domains` is
 * how many Xen domains the runtime started from the profile.
 */
export const readyLinePattern =
  /rackboot-runtime: ready hostname=(?<hostname>\S+) ip=(?<ip>\S+) mac=(?<mac>\S+)(?: domains=(?<domains>\d+))?(?<rest>[^\r\n]*)\r*\n/;

/**
 * Collect a child's output and wait for a pattern in it, with a deadline.
 * The whole console transcript stays available for failure messages.
 */
export class ConsoleWatcher {
  transcript = '';
  private readonly waiters = new Set<() => void>();
  private exited: number | null | undefined;

  constructor(
    readonly child: ChildProcess,
    onData?: (chunk: string) => void,
  ) {
    const take = (data: Buffer) => {
      const chunk = data.toString('latin1');
      this.transcript += chunk;
      onData?.(chunk);
      for (const check of [...this.waiters]) check();
    };
    child.stdout?.on('data', take);
    child.stderr?.on('data', take);
    child.once('exit', (code) => {
      this.exited = code;
      for (const check of [...this.waiters]) check();
    });
  }

  /** The exit code once the child has exited (null after a signal), undefined while it runs. */
  get exitCode(): number | null | undefined {
    return this.exited;
  }

  /**
   * The first match of `pattern` in the transcript at or after offset
   * `from`, with where it ends (to wait for what comes after it); rejects,
   * with the end of the transcript, when the child exits first or the
   * time runs out.
   */
  waitFor(pattern: RegExp, timeoutMs: number, what = String(pattern), from = 0): Promise<RegExpExecArray & { end: number }> {
    // Global, so that the search starts at `from`; made once, and set back to `from` before each search.
    const search = new RegExp(pattern.source, `${pattern.flags.replace('g', '')}g`);
    return new Promise((resolve, reject) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      const check = (): void => {
        search.lastIndex = from;
        const match = search.exec(this.transcript);
        if (match !== null) {
          finish();
          resolve(Object.assign(match, { end: match.index + match[0].length }));
        } else if (this.exited !== undefined) {
          finish();
          reject(new Error(`process exited (${String(this.exited)}) before ${what}; output:\n${this.transcript.slice(-4000)}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}; output so far:\n${this.transcript.slice(-4000)}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }
}

export function spawnQemu(netns: string, options: QemuMachineOptions): ChildProcess {
  return spawn('ip', ['netns', 'exec', netns, 'qemu-system-x86_64', ...qemuArgs(options)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}
