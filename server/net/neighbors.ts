import { createSocket } from 'node:dgram';
import { readFile } from 'node:fs/promises';
import { normaliseMac } from '../profiles/mac.js';

/**
 * The MAC behind an IPv4 address on the local network, from the kernel's
 * neighbour (ARP) table. TFTP and HTTP see only a client's address; a client
 * that just sent us a packet on the boot network is in this table (the
 * kernel needed its MAC to answer), in proxy mode too, where rackboot holds
 * no lease that would say it.
 */

/** One complete entry of /proc/net/arp. */
export interface Neighbor {
  address: string;
  mac: string;
  device: string;
}

/** ATF_COM: the entry is complete (the MAC is known). */
const complete = 0x2;

/** Parse /proc/net/arp: a header line, then "IP HWtype Flags HWaddress Mask Device". Incomplete and non-Ethernet entries are left out. */
export function parseArpTable(text: string): Neighbor[] {
  const neighbors: Neighbor[] = [];
  for (const line of text.split('\n').slice(1)) {
    const [address, hardwareType, flags, hardwareAddress, , device] = line.trim().split(/\s+/);
    if (address === undefined || device === undefined || hardwareType !== '0x1') continue;
    if ((Number.parseInt(flags ?? '0', 16) & complete) === 0) continue;
    const mac = normaliseMac(hardwareAddress ?? '');
    if (mac === undefined || mac === '00:00:00:00:00:00') continue;
    neighbors.push({ address, mac, device });
  }
  return neighbors;
}

/** Looks addresses up in the table, reading it again at most every `maxAgeMs`, and at once on a miss. */
export class NeighborTable {
  private table = new Map<string, Neighbor>();
  private readAt = 0;
  private reading: Promise<void> | undefined;

  constructor(
    private readonly path = '/proc/net/arp',
    private readonly maxAgeMs = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  async macOf(address: string): Promise<string | undefined> {
    const fresh = this.now() - this.readAt < this.maxAgeMs;
    if (fresh && this.table.has(address)) return this.table.get(address)!.mac;
    await this.refresh();
    return this.table.get(address)?.mac;
  }

  /**
   * The MAC behind `address` on `device`, from the table as it is now (read
   * again, not cached): for decisions a stale entry must not sway.
   */
  async currentMacOf(address: string, device: string): Promise<string | undefined> {
    // A read under way began before this call and may be stale: wait it out,
    // then share (or start) a read that began after it.
    if (this.reading) await this.reading;
    await this.refresh();
    const neighbor = this.table.get(address);
    return neighbor?.device === device ? neighbor.mac : undefined;
  }

  private refresh(): Promise<void> {
    this.reading ??= readFile(this.path, 'utf8')
      .then(
        (text) => {
          this.table = new Map(parseArpTable(text).map((neighbor) => [neighbor.address, neighbor]));
        },
        () => undefined,
      )
      .finally(() => {
        this.readAt = this.now();
        this.reading = undefined;
      });
    return this.reading;
  }
}

/** What resolveNeighbor gives for an on-link address whose MAC the kernel could not learn: such clients share one count. */
export const unresolvedNeighbor = '(no ARP reply)';

/**
 * The MAC behind an address on our own link, for counting a client's
 * requests per machine. A client that sent us a datagram need not be in the
 * neighbour table yet (a host with many addresses ARPs us from one of them;
 * some PXE ROMs take our MAC from the DHCP reply and never ARP), so on a
 * miss `poke` sends it something, which makes the kernel resolve it, and
 * the table is read again after each of `waitsMs`. A machine that answers
 * ARP is found within a few milliseconds on a LAN; one that does not gets
 * unresolvedNeighbor. Undefined for an address off the link (behind a
 * router), where the table cannot say.
 */
export async function resolveNeighbor(
  table: Pick<NeighborTable, 'macOf'>,
  address: string,
  options: { onLink: (address: string) => boolean; poke: (address: string) => void; waitsMs?: readonly number[] },
): Promise<string | undefined> {
  if (!options.onLink(address)) return undefined;
  return (
    (await readWithPoke(
      () => table.macOf(address),
      () => options.poke(address),
      options.waitsMs,
    )) ?? unresolvedNeighbor
  );
}

/**
 * The MAC behind `address` on `device` from the table as it is now, for
 * decisions (currentMacOf); on a miss, `poke` makes the kernel resolve it
 * and the table is read again after each of `waitsMs`. A host that only
 * sends to us (syslog over UDP) has no entry once the kernel let its entry
 * go: the kernel needs none to receive. Undefined when no one answers.
 */
export function currentNeighbor(
  table: Pick<NeighborTable, 'currentMacOf'>,
  address: string,
  device: string,
  poke: (address: string) => void,
  waitsMs?: readonly number[],
): Promise<string | undefined> {
  return readWithPoke(
    () => table.currentMacOf(address, device),
    () => poke(address),
    waitsMs,
  );
}

/** `read`; on a miss, `poke` once and `read` again after each of `waitsMs` (a LAN answers ARP within a few ms). */
async function readWithPoke(
  read: () => Promise<string | undefined>,
  poke: () => void,
  waitsMs: readonly number[] = [5, 15, 30, 50],
): Promise<string | undefined> {
  const known = await read();
  if (known !== undefined) return known;
  poke();
  for (const wait of waitsMs) {
    await new Promise((resolve) => setTimeout(resolve, wait));
    const mac = await read();
    if (mac !== undefined) return mac;
  }
  return undefined;
}

/**
 * resolveNeighbor with its poke: a UDP socket (bound to `bindAddress`, the
 * served address, or any) that sends an empty datagram to a client's
 * discard port (9), which makes the kernel resolve the client's MAC.
 */
export async function openNeighborResolver(options: {
  table: Pick<NeighborTable, 'macOf'>;
  onLink: (address: string) => boolean;
  bindAddress?: string;
  onError?: (error: Error) => void;
}): Promise<{ macOf(address: string): Promise<string | undefined>; poke(address: string): void; close(): Promise<void> }> {
  const socket = createSocket('udp4');
  socket.on('error', (error) => options.onError?.(error));
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ address: options.bindAddress ?? '0.0.0.0', port: 0 }, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  const poke = (address: string) => socket.send(Buffer.alloc(0), 9, address, () => undefined);
  return {
    macOf: (address) => resolveNeighbor(options.table, address, { onLink: options.onLink, poke }),
    poke,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
