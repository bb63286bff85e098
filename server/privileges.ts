import { readdirSync, readFileSync } from 'node:fs';
import { nativeBinding } from './net/native.js';

/**
 * `rackboot serve` gives up root once its sockets are bound and its state is
 * open. Two ways in, one way out:
 *  - started as root with `--user NAME`: groups, gid and uid become the
 *    user's (glibc makes setuid process-wide), and the kernel empties every
 *    thread's permitted, effective and ambient capabilities as uid 0 goes;
 *  - started as the user itself with ambient capabilities (systemd's
 *    AmbientCapabilities=, or setpriv --ambient-caps): each thread clears
 *    its capabilities through the native addon (capabilities belong to a
 *    thread, see server/native/privileges.c).
 * Either way every thread is then read back from /proc/self/task, so the log
 * says what the kernel holds, not what was asked for.
 */

/**
 * Capabilities the server keeps after start: none. Every socket is bound
 * before the drop, DHCP replies leave through those sockets (broadcast,
 * never an ARP entry of ours), TFTP transfer sockets take ephemeral ports,
 * and /proc/net/arp is readable by all.
 */
export const keptCapabilities: readonly number[] = [];

/** One thread's credentials, as /proc/<pid>/task/<tid>/status shows them. */
export interface ThreadCredentials {
  tid: number;
  name: string;
  /** Real, effective, saved and filesystem ids. */
  uids: number[];
  gids: number[];
  /** Capability sets as bit masks. */
  effective: bigint;
  permitted: bigint;
  ambient: bigint;
  inheritable: bigint;
}

/** Parse one status file (pure). */
export function parseThreadStatus(tid: number, text: string): ThreadCredentials {
  const field = (name: string) => {
    const match = new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(text);
    if (!match) throw new Error(`/proc status of thread ${tid}: no ${name} line`);
    return match[1]!.trim();
  };
  const ids = (name: string) => field(name).split(/\s+/).map(Number);
  const mask = (name: string) => BigInt(`0x${field(name)}`);
  return {
    tid,
    name: field('Name'),
    uids: ids('Uid'),
    gids: ids('Gid'),
    effective: mask('CapEff'),
    permitted: mask('CapPrm'),
    ambient: mask('CapAmb'),
    inheritable: mask('CapInh'),
  };
}

/** Every thread of a process (default: this one). A thread that ends while being read is left out. */
export function readThreadCredentials(pid: number | 'self' = 'self'): ThreadCredentials[] {
  const threads: ThreadCredentials[] = [];
  for (const entry of readdirSync(`/proc/${pid}/task`)) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/task/${entry}/status`, 'utf8');
    } catch {
      continue;
    }
    threads.push(parseThreadStatus(Number(entry), text));
  }
  return threads;
}

export function capabilityMask(capabilities: readonly number[]): bigint {
  return capabilities.reduce((mask, capability) => mask | (1n << BigInt(capability)), 0n);
}

/** What holds more than it should: a thread with another uid, or capabilities beyond `kept`. Pure. */
export function excessPrivileges(threads: readonly ThreadCredentials[], uid: number, kept: bigint): ThreadCredentials[] {
  return threads.filter(
    (thread) =>
      thread.uids.some((id) => id !== uid) ||
      (thread.effective & ~kept) !== 0n ||
      (thread.permitted & ~kept) !== 0n ||
      (thread.ambient & ~kept) !== 0n ||
      thread.inheritable !== 0n,
  );
}

export interface TargetUser {
  name: string;
  uid: number;
  gid: number;
}

/** The user named by `--user`, from the system's user database; a clear error for a name that is not there. */
export function lookupUser(name: string): TargetUser {
  if (/^\d+$/.test(name)) throw new Error(`--user ${name}: name a user (as in /etc/passwd), not a number`);
  const found = nativeBinding().lookupUser({ name });
  if (found === undefined) throw new Error(`--user ${name}: no such user`);
  if (found.uid === 0) throw new Error(`--user ${name}: that user is root; name an unprivileged user`);
  return { name, ...found };
}

export interface DropReport {
  user: string | undefined;
  uid: number;
  gid: number;
  /** Capabilities still held (numbers), the same in every thread. */
  kept: number[];
  threads: number;
  /** False when the process started as its user with no capability at all: there was nothing to drop. */
  held: boolean;
  /**
   * Threads that still hold capabilities they started with because the
   * native addon could not signal them (they block even glibc's set*id
   * signal, see server/native/privileges.c). Empty with glibc, and after a
   * start as root.
   */
  stillPrivileged: Array<{ tid: number; name: string; effective: string }>;
}

/**
 * Become `user` (when root) and clear every capability but `keep`; throws,
 * with what the kernel still holds, if any thread but the unreachable ones
 * kept more. With no user and no capability held, there is nothing to do.
 */
export function dropPrivileges(user: TargetUser | undefined, keep: readonly number[] = keptCapabilities): DropReport {
  const euid = process.geteuid!();
  // Root is left by setuid, which clears every thread's capabilities; a
  // start as the user with capabilities (ambient ones, from a service
  // manager) has them cleared here.
  const holds = (thread: ThreadCredentials) => thread.effective !== 0n || thread.permitted !== 0n || thread.ambient !== 0n || thread.inheritable !== 0n;
  const held = euid === 0 || readThreadCredentials().some(holds);
  if (user !== undefined) {
    if (euid === 0) {
      // The user's groups from the user database, as a service manager's User= gives them
      // (initgroups is in Node, not in its type definitions); then gid, then uid, after
      // which nothing else may change.
      (process as unknown as { initgroups(user: string, extraGroup: number): void }).initgroups(user.name, user.gid);
      process.setgid!(user.gid);
      process.setuid!(user.uid);
    } else if (euid !== user.uid) {
      throw new Error(`--user ${user.name}: started as uid ${euid}, which can only become ${user.name} as root; start as root, or as ${user.name} itself`);
    }
  }
  const uid = process.geteuid!();
  if (uid === 0) throw new Error('serve still runs as root: name an unprivileged user with --user');
  const wanted = capabilityMask(keep);
  const unreachable = euid !== 0 && held ? nativeBinding().clearCapabilities({ keep: [...keep] }).unreachable : [];
  const after = readThreadCredentials();
  const excess = excessPrivileges(after, uid, wanted);
  const stillPrivileged = excess.filter((thread) => unreachable.includes(thread.tid) && thread.uids.every((id) => id === uid));
  const failed = excess.filter((thread) => !stillPrivileged.includes(thread));
  if (failed.length > 0) {
    const first = failed[0]!;
    throw new Error(
      `privileges not dropped: thread ${first.tid} (${first.name}) has uid ${first.uids.join('/')} and capabilities effective ${hex(first.effective)}, permitted ${hex(first.permitted)}, ambient ${hex(first.ambient)}`,
    );
  }
  return {
    user: user?.name,
    uid,
    gid: process.getegid!(),
    kept: [...keep],
    threads: after.length,
    held,
    stillPrivileged: stillPrivileged.map((thread) => ({ tid: thread.tid, name: thread.name, effective: hex(thread.effective) })),
  };
}

function hex(mask: bigint): string {
  return mask.toString(16).padStart(16, '0');
}
