import { retransmissionTimeout, sampleRoundTrip, type RoundTripEstimate } from '../sender/rtt.js';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../../log.js';
import { BlockReader } from './block-reader.js';
import { WindowBuffer } from './window-buffer.js';
import { ErrorCode } from '../wire/codes.js';
import type { TftpFile } from './file.js';
import type { NegotiatedTransfer } from '../wire/options.js';
import { describePacket, encodeDataHeader, encodePacket, tryDecodePacket, type TftpPacket } from '../wire/packet.js';
import { interpretAck, wireBlockNumber } from '../sender/window.js';
import type { PumpStop, TransferSocket } from './transfer-socket.js';

export interface TftpClient {
  address: string;
  port: number;
}

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

export interface TransferSummary {
  client: TftpClient;
  file: string;
  outcome: TransferOutcome;
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
  durationMs: number;
  /** The client's ERROR message, or what went wrong on our side. */
  detail?: string;
}

export interface ReadTransferParams {
  /** Bound to an ephemeral port: its port is this transfer's TID. */
  socket: TransferSocket;
  client: TftpClient;
  /** Normalised path, for logs. */
  file: string;
  content: TftpFile;
  netascii: boolean;
  negotiated: NegotiatedTransfer;
  timeoutMs: number;
  /** Shortest adaptive retransmission timeout (see TftpServerOptions.minTimeoutMs). */
  minTimeoutMs: number;
  retries: number;
  /**
   * How long a transfer waits for the client's first ACK (of the OACK or of
   * the first window) before giving up, however many retransmissions that
   * leaves (see TftpServerOptions.silentTransferTimeoutMs).
   */
  silentTimeoutMs: number;
  log: Logger;
  startedAt: number;
  onStarted: () => void;
  onFinished: (summary: TransferSummary) => void;
}

type Phase = 'optionAck' | 'data' | 'done';

/**
 * One read transfer: the sender side of RFC 1350 with RFC 2347 option
 * acknowledgement and RFC 7440 windows. Packets and timer expiries are
 * handled one at a time, in arrival order, on a promise chain, because
 * reading the next blocks is asynchronous.
 */
export class ReadTransfer {
  private phase: Phase;
  /** Where blocks come from: a reused window buffer for random-access content, else a stream. */
  private reader: BlockReader | undefined;
  private window: WindowBuffer | undefined;
  /** Blocks sent and not yet acknowledged, as DATA packets, by index; at most one window. */
  private readonly unacknowledged = new Map<number, Buffer>();
  private lastAcked = 0;
  private highestSent = 0;
  private finalIndex: number | undefined;
  private tries = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerGeneration = 0;
  /** When the ACK is due, and when the running timer fires (Date.now() times). */
  private deadline = 0;
  private timerDue = 0;
  private queue: Promise<void> = Promise.resolve();
  /** Work enqueued and not finished: while any is, packets wait their turn on the queue. */
  private pending = 0;
  private bytes = 0;
  private retransmits = 0;
  private duplicateAcks = 0;
  private earlyAcks = 0;
  private readonly oack: Buffer | undefined;
  private readonly blockSize: number;
  private readonly windowSize: number;
  /**
   * With windows: when each unacknowledged block was last handed to the
   * socket (performance.now()), in slot (index mod windowSize), and the
   * shortest round trip seen, to tell an ACK that reports a loss from one
   * the client sent before the blocks after it could have reached it.
   */
  private readonly sentAt: Float64Array | undefined;
  /** With windows, per slot: which burst (sendWindow call) last sent the block, and whether it opened that burst having been sent before. */
  private readonly burstOf: Uint32Array | undefined;
  private readonly resent: Uint8Array | undefined;
  private burst = 0;
  /** The last ACK taken as early (see handle()); 0 when none is pending. */
  private earlyAckIndex = 0;
  private oackSentAt = 0;
  private minRoundTrip = Infinity;
  /**
   * Adaptive retransmission timeout (RFC 1123 section 4.2.3.2 asks TFTP for
   * one), unless the client set a timeout itself (RFC 2349): the smoothed
   * round trip and its variation as in RFC 6298, in ms, measured from the
   * last block of each window (or the OACK) to its ACK, never from a block
   * sent twice (Karn). Until measured, the configured timeout.
   */
  private readonly adaptive: boolean;
  private roundTrip: RoundTripEstimate | undefined;
  private retransmissionTimeout: number;
  /** When the highest block went out, and whether it has gone out again since. */
  private highestSentAt = 0;
  private highestSentAgain = false;
  /** Waiting scheduled since the last progress, ms; past `patienceMs` (and `retries`) the transfer gives up. */
  private waited = 0;
  private readonly patienceMs: number;
  /** Whether the client has acknowledged anything yet, and until when (Date.now() time) a client that has not is waited for. */
  private heardFromClient = false;
  private silentUntil = Infinity;
  /** The socket's pump is answering ACKs (see startPump), from this block on. */
  private pumping = false;
  private pumpedFrom = 0;
  private pumpedBlocks = 0;
  private segmentedBlocks = 0;
  private polledAcks = 0;
  private pollMisses = 0;

  constructor(private readonly params: ReadTransferParams) {
    this.blockSize = params.negotiated.blockSize;
    this.windowSize = params.negotiated.windowSize;
    const acknowledged = params.negotiated.acknowledged;
    this.oack = acknowledged.length > 0 ? encodePacket({ kind: 'optionAcknowledgement', options: acknowledged }) : undefined;
    this.phase = this.oack !== undefined ? 'optionAck' : 'data';
    this.adaptive = params.negotiated.timeoutMs === undefined;
    this.retransmissionTimeout = params.timeoutMs;
    // As patient as the configured timeout's schedule, however short the measured one.
    this.patienceMs = 0;
    for (let tries = 0; tries <= params.retries; tries += 1) this.patienceMs += retransmissionDelay(params.timeoutMs, tries);
    if (this.windowSize > 1) {
      this.sentAt = new Float64Array(this.windowSize);
      this.burstOf = new Uint32Array(this.windowSize);
      this.resent = new Uint8Array(this.windowSize);
    }
    params.socket.onMessage((message, remote) => this.receive(message, remote));
    params.socket.pump?.onStopped((stop) => this.pumpStopped(stop));
  }

  /** Send the OACK, or the first window when no option was accepted. */
  start(): void {
    this.silentUntil = Date.now() + this.params.silentTimeoutMs;
    this.enqueue(async () => {
      if (this.oack !== undefined) {
        this.send(this.oack);
        this.oackSentAt = performance.now();
        this.armTimer();
      } else {
        await this.beginData();
      }
    });
  }

  /** End now, telling the client why (server shutdown). */
  abort(outcome: TransferOutcome, detail: string): void {
    if (this.phase === 'done') return;
    this.sendError(ErrorCode.notDefined, detail);
    this.finish(outcome, detail);
  }

  private receive(message: Buffer, remote: { address: string; port: number }): void {
    if (this.phase === 'done') return;
    const { client, log } = this.params;
    if (remote.address !== client.address || remote.port !== client.port) {
      // RFC 1350 section 4: a packet from a TID other than the client's gets
      // error 5 and changes nothing here. Not in reply to an ERROR, though:
      // two servers must not bounce errors at each other.
      const decoded = tryDecodePacket(message);
      log.debug({ client: clientLabel(client), from: `${remote.address}:${remote.port}` }, 'tftp packet from an unknown transfer ID');
      if (!(decoded.kind === 'packet' && decoded.packet.kind === 'error') && remote.port !== 0) {
        const reply = encodePacket({ kind: 'error', code: ErrorCode.unknownTransferId, message: 'unknown transfer ID' });
        this.params.socket.send(reply, remote.port, remote.address);
      }
      return;
    }
    if (this.pending === 0 && this.phase === 'data' && message.length === 4 && message[0] === 0 && message[1] === 4) {
      // An ACK with nothing queued before it: handle it here and now.
      let rest: Promise<void> | undefined;
      try {
        rest = this.acknowledged(message.readUInt16BE(2));
      } catch (err) {
        rest = Promise.reject(err);
      }
      if (rest !== undefined) this.enqueue(() => rest);
      return;
    }
    const decoded = tryDecodePacket(message);
    if (decoded.kind === 'malformed') {
      log.debug({ client: clientLabel(client), reason: decoded.reason, length: message.length }, 'tftp dropped malformed packet');
      return;
    }
    this.enqueue(() => this.handle(decoded.packet));
  }

  private async handle(packet: TftpPacket): Promise<void> {
    if (this.phase === 'done') return;
    if (packet.kind === 'error') {
      // Only a refusal of an OACK that answered tsize counts as a size
      // probe; refusing other options is worth an info line.
      const probe = this.phase === 'optionAck' && this.params.negotiated.acknowledged.some((option) => option.name === 'tsize');
      this.finish(probe ? 'probe' : 'clientError', `client sent error ${packet.code}: ${packet.message}`);
      return;
    }
    if (packet.kind !== 'acknowledgement') {
      this.params.log.debug({ client: clientLabel(this.params.client), packet: describePacket(packet) }, 'tftp ignored packet that is not an ACK');
      return;
    }
    this.heardFromClient = true;
    if (this.phase === 'optionAck') {
      // RFC 2347: the client accepts the OACK with ACK 0.
      if (packet.block === 0) {
        const roundTrip = performance.now() - this.oackSentAt;
        if (this.sentAt !== undefined) this.minRoundTrip = roundTrip;
        if (this.retransmits === 0) this.sampleRoundTrip(roundTrip);
        await this.beginData();
      }
      return;
    }
    await this.acknowledged(packet.block);
  }

  /**
   * An ACK in the data phase. Synchronous (undefined) when the blocks to
   * send next are at hand, which is the common case: no promise, no
   * microtask between the ACK and the next DATA.
   */
  private acknowledged(block: number): Promise<void> | undefined {
    this.heardFromClient = true;
    const meaning = interpretAck(block, this.lastAcked, this.highestSent);
    if (meaning.kind === 'duplicate') {
      this.duplicateAcks += 1;
      if (this.earlyAckIndex !== 0 && this.earlyAckIndex === this.lastAcked && this.lastAcked < this.highestSent) {
        // The client repeats an ACK we took as early: now it does say that
        // the block after it was lost. Once: the window is resent from
        // there, and further repeats are plain duplicates again.
        this.earlyAckIndex = 0;
        return this.sendWindow(this.lastAcked + 1);
      }
      return undefined;
    }
    if (meaning.kind === 'outOfWindow') return undefined;
    for (let index = this.lastAcked + 1; index <= meaning.index; index += 1) {
      const packet = this.unacknowledged.get(index);
      // A block the pump sent is not held here; its length follows from the size.
      if (packet !== undefined) this.bytes += packet.length - 4;
      else if (this.window !== undefined) this.bytes += this.fileBytesThrough(index) - this.fileBytesThrough(index - 1);
      this.unacknowledged.delete(index);
    }
    this.lastAcked = meaning.index;
    this.tries = 0;
    this.earlyAckIndex = 0;
    if (this.lastAcked === this.finalIndex) {
      this.finish('complete');
      return undefined;
    }
    this.window?.prefetch(this.lastAcked, this.sendsQueued);
    if (this.sentAt !== undefined && meaning.index < this.highestSent && this.isEarly(meaning.index)) {
      // Take the progress and keep the window full, sending only blocks
      // never sent; the ones in flight are not sent again.
      this.earlyAcks += 1;
      this.earlyAckIndex = meaning.index;
      return this.sendWindow(this.highestSent + 1);
    }
    if (meaning.index === this.highestSent && !this.highestSentAgain) this.sampleRoundTrip(performance.now() - this.highestSentAt);
    if (this.sentAt !== undefined && meaning.index === this.highestSent) {
      this.minRoundTrip = Math.min(this.minRoundTrip, performance.now() - this.sentAt[meaning.index % this.windowSize]!);
    }
    // RFC 7440 section 4: an ACK inside the window says the blocks after it
    // were lost; the next window starts right after it either way.
    return this.sendWindow(this.lastAcked + 1);
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
  private isEarly(index: number): boolean {
    const slot = index % this.windowSize;
    const next = (index + 1) % this.windowSize;
    if (performance.now() - this.sentAt![next]! < this.minRoundTrip * 0.75) return true;
    return this.resent![slot] === 1 && this.burstOf![slot] === this.burstOf![next];
  }

  private async beginData(): Promise<void> {
    this.phase = 'data';
    this.tries = 0;
    const { content, netascii } = this.params;
    try {
      if (!netascii && content.openRandomAccess !== undefined) {
        const random = await content.openRandomAccess();
        if (this.phase !== 'data') {
          random.close();
          return;
        }
        this.window = new WindowBuffer(random, content.size, this.blockSize, this.windowSize);
        this.finalIndex = this.window.finalIndex;
      } else {
        this.reader = new BlockReader(content.open(), netascii);
      }
    } catch (err) {
      this.failRead(err);
      return;
    }
    this.params.onStarted();
    await this.sendWindow();
  }

  /**
   * Send blocks from .. lastAcked+windowSize (or to the last block), then
   * wait. Synchronous while the blocks are held (window buffer, or kept for
   * resending); returns a promise only when it has to read.
   */
  private sendWindow(from = this.lastAcked + 1): Promise<void> | undefined {
    if (from > this.highestSent && this.tries === 0 && this.startPump(from)) return undefined;
    const end = this.lastAcked + this.windowSize;
    this.burst += 1;
    const window = this.window;
    const packets: Buffer[] = [];
    for (let index = from; index <= end; index += 1) {
      if (this.finalIndex !== undefined && index > this.finalIndex) break;
      // Blocks sent before are kept here: the window buffer may have moved
      // on to a new buffer since (see WindowBuffer.fill).
      let packet = this.unacknowledged.get(index);
      if (packet === undefined) {
        if (window === undefined || index > window.highestRead) {
          this.sendBlocks(packets, index - packets.length, from);
          return this.readAndSend(index, end, from);
        }
        packet = window.packet(index, wireBlockNumber(index));
        this.unacknowledged.set(index, packet);
      }
      packets.push(packet);
    }
    this.sendBlocks(packets, from, from);
    this.armTimer();
    return undefined;
  }

  /** The rest of sendWindow from block `index`, reading the blocks not read yet. */
  private async readAndSend(index: number, end: number, from: number): Promise<void> {
    const packets: Buffer[] = [];
    for (; index <= end; index += 1) {
      if (this.finalIndex !== undefined && index > this.finalIndex) break;
      let packet = this.unacknowledged.get(index);
      if (packet === undefined) {
        // What is gathered goes out before waiting for a read.
        if (this.window === undefined || index > this.window.highestRead) {
          const first = index - packets.length;
          this.sendBlocks(packets.splice(0), first, from);
        }
        try {
          packet = this.window !== undefined ? await this.windowPacket(index) : await this.streamPacket(index);
        } catch (err) {
          this.failRead(err);
          return;
        }
        if (this.phase === 'done') return;
        this.unacknowledged.set(index, packet);
        if (packet.length - 4 < this.blockSize) this.finalIndex = index;
      }
      packets.push(packet);
    }
    this.sendBlocks(packets, index - packets.length, from);
    this.armTimer();
  }

  /**
   * Send blocks first, first + 1, ... (the DATA packets given), in one
   * call to the socket, which may send runs of them in one system call.
   * A failed send is a lost packet, resent on the timer; whether bytes may
   * still be queued is asked of the socket (sendsQueued) when needed.
   */
  private sendBlocks(packets: Buffer[], first: number, burstStart: number): void {
    if (packets.length === 0) return;
    if (packets.length === 1) this.params.socket.send(packets[0]!, this.params.client.port, this.params.client.address);
    else this.segmentedBlocks += this.params.socket.sendMany(packets, this.params.client.port, this.params.client.address);
    for (let k = 0; k < packets.length; k += 1) this.noteSent(first + k, burstStart);
  }

  private noteSent(index: number, burstStart: number): void {
    if (index <= this.highestSent) this.retransmits += 1;
    if (this.sentAt !== undefined) {
      const slot = index % this.windowSize;
      this.sentAt[slot] = performance.now();
      this.burstOf![slot] = this.burst;
      // Only the first block of a burst counts as an old block the client may answer at once.
      this.resent![slot] = index <= this.highestSent && index === burstStart ? 1 : 0;
    }
    if (index > this.highestSent) {
      this.highestSent = index;
      this.highestSentAt = performance.now();
      this.highestSentAgain = false;
    } else if (index === this.highestSent) {
      this.highestSentAgain = true;
    }
  }

  /**
   * At windowsize 1 from a file, hand the steady part of the transfer to
   * the socket when it can do it (server/native/tftp_endpoint.c): it sends
   * block `from` and answers each in-order ACK with the next block, until
   * anything else happens (pumpStopped). False when it cannot take the
   * transfer now (not such a transfer, or the block is not in memory):
   * then send as usual.
   */
  private startPump(from: number): boolean {
    const pump = this.params.socket.pump;
    const fd = this.window?.fd;
    if (pump === undefined || fd === undefined || this.windowSize !== 1 || this.finalIndex === undefined) return false;
    let outcome: 'started' | 'wouldBlock';
    try {
      outcome = pump.start({
        fd,
        size: this.params.content.size,
        blockSize: this.blockSize,
        from,
        finalIndex: this.finalIndex,
        timeoutMs: this.retransmissionTimeout,
        ...(this.adaptive ? { adaptive: { estimate: this.roundTrip, minMs: this.timeoutFloor(), maxMs: this.params.timeoutMs } } : {}),
      });
    } catch (err) {
      this.failRead(err);
      return true;
    }
    if (outcome === 'wouldBlock') return false;
    this.pumping = true;
    this.pumpedFrom = from;
    this.disarmTimer();
    this.highestSent = from;
    this.highestSentAt = performance.now();
    this.highestSentAgain = false;
    return true;
  }

  /** The pump handed the transfer back: take its progress, then go on from there. */
  private pumpStopped(stop: PumpStop): void {
    this.pumping = false;
    if (this.phase !== 'data') return;
    this.pumpedBlocks += stop.highestSent - this.pumpedFrom + 1;
    this.polledAcks += stop.polledAcks;
    this.pollMisses += stop.pollMisses;
    if (stop.lastAcked > 0) this.heardFromClient = true;
    if (stop.lastAcked > this.lastAcked) this.bytes += this.fileBytesThrough(stop.lastAcked) - this.fileBytesThrough(this.lastAcked);
    this.lastAcked = stop.lastAcked;
    this.highestSent = stop.highestSent;
    this.highestSentAt = performance.now() - stop.sinceSentMs;
    this.highestSentAgain = false;
    this.unacknowledged.clear();
    if (this.adaptive && stop.roundTrip !== undefined) {
      this.roundTrip = stop.roundTrip;
      this.retransmissionTimeout = retransmissionTimeout(this.roundTrip, this.timeoutFloor(), this.params.timeoutMs);
    }
    switch (stop.reason) {
      case 'complete':
        this.finish('complete');
        return;
      case 'packet':
        // The packet comes next, to receive(); meanwhile the block in flight waits as any other.
        this.armTimer();
        return;
      case 'timeout': {
        this.armTimer();
        const generation = this.timerGeneration;
        this.enqueue(() => this.expire(generation));
        return;
      }
      case 'wouldBlock':
        // Read it on the thread pool and send it the usual way.
        this.enqueue(async () => {
          if (this.phase === 'data') await this.sendWindow(this.lastAcked + 1);
        });
        return;
      case 'readError':
        this.failRead(new Error(stop.detail ?? 'read failed'));
        return;
    }
  }

  private sampleRoundTrip(ms: number): void {
    if (!this.adaptive) return;
    this.roundTrip = sampleRoundTrip(this.roundTrip, ms);
    this.retransmissionTimeout = retransmissionTimeout(this.roundTrip, this.timeoutFloor(), this.params.timeoutMs);
  }

  /** Bytes of a file's blocks 1..index (the last block may be short). */
  private fileBytesThrough(index: number): number {
    return Math.min(this.params.content.size, Math.max(0, index) * this.blockSize);
  }

  private timeoutFloor(): number {
    return Math.min(this.params.minTimeoutMs, this.params.timeoutMs);
  }

  /** Whether the socket still holds sends not handed to the kernel: they may point into the window buffer. */
  private readonly sendsQueued = (): boolean => this.params.socket.queuedSends() > 0;

  /** Block `index` from the window buffer, as a DATA packet; when it is new, read it and as many after it as the buffer has room for. */
  private async windowPacket(index: number): Promise<Buffer> {
    const window = this.window!;
    if (index > window.highestRead) await window.fill(index, this.lastAcked + window.capacity, this.sendsQueued());
    return window.packet(index, wireBlockNumber(index));
  }

  /** The next block of a stream (netascii, content in memory), as a DATA packet of its own. */
  private async streamPacket(index: number): Promise<Buffer> {
    const block = await this.reader!.read(this.blockSize);
    return Buffer.concat([encodeDataHeader(wireBlockNumber(index)), block]);
  }

  /**
   * Wait for an ACK until now + the retransmission delay. One timer per
   * transfer that checks the deadline when it fires, rather than a new
   * timer per packet: at windowsize 1 that was one setTimeout and one
   * clearTimeout per block.
   */
  private armTimer(): void {
    this.timerGeneration += 1;
    const now = Date.now();
    let delay = retransmissionDelay(this.retransmissionTimeout, this.tries);
    // A client that has said nothing yet is not waited for past silentUntil.
    if (!this.heardFromClient) delay = Math.max(0, Math.min(delay, this.silentUntil - now));
    this.waited = this.tries === 0 ? delay : this.waited + delay;
    this.deadline = now + delay;
    if (this.timer !== undefined && this.timerDue <= this.deadline) return;
    clearTimeout(this.timer);
    this.timerDue = this.deadline;
    this.timer = setTimeout(this.onTimer, this.deadline - now);
  }

  private disarmTimer(): void {
    this.timerGeneration += 1;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    if (this.phase === 'done') return;
    const now = Date.now();
    if (now < this.deadline) {
      this.timerDue = this.deadline;
      this.timer = setTimeout(this.onTimer, this.deadline - now);
      return;
    }
    const generation = this.timerGeneration;
    this.enqueue(() => this.expire(generation));
  };

  private async expire(generation: number): Promise<void> {
    // An ACK handled after the timer fired but before this ran re-armed it.
    if (this.phase === 'done' || generation !== this.timerGeneration) return;
    this.tries += 1;
    if (!this.heardFromClient && Date.now() >= this.silentUntil) {
      // No ACK at all: a client that lost interest, or a stranger holding
      // transfer slots with requests it never follows up. Either way, not
      // worth the full retransmission schedule (about 30 s by default).
      const detail = `no acknowledgement at all within ${this.params.silentTimeoutMs} ms (${this.tries - 1} retransmissions)`;
      this.sendError(ErrorCode.notDefined, 'timed out');
      this.finish('timeout', detail);
      return;
    }
    if (this.tries > this.params.retries && this.waited >= this.patienceMs) {
      const detail = `no acknowledgement after ${this.tries - 1} retransmissions`;
      this.sendError(ErrorCode.notDefined, 'timed out');
      this.finish('timeout', detail);
      return;
    }
    if (this.phase === 'optionAck') {
      this.retransmits += 1;
      this.send(this.oack!);
      this.oackSentAt = performance.now();
      this.armTimer();
      return;
    }
    await this.sendWindow();
  }

  private failRead(err: unknown): void {
    const detail = err instanceof Error ? err.message : String(err);
    this.sendError(ErrorCode.notDefined, 'could not read the file');
    this.finish('readError', detail);
  }

  private send(packet: Buffer): void {
    this.params.socket.send(packet, this.params.client.port, this.params.client.address);
  }

  private sendError(code: number, message: string): void {
    this.send(encodePacket({ kind: 'error', code, message }));
  }

  private enqueue(work: () => Promise<void>): void {
    this.pending += 1;
    this.queue = this.queue
      .then(work)
      .catch((err: unknown) => {
        this.params.log.error({ client: clientLabel(this.params.client), err }, 'tftp transfer failed unexpectedly');
        this.abort('readError', 'internal error');
      })
      .then(() => {
        this.pending -= 1;
      });
  }

  private finish(outcome: TransferOutcome, detail?: string): void {
    if (this.phase === 'done') return;
    this.phase = 'done';
    clearTimeout(this.timer);
    if (this.pumping) this.params.socket.pump?.stop();
    this.pumping = false;
    this.reader?.close();
    this.window?.close();
    this.unacknowledged.clear();
    // Close after pending sends (the final ERROR) have gone out.
    setImmediate(() => {
      try {
        this.params.socket.close();
      } catch {
        /* already closed */
      }
    });
    const summary: TransferSummary = {
      client: this.params.client,
      file: this.params.file,
      outcome,
      bytes: this.bytes,
      blocks: this.lastAcked,
      retransmits: this.retransmits,
      duplicateAcks: this.duplicateAcks,
      earlyAcks: this.earlyAcks,
      pumpedBlocks: this.pumpedBlocks,
      segmentedBlocks: this.segmentedBlocks,
      polledAcks: this.polledAcks,
      pollMisses: this.pollMisses,
      durationMs: Date.now() - this.params.startedAt,
    };
    if (detail !== undefined) summary.detail = detail;
    this.params.onFinished(summary);
  }
}

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

export function clientLabel(client: TftpClient): string {
  return client.address.includes(':') ? `[${client.address}]:${client.port}` : `${client.address}:${client.port}`;
}
