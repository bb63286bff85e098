/**
 * Block bookkeeping for a read transfer: pure arithmetic shared by the
 * sender and its tests.
 *
 * Blocks are counted from 1 with an unbounded "index"; the 16-bit block
 * number on the wire is the index modulo 65536. RFC 1350 has no rule for
 * files past 65535 blocks (32 MB at 512 bytes); wrapping to 0 is what
 * tftp-hpa, atftp, dnsmasq, iPXE and the PXE ROMs we have seen agree on.
 */

/** The 16-bit block number for a block index: 65535 is followed by 0. */
export function wireBlockNumber(index: number): number {
  return index % 0x10000;
}

export type AckMeaning =
  /** Acknowledges blocks up to and including `index`: slide the window. */
  | { kind: 'advance'; index: number }
  /**
   * Repeats the last acknowledgement. Never resend on this: answering
   * duplicate ACKs with data is the Sorcerer's Apprentice bug (RFC 1123
   * section 4.2.3.1), where every delayed packet doubles the traffic.
   * Lost data is recovered by the sender's own timeout.
   */
  | { kind: 'duplicate' }
  /** Names a block that was never sent or is long acknowledged: ignore. */
  | { kind: 'outOfWindow' };

/**
 * Read an ACK's block number against the sender's state.
 * `lastAcked`: index of the last acknowledged block (0 before any).
 * `highestSent`: highest index sent so far.
 * The window is at most 64 blocks, far below 65536, so the distance from
 * the last acknowledged block settles which lap of the counter is meant.
 */
export function interpretAck(block: number, lastAcked: number, highestSent: number): AckMeaning {
  const distance = (block - wireBlockNumber(lastAcked) + 0x10000) % 0x10000;
  if (distance === 0) return { kind: 'duplicate' };
  if (distance <= highestSent - lastAcked) return { kind: 'advance', index: lastAcked + distance };
  return { kind: 'outOfWindow' };
}
