import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/**
 * Network namespaces for the demo and the tests. Every demo or test host
 * lives in a namespace made for it, on addresses from 198.18.0.0/15 (RFC
 * 2544), so none of their packets can reach a real network. Code that needs
 * namespaces fails (never skips) when they cannot be made, so a CI machine
 * without root shows up as red.
 */

export function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function assertRoot(): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new Error('network namespaces and tap devices need root; run this as root (sudo)');
  }
}

/** One end of a veth pair made by Netns.linkTo. */
export interface VethEnd {
  device: string;
  cidr?: string;
  mac?: string;
}

export class Netns {
  readonly name: string;
  private closed = false;

  private constructor(name: string) {
    this.name = name;
  }

  /** A fresh namespace with loopback up. */
  static create(prefix = 'rbt'): Netns {
    assertRoot();
    const name = `${prefix}-${randomBytes(4).toString('hex')}`;
    run('ip', ['netns', 'add', name]);
    const ns = new Netns(name);
    ns.ip('link', 'set', 'lo', 'up');
    return ns;
  }

  ip(...args: string[]): string {
    return run('ip', ['-n', this.name, ...args]);
  }

  exec(cmd: string, args: string[]): string {
    return run('ip', ['netns', 'exec', this.name, cmd, ...args]);
  }

  /** Add a tap device (for a QEMU NIC) with an address, up. */
  addTap(device: string, cidr: string): void {
    this.ip('tuntap', 'add', 'dev', device, 'mode', 'tap');
    this.ip('addr', 'add', cidr, 'dev', device);
    this.ip('link', 'set', device, 'up');
  }

  /**
   * A veth pair from this namespace to another one: `here` stays, `there`
   * moves over; each end gets its address (when given) and comes up. The
   * other end may take a fixed MAC (a client the test knows by MAC).
   */
  linkTo(other: Netns, here: VethEnd, there: VethEnd): void {
    this.ip('link', 'add', here.device, 'type', 'veth', 'peer', 'name', there.device);
    this.ip('link', 'set', there.device, 'netns', other.name);
    for (const [ns, end] of [
      [this as Netns, here],
      [other, there],
    ] as const) {
      if (end.mac) ns.ip('link', 'set', end.device, 'address', end.mac);
      if (end.cidr) ns.ip('addr', 'add', end.cidr, 'dev', end.device);
      ns.ip('link', 'set', end.device, 'up');
    }
  }

  spawn(cmd: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    return spawn('ip', ['netns', 'exec', this.name, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  }

  delete(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      run('ip', ['netns', 'pids', this.name])
        .split('\n')
        .filter(Boolean)
        .forEach((pid) => {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            /* already gone */
          }
        });
    } catch {
      /* namespace may already be gone */
    }
    try {
      run('ip', ['netns', 'del', this.name]);
    } catch {
      /* already deleted */
    }
  }
}
