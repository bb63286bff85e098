/**
 * Several servers on one segment and one database (`serve --database`):
 * which of them answers a client's broadcasts. Every server computes the
 * same answer from the same list of live servers, so exactly one answers
 * each client, and when a server stops (its heartbeat in the database goes
 * stale) only its clients move, each to the server next in its order
 * (rendezvous, or highest-random-weight, hashing). Pure.
 */

/** FNV-1a, 32 bits: the same on every server and every platform. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  // A last avalanche (murmur3's fmix32): FNV alone leaves near-equal inputs near-equal in the high bits.
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b) >>> 0;
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35) >>> 0;
  hash ^= hash >>> 16;
  return hash >>> 0;
}

/** The server (of `servers`, by id) that answers `mac`; undefined when there is none. Ties go to the smaller id. */
export function answeringServer(mac: string, servers: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestWeight = -1;
  for (const server of servers) {
    const weight = fnv1a(`${mac}|${server}`);
    if (weight > bestWeight || (weight === bestWeight && best !== undefined && server < best)) {
      best = server;
      bestWeight = weight;
    }
  }
  return best;
}
