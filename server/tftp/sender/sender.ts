import { retransmissionTimeout, sampleRoundTrip, type RoundTripEstimate } from './rtt.js';
import { interpretAck } from './window.js';

/**
 * The sender side of a read transfer (RFC 1350, RFC 2347 option
 * acknowledgement, RFC 7440 windows) as a state machine: which blocks go
 * out when, how long to wait for the ACK, when to give up. It holds block
 * indices and times, never file bytes, and reads no clock: every event
 * carries `now` (ms, on one monotonic clock of the caller's). Each event
 * returns one action for the caller (server/tftp/io/transfer.ts) to carry
 * out; the frequent ones are objects reused from event to event, so read
 * an action before passing the next event.
 */

/**
 * How a transfer ended.
 * - complete: the client acknowledged the last block.
 * - probe: the client answered an OACK carrying tsize with an ERROR. PXE
 *   ROMs (Intel, OVMF) send an RRQ with `tsize 0` only to learn the size,
 *   abort with error 8 and ask again: routine, not worth an info line.
 * - clientError: the client sent an ERROR during the data phase.
 * - timeout: no acknowledgement after every retransmission.
 * - readError: the file could not be read to the end.
 * - serverClosed: the server shut down mid-transfer.
 */
export type TransferOutcome = 'complete' | 'probe' | 'clientError' | 'timeout' | 'readError' | 'serverClosed';

export interface SenderOptions {
  blockSize: number;
  /** RFC 7440 windowsize: blocks sent before waiting for an ACK. */
  windowSize: number;
  /** The configured timeout, or the one the client asked for (RFC 2349). */
  timeoutMs: number;
  /** Shortest adaptive retransmission timeout (see TftpServerOptions.minTimeoutMs). */
  minTimeoutMs: number;
  retries: number;
  /** How long to wait for the client's first ACK, however many retransmissions that leaves. */
  silentTimeoutMs: number;
  /** Whether the retransmission timeout adapts to measured round trips: not when the client set a timeout (RFC 2349). */
  adaptive: boolean;
  /** Whether an OACK goes out first (some option was accepted). */
  optionAck: boolean;
  /** Whether the OACK answers tsize: an ERROR in reply to it is a size probe. */
  optionAckHasSize: boolean;
}

/** What the file holds, once it is open. */
export interface OpenedFile {
  /** The last block's index and length, when known before reading (random-access content); a stream reports its last block with lastBlock(). */
  finalIndex?: number;
  finalLength?: number;
  /** Whether the socket's pump can send from this file (server/native/tftp_endpoint.c). */
  pumpable: boolean;
}

/**
 * Why the socket's pump handed its transfer back, and how far it got:
 * - packet: a packet other than the expected ACK came in; it is delivered right after;
 * - timeout: no ACK for the block in flight within its timeout;
 * - wouldBlock: the next block is not in the page cache (the pump never waits for the disk); not sent;
 * - readError: the file could not be read (detail says why); not sent;
 * - complete: the final block is acknowledged.
 */
export interface PumpStop {
  reason: 'packet' | 'timeout' | 'wouldBlock' | 'readError' | 'complete';
  /** Blocks 1..lastAcked are acknowledged. */
  lastAcked: number;
  /** The last block sent: lastAcked, or lastAcked + 1 in flight. */
  highestSent: number;
  /** How long ago highestSent went out. */
  sinceSentMs: number;
  /** The round-trip estimate, when the pump adapted its timeout (undefined when nothing was measured). */
  roundTrip: RoundTripEstimate | undefined;
  /** ACKs that came while the pump polled for them instead of sleeping, and polls that ended without one (server/native/tftp_endpoint.c). */
  polledAcks: number;
  pollMisses: number;
  detail?: string;
}

/** What the pump is asked to do: send block `from` and answer each in-order ACK with the next, up to finalIndex. */
export interface PumpRequest {
  from: number;
  finalIndex: number;
  timeoutMs: number;
  /** With an adaptive timeout: the estimate to carry on from, and the bounds of the timeout. */
  adaptive?: { estimate: RoundTripEstimate | undefined; minMs: number; maxMs: number };
}

export type SenderAction =
  /** Nothing to do. */
  | { readonly kind: 'none' }
  /** Send the OACK (again), then wait for its ACK until `until`. */
  | { readonly kind: 'sendOptionAck'; readonly until: number }
  /** Open the file, then report it with fileOpened() (or end with a read error). */
  | { readonly kind: 'openFile' }
  /**
   * Send blocks from..to, in order, reporting each run handed to the socket
   * with blocksSent(), a stream's short block with lastBlock() (and stop
   * after it), then windowSent().
   */
  | { readonly kind: 'sendBlocks'; readonly from: number; readonly to: number }
  /** Hand the transfer to the socket's pump; then report pumpStarted() or pumpWouldBlock(). */
  | { readonly kind: 'startPump'; readonly request: PumpRequest }
  /** Wait for an ACK until `until`; call timerFired() then. */
  | WaitAction
  /** The wait is over: call expire(generation) in turn with the other events (it is stale when an ACK re-armed the wait first). */
  | { readonly kind: 'expire'; readonly generation: number }
  /** As wait, and the wait is already over, as expire. */
  | { readonly kind: 'waitAndExpire'; readonly until: number; readonly generation: number }
  /** Call resume() in turn with the other events: the pump left a block to read on the thread pool. */
  | { readonly kind: 'resume' }
  /** The transfer is over: send ERROR 0 with `errorMessage` when given, then close. */
  | { readonly kind: 'finish'; readonly outcome: TransferOutcome; readonly detail?: string; readonly errorMessage?: string };

export interface WaitAction {
  readonly kind: 'wait';
  readonly until: number;
}

/** The counts a transfer's summary reports (io/transfer.ts TransferSummary). */
export interface SenderCounts {
  /** File bytes the client acknowledged. */
  bytes: number;
  /** Blocks the client acknowledged. */
  blocks: number;
  /** DATA (or OACK) packets sent again after a timeout. */
  retransmits: number;
  /** ACKs that repeated an earlier one and were not answered. */
  duplicateAcks: number;
  /**
   * With windows: ACKs inside the window that the client sent before the
   * blocks after the acknowledged one could reach it; taken as progress,
   * not answered with a window.
   */
  earlyAcks: number;
  /** DATA packets the socket's pump sent by itself (server/native/tftp_endpoint.c); 0 for transfers it does not take. */
  pumpedBlocks: number;
  /** DATA packets sent in runs of one system call each (UDP segmentation, see server/native/udp_segments.c). */
  segmentedBlocks: number;
  /** ACKs the pump caught by polling for them (it polls while it pumps the only transfer, and the client answers within 50 us), and polls that caught none. */
  polledAcks: number;
  pollMisses: number;
}

export type SenderPhase = 'optionAck' | 'data' | 'done';

/**
 * Longest wait between retransmissions once backing off: longer than the
 * clients' own retransmission timers (atftp and tftp-hpa wait 5 s).
 */
export const maxBackoffMs = 8000;

/**
 * How long to wait for an ACK after the `tries`-th retransmission of the
 * same window: the timeout, doubled each time (RFC 1123 section 4.2.3.2
 * asks for exponential backoff), up to maxBackoffMs (or the timeout, if the
 * client asked for a longer one).
 *
 * Backing off is also what unsticks atftp with windows (Debian's RFC 7440
 * patch): on old blocks it sends one ACK and then ignores them until its
 * own 5 s timer fires, and every retransmission restarts that timer. If
 * that one ACK is lost, only a pause longer than 5 s lets it speak again;
 * resending every second would keep it silent until we gave up.
 */
export function retransmissionDelay(timeoutMs: number, tries: number): number {
  return Math.min(timeoutMs * 2 ** Math.min(tries, 20), Math.max(timeoutMs, maxBackoffMs));
}

const none: SenderAction = { kind: 'none' };
const openFile: SenderAction = { kind: 'openFile' };
const resume: SenderAction = { kind: 'resume' };

/**
 * One read transfer's sender. Blocks are counted from 1 by index (see
 * window.ts for the 16-bit wire numbers); `now` is in ms on whatever
 * monotonic clock the caller uses for every event of the transfer.
 */
export class Sender {
  private phaseNow: SenderPhase;
  private lastAckedIndex = 0;
  private highestSent = 0;
  private finalIndexKnown: number | undefined;
  private finalLength = 0;
  private tries = 0;
  /** Counts the waits armed (and the pump's start): an expiry of an older one is stale. */
  private timerGeneration = 0;
  /** When the ACK awaited is due. */
  private deadline = 0;
  private retransmits = 0;
  private duplicateAcks = 0;
  private earlyAcks = 0;
  /**
   * With windows: when each unacknowledged block was last sent, in slot
   * (index mod windowSize), and the shortest round trip seen, to tell an
   * ACK that reports a loss from one the client sent before the blocks
   * after it could have reached it.
   */
  private readonly sentAt: Float64Array | undefined;
  /** With windows, per slot: which burst (sendBlocks action) last sent the block, and whether it opened that burst having been sent before. */
  private readonly burstOf: Uint32Array | undefined;
  private readonly resent: Uint8Array | undefined;
  private burst = 0;
  /** The first block of the current burst. */
  private burstStart = 0;
  /** The last ACK taken as early (see acknowledge()); 0 when none is pending. */
  private earlyAckIndex = 0;
  private optionAckSentAt = 0;
  private minRoundTrip = Infinity;
  /**
   * Adaptive retransmission timeout (RFC 1123 section 4.2.3.2 asks TFTP for
   * one), unless the client set a timeout itself (RFC 2349): the smoothed
   * round trip and its variation as in RFC 6298, in ms, measured from the
   * last block of each window (or the OACK) to its ACK, never from a block
   * sent twice (Karn). Until measured, the configured timeout.
   */
  private roundTrip: RoundTripEstimate | undefined;
  private timeoutMs: number;
  /** When the highest block went out, and whether it has gone out again since. */
  private highestSentAt = 0;
  private highestSentAgain = false;
  /** Waiting scheduled since the last progress, ms; past `patienceMs` (and `retries`) the transfer gives up. */
  private waited = 0;
  private readonly patienceMs: number;
  /** Whether the client has acknowledged anything yet, and until when a client that has not is waited for. */
  private heardFromClient = false;
  private silentUntil = Infinity;
  private pumpable = false;
  /** The block the pump was asked to start from, and the first it sent. */
  private pumpRequestedFrom = 0;
  private pumpedFrom = 0;
  private pumpedBlocks = 0;
  private segmentedBlocks = 0;
  private polledAcks = 0;
  private pollMisses = 0;
  /** The actions every block or ACK returns, reused: no allocation per packet. */
  private readonly sendAction = { kind: 'sendBlocks' as const, from: 0, to: 0 };
  private readonly waitAction = { kind: 'wait' as const, until: 0 };

  constructor(private readonly options: SenderOptions) {
    this.phaseNow = options.optionAck ? 'optionAck' : 'data';
    this.timeoutMs = options.timeoutMs;
    // As patient as the configured timeout's schedule, however short the measured one.
    let patience = 0;
    for (let tries = 0; tries <= options.retries; tries += 1) patience += retransmissionDelay(options.timeoutMs, tries);
    this.patienceMs = patience;
    if (options.windowSize > 1) {
      this.sentAt = new Float64Array(options.windowSize);
      this.burstOf = new Uint32Array(options.windowSize);
      this.resent = new Uint8Array(options.windowSize);
    }
  }

  get phase(): SenderPhase {
    return this.phaseNow;
  }

  get lastAcked(): number {
    return this.lastAckedIndex;
  }

  /** The last block's index, once known. */
  get finalIndex(): number | undefined {
    return this.finalIndexKnown;
  }

  /** The retransmission timeout now, ms (before backing off). */
  get retransmissionTimeout(): number {
    return this.timeoutMs;
  }

  /** The transfer begins: the OACK goes out, or the file is opened for the first window. */
  start(now: number): SenderAction {
    if (this.phaseNow === 'done') return none;
    this.silentUntil = now + this.options.silentTimeoutMs;
    if (this.phaseNow === 'optionAck') return this.sendOptionAck(now);
    return this.beginData();
  }

  /** The file is open (see the openFile action): send the first window. */
  fileOpened(file: OpenedFile): SenderAction {
    if (this.phaseNow !== 'data') return none;
    if (file.finalIndex !== undefined) this.lastBlock(file.finalIndex, file.finalLength ?? 0);
    this.pumpable = file.pumpable;
    return this.sendWindow(this.lastAckedIndex + 1, true);
  }

  /** A stream's last block was read: the one shorter than blockSize (possibly empty). */
  lastBlock(index: number, length: number): void {
    this.finalIndexKnown = index;
    this.finalLength = length;
  }

  /** An ACK of wire block number `block` from the client. */
  acknowledge(block: number, now: number): SenderAction {
    if (this.phaseNow === 'done') return none;
    this.heardFromClient = true;
    if (this.phaseNow === 'optionAck') {
      // RFC 2347: the client accepts the OACK with ACK 0.
      if (block !== 0) return none;
      const roundTrip = now - this.optionAckSentAt;
      if (this.sentAt !== undefined) this.minRoundTrip = roundTrip;
      if (this.retransmits === 0) this.sampleRoundTrip(roundTrip);
      return this.beginData();
    }
    const meaning = interpretAck(block, this.lastAckedIndex, this.highestSent);
    if (meaning.kind === 'duplicate') {
      this.duplicateAcks += 1;
      if (this.earlyAckIndex !== 0 && this.earlyAckIndex === this.lastAckedIndex && this.lastAckedIndex < this.highestSent) {
        // The client repeats an ACK we took as early: now it does say that
        // the block after it was lost. Once: the window is resent from
        // there, and further repeats are plain duplicates again.
        this.earlyAckIndex = 0;
        return this.sendWindow(this.lastAckedIndex + 1, true);
      }
      return none;
    }
    if (meaning.kind === 'outOfWindow') return none;
    const index = meaning.index;
    this.lastAckedIndex = index;
    this.tries = 0;
    this.earlyAckIndex = 0;
    if (index === this.finalIndexKnown) return this.end('complete');
    if (this.sentAt !== undefined && index < this.highestSent && this.isEarly(index, now)) {
      // Take the progress and keep the window full, sending only blocks
      // never sent; the ones in flight are not sent again.
      this.earlyAcks += 1;
      this.earlyAckIndex = index;
      return this.sendWindow(this.highestSent + 1, true);
    }
    if (index === this.highestSent && !this.highestSentAgain) this.sampleRoundTrip(now - this.highestSentAt);
    if (this.sentAt !== undefined && index === this.highestSent) {
      this.minRoundTrip = Math.min(this.minRoundTrip, now - this.sentAt[index % this.options.windowSize]!);
    }
    // RFC 7440 section 4: an ACK inside the window says the blocks after it
    // were lost; the next window starts right after it either way.
    return this.sendWindow(index + 1, true);
  }

  /** An ERROR from the client. */
  clientError(code: number, message: string): SenderAction {
    if (this.phaseNow === 'done') return none;
    // Only a refusal of an OACK that answered tsize counts as a size
    // probe; refusing other options is worth an info line.
    const probe = this.phaseNow === 'optionAck' && this.options.optionAckHasSize;
    return this.end(probe ? 'probe' : 'clientError', `client sent error ${code}: ${message}`);
  }

  /** Blocks first..first+count-1 were handed to the socket, `segmented` of them in runs of one system call each. */
  blocksSent(first: number, count: number, segmented: number, now: number): void {
    this.segmentedBlocks += segmented;
    const windowSize = this.options.windowSize;
    for (let index = first; index < first + count; index += 1) {
      if (index <= this.highestSent) this.retransmits += 1;
      if (this.sentAt !== undefined) {
        const slot = index % windowSize;
        this.sentAt[slot] = now;
        this.burstOf![slot] = this.burst;
        // Only the first block of a burst counts as an old block the client may answer at once.
        this.resent![slot] = index <= this.highestSent && index === this.burstStart ? 1 : 0;
      }
      if (index > this.highestSent) {
        this.highestSent = index;
        this.highestSentAt = now;
        this.highestSentAgain = false;
      } else if (index === this.highestSent) {
        this.highestSentAgain = true;
      }
    }
  }

  /** The blocks of a sendBlocks action are out: wait for the ACK. */
  windowSent(now: number): WaitAction {
    return this.wait(now);
  }

  /** The pump took the transfer (see the startPump action): it answers ACKs until pumpStopped(). */
  pumpStarted(now: number): void {
    const from = this.pumpRequestedFrom;
    this.pumpedFrom = from;
    // The pump keeps its own timer: any wait armed before is over.
    this.timerGeneration += 1;
    this.highestSent = from;
    this.highestSentAt = now;
    this.highestSentAgain = false;
  }

  /** The pump could not take the transfer now (the block is not in memory): send as usual. */
  pumpWouldBlock(): SenderAction {
    return this.sendWindow(this.pumpRequestedFrom, false);
  }

  /** The pump handed the transfer back: take its progress, then go on from there. */
  pumpStopped(stop: PumpStop, now: number): SenderAction {
    if (this.phaseNow !== 'data') return none;
    this.pumpedBlocks += stop.highestSent - this.pumpedFrom + 1;
    this.polledAcks += stop.polledAcks;
    this.pollMisses += stop.pollMisses;
    if (stop.lastAcked > 0) this.heardFromClient = true;
    this.lastAckedIndex = stop.lastAcked;
    this.highestSent = stop.highestSent;
    this.highestSentAt = now - stop.sinceSentMs;
    this.highestSentAgain = false;
    if (this.options.adaptive && stop.roundTrip !== undefined) {
      this.roundTrip = stop.roundTrip;
      this.timeoutMs = retransmissionTimeout(this.roundTrip, this.timeoutFloor(), this.options.timeoutMs);
    }
    switch (stop.reason) {
      case 'complete':
        return this.end('complete');
      case 'packet':
        // The packet comes next; meanwhile the block in flight waits as any other.
        return this.wait(now);
      case 'timeout': {
        const { until } = this.wait(now);
        return { kind: 'waitAndExpire', until, generation: this.timerGeneration };
      }
      case 'wouldBlock':
        // Read it on the thread pool and send it the usual way.
        return resume;
      case 'readError':
        return this.end('readError', stop.detail ?? 'read failed', 'could not read the file');
    }
  }

  /** Carry on after the pump left a block to read (the resume action). */
  resume(): SenderAction {
    if (this.phaseNow !== 'data') return none;
    return this.sendWindow(this.lastAckedIndex + 1, true);
  }

  /** The timer set for a wait action fired. */
  timerFired(now: number): SenderAction {
    if (this.phaseNow === 'done') return none;
    if (now < this.deadline) {
      // An ACK moved the deadline on since the timer was set.
      this.waitAction.until = this.deadline;
      return this.waitAction;
    }
    return { kind: 'expire', generation: this.timerGeneration };
  }

  /** No ACK came in time (see the expire action): retransmit with a longer wait, or give up. */
  expire(generation: number, now: number): SenderAction {
    // An ACK handled after the timer fired but before this ran re-armed it.
    if (this.phaseNow === 'done' || generation !== this.timerGeneration) return none;
    this.tries += 1;
    if (!this.heardFromClient && now >= this.silentUntil) {
      // No ACK at all: a client that lost interest, or a stranger holding
      // transfer slots with requests it never follows up. Either way, not
      // worth the full retransmission schedule (about 30 s by default).
      const detail = `no acknowledgement at all within ${this.options.silentTimeoutMs} ms (${this.tries - 1} retransmissions)`;
      return this.end('timeout', detail, 'timed out');
    }
    if (this.tries > this.options.retries && this.waited >= this.patienceMs) {
      return this.end('timeout', `no acknowledgement after ${this.tries - 1} retransmissions`, 'timed out');
    }
    if (this.phaseNow === 'optionAck') {
      this.retransmits += 1;
      return this.sendOptionAck(now);
    }
    return this.sendWindow(this.lastAckedIndex + 1, true);
  }

  /**
   * The transfer ends: the finish action, with ERROR 0 carrying
   * `errorMessage` when given. Also how the caller ends it for reasons of
   * its own (shutdown, a read that failed). Nothing when it has ended
   * already.
   */
  end(outcome: TransferOutcome, detail?: string, errorMessage?: string): SenderAction {
    if (this.phaseNow === 'done') return none;
    this.phaseNow = 'done';
    return {
      kind: 'finish',
      outcome,
      ...(detail !== undefined ? { detail } : {}),
      ...(errorMessage !== undefined ? { errorMessage } : {}),
    };
  }

  counts(): SenderCounts {
    return {
      bytes: this.bytesThrough(this.lastAckedIndex),
      blocks: this.lastAckedIndex,
      retransmits: this.retransmits,
      duplicateAcks: this.duplicateAcks,
      earlyAcks: this.earlyAcks,
      pumpedBlocks: this.pumpedBlocks,
      segmentedBlocks: this.segmentedBlocks,
      polledAcks: this.polledAcks,
      pollMisses: this.pollMisses,
    };
  }

  private beginData(): SenderAction {
    this.phaseNow = 'data';
    this.tries = 0;
    return openFile;
  }

  private sendOptionAck(now: number): SenderAction {
    this.optionAckSentAt = now;
    const { until } = this.wait(now);
    return { kind: 'sendOptionAck', until };
  }

  /**
   * Send blocks from .. lastAcked+windowSize (or to the last block), then
   * wait. At windowsize 1 from a file, with nothing to resend, the steady
   * part of the transfer goes to the socket's pump when it can take it.
   */
  private sendWindow(from: number, pumpAllowed: boolean): SenderAction {
    const { windowSize } = this.options;
    const finalIndex = this.finalIndexKnown;
    if (pumpAllowed && this.pumpable && windowSize === 1 && finalIndex !== undefined && from > this.highestSent && this.tries === 0) {
      this.pumpRequestedFrom = from;
      const request: PumpRequest = { from, finalIndex, timeoutMs: this.timeoutMs };
      if (this.options.adaptive) request.adaptive = { estimate: this.roundTrip, minMs: this.timeoutFloor(), maxMs: this.options.timeoutMs };
      return { kind: 'startPump', request };
    }
    this.burst += 1;
    this.burstStart = from;
    const end = this.lastAckedIndex + windowSize;
    this.sendAction.from = from;
    this.sendAction.to = finalIndex !== undefined && finalIndex < end ? finalIndex : end;
    return this.sendAction;
  }

  /**
   * Wait for an ACK until now + the retransmission delay (backed off by
   * the tries so far); a client that has said nothing yet is not waited
   * for past silentUntil.
   */
  private wait(now: number): { kind: 'wait'; until: number } {
    this.timerGeneration += 1;
    let delay = retransmissionDelay(this.timeoutMs, this.tries);
    if (!this.heardFromClient) delay = Math.max(0, Math.min(delay, this.silentUntil - now));
    this.waited = this.tries === 0 ? delay : this.waited + delay;
    this.deadline = now + delay;
    this.waitAction.until = this.deadline;
    return this.waitAction;
  }

  /**
   * Whether an ACK for `index`, inside the window, may have left the client
   * before block index+1 could reach it, so that it says nothing about that
   * block being lost:
   * - index+1 went out less than a round trip ago (three quarters of the
   *   shortest seen, for jitter); or
   * - `index` was sent again as the first block of a burst, followed by
   *   index+1: a client that already held it answers the old block at once
   *   (atftp sends one ACK when old blocks arrive), while index+1 is still
   *   on its way. Restarting the window on such ACKs sent most windows
   *   twice after the first loss through a lossy link.
   */
  private isEarly(index: number, now: number): boolean {
    const windowSize = this.options.windowSize;
    const slot = index % windowSize;
    const next = (index + 1) % windowSize;
    if (now - this.sentAt![next]! < this.minRoundTrip * 0.75) return true;
    return this.resent![slot] === 1 && this.burstOf![slot] === this.burstOf![next];
  }

  private sampleRoundTrip(ms: number): void {
    if (!this.options.adaptive) return;
    this.roundTrip = sampleRoundTrip(this.roundTrip, ms);
    this.timeoutMs = retransmissionTimeout(this.roundTrip, this.timeoutFloor(), this.options.timeoutMs);
  }

  private timeoutFloor(): number {
    return Math.min(this.options.minTimeoutMs, this.options.timeoutMs);
  }

  /** File bytes in blocks 1..index: whole blocks but the last, which may be short. */
  private bytesThrough(index: number): number {
    const finalIndex = this.finalIndexKnown;
    if (finalIndex === undefined || index < finalIndex) return index * this.options.blockSize;
    return (finalIndex - 1) * this.options.blockSize + this.finalLength;
  }
}
