import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/**
 * Who holds a local port, for the error when a bind fails with EADDRINUSE:
 * the processes with a socket bound to it, from /proc/net (this network
 * namespace's sockets) and each process's file descriptors. Best effort:
 * another user's descriptors are readable only by root, and a holder that
 * cannot be named is left out.
 */

export interface PortHolder {
  pid: number;
  command: string;
}

/** The socket inodes bound to `port` in one /proc/net/{tcp,tcp6,udp,udp6} table (pure); for TCP, listening ones only. */
export function socketInodes(table: string, port: number, protocol: 'tcp' | 'udp'): number[] {
  const inodes: number[] = [];
  for (const line of table.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10) continue;
    const local = fields[1]!;
    const localPort = Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16);
    if (localPort !== port) continue;
    if (protocol === 'tcp' && fields[3] !== '0A') continue; // LISTEN
    const inode = Number(fields[9]);
    if (inode > 0) inodes.push(inode);
  }
  return inodes;
}

export function portHolders(protocol: 'tcp' | 'udp', port: number): PortHolder[] {
  const inodes = new Set<number>();
  for (const table of [protocol, `${protocol}6`]) {
    try {
      for (const inode of socketInodes(readFileSync(`/proc/net/${table}`, 'utf8'), port, protocol)) inodes.add(inode);
    } catch {
      // no IPv6, or no /proc
    }
  }
  if (inodes.size === 0) return [];
  const holders: PortHolder[] = [];
  let pids: string[] = [];
  try {
    pids = readdirSync('/proc').filter((entry) => /^\d+$/.test(entry));
  } catch {
    return [];
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    const holds = fds.some((fd) => {
      try {
        const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        return match !== null && inodes.has(Number(match[1]));
      } catch {
        return false;
      }
    });
    if (!holds) continue;
    let command = '?';
    try {
      command = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      // it ended
    }
    holders.push({ pid: Number(pid), command });
  }
  return holders;
}

/** " (held by nginx, pid 812)" for an EADDRINUSE error on `port`; "" when the holder cannot be named. */
export function heldBy(error: unknown, protocol: 'tcp' | 'udp', port: number): string {
  if ((error as { code?: string } | undefined)?.code !== 'EADDRINUSE' && !/EADDRINUSE/.test(String((error as Error | undefined)?.message))) return '';
  const holders = portHolders(protocol, port).filter((holder) => holder.pid !== process.pid);
  if (holders.length === 0) return ` (${protocol.toUpperCase()} port ${port} is taken; its holder cannot be named from here)`;
  return ` (held by ${holders.map((holder) => `${holder.command}, pid ${holder.pid}`).join('; ')})`;
}
