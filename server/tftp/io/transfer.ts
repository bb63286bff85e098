import { performance } from 'node:perf_hooks';
import type { Logger } from '../../log.js';
import { BlockReader } from './block-reader.js';
import { WindowBuffer } from './window-buffer.js';
import { ErrorCode } from '../wire/codes.js';
import type { TftpFile } from './file.js';
import type { NegotiatedTransfer } from '../wire/options.js';
import { describePacket, encodeDataHeader, encodePacket, tryDecodePacket, type TftpPacket } from '../wire/packet.js';
import { wireBlockNumber } from '../sender/window.js';
import { Sender, type PumpStop, type SenderAction, type SenderCounts, type TransferOutcome } from '../sender/sender.js';
import type { TransferSocket } from './transfer-socket.js';

export interface TftpClient {
  address: string;
  port: number;
}

/** What a finished transfer reports: the sender's counts, and who, what and how it ended. */
export interface TransferSummary extends SenderCounts {
  client: TftpClient;
  file: string;
  outcome: TransferOutcome;
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

/**
 * One read transfer: carries out what its Sender (server/tftp/sender/sender.ts)
 * decides, which holds the protocol's rules (RFC 1350 with RFC 2347 option
 * acknowledgement and RFC 7440 windows). This side owns the socket, the
 * file's blocks, the timer and the socket's pump. Packets and timer
 * expiries are handled one at a time, in arrival order, on a promise
 * chain, because reading the next blocks is asynchronous.
 */
export class ReadTransfer {
  private readonly sender: Sender;
  /** Where blocks come from: a reused window buffer for random-access content, else a stream. */
  private reader: BlockReader | undefined;
  private window: WindowBuffer | undefined;
  /** Blocks sent and not yet acknowledged, as DATA packets, by index; at most one window. */
  private readonly unacknowledged = new Map<number, Buffer>();
  /** Blocks 1..this are dropped from `unacknowledged`. */
  private released = 0;
  private timer: NodeJS.Timeout | undefined;
  /** When the running timer fires (performance.now() time). */
  private timerDue = 0;
  private queue: Promise<void> = Promise.resolve();
  /** Work enqueued and not finished: while any is, packets wait their turn on the queue. */
  private pending = 0;
  private readonly oack: Buffer | undefined;
  private readonly blockSize: number;
  /** The socket's pump is answering ACKs (see startPump). */
  private pumping = false;
  private finished = false;

  constructor(private readonly params: ReadTransferParams) {
    const { negotiated } = params;
    this.blockSize = negotiated.blockSize;
    const acknowledged = negotiated.acknowledged;
    this.oack = acknowledged.length > 0 ? encodePacket({ kind: 'optionAcknowledgement', options: acknowledged }) : undefined;
    this.sender = new Sender({
      blockSize: negotiated.blockSize,
      windowSize: negotiated.windowSize,
      timeoutMs: params.timeoutMs,
      minTimeoutMs: params.minTimeoutMs,
      retries: params.retries,
      silentTimeoutMs: params.silentTimeoutMs,
      adaptive: negotiated.timeoutMs === undefined,
      optionAck: this.oack !== undefined,
      optionAckHasSize: acknowledged.some((option) => option.name === 'tsize'),
    });
    params.socket.onMessage((message, remote) => this.receive(message, remote));
    params.socket.pump?.onStopped((stop) => this.pumpStopped(stop));
  }

  /** Send the OACK, or the first window when no option was accepted. */
  start(): void {
    this.enqueue(() => this.carryOut(this.sender.start(performance.now())));
  }

  /** End now, telling the client why (server shutdown). */
  abort(outcome: TransferOutcome, detail: string): void {
    void this.carryOut(this.sender.end(outcome, detail, detail));
  }

  private receive(message: Buffer, remote: { address: string; port: number }): void {
    if (this.sender.phase === 'done') return;
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
    if (this.pending === 0 && this.sender.phase === 'data' && message.length === 4 && message[0] === 0 && message[1] === 4) {
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
    if (this.sender.phase === 'done') return;
    if (packet.kind === 'error') {
      await this.carryOut(this.sender.clientError(packet.code, packet.message));
      return;
    }
    if (packet.kind !== 'acknowledgement') {
      this.params.log.debug({ client: clientLabel(this.params.client), packet: describePacket(packet) }, 'tftp ignored packet that is not an ACK');
      return;
    }
    await this.acknowledged(packet.block);
  }

  /**
   * An ACK. Synchronous (undefined) when the blocks to send next are at
   * hand, which is the common case: no promise, no microtask between the
   * ACK and the next DATA.
   */
  private acknowledged(block: number): Promise<void> | undefined {
    const action = this.sender.acknowledge(block, performance.now());
    const lastAcked = this.sender.lastAcked;
    if (lastAcked > this.released && this.sender.phase === 'data') {
      for (let index = this.released + 1; index <= lastAcked; index += 1) this.unacknowledged.delete(index);
      this.released = lastAcked;
      this.window?.prefetch(lastAcked, this.sendsQueued);
    }
    return this.carryOut(action);
  }

  /** Do what the sender asks; a promise only when that has to wait (a read, opening the file). */
  private carryOut(action: SenderAction): Promise<void> | undefined {
    switch (action.kind) {
      case 'none':
        return undefined;
      case 'sendOptionAck':
        this.send(this.oack!);
        this.wait(action.until);
        return undefined;
      case 'openFile':
        return this.beginData();
      case 'sendBlocks':
        return this.sendWindow(action.from, action.to);
      case 'startPump':
        return this.startPump(action);
      case 'wait':
        this.wait(action.until);
        return undefined;
      case 'expire': {
        const generation = action.generation;
        this.enqueue(() => this.expire(generation));
        return undefined;
      }
      case 'waitAndExpire': {
        const generation = action.generation;
        this.wait(action.until);
        this.enqueue(() => this.expire(generation));
        return undefined;
      }
      case 'resume':
        this.enqueue(async () => {
          await this.carryOut(this.sender.resume());
        });
        return undefined;
      case 'finish':
        try {
          if (action.errorMessage !== undefined) this.sendError(ErrorCode.notDefined, action.errorMessage);
        } finally {
          this.finish(action.outcome, action.detail);
        }
        return undefined;
    }
  }

  private async beginData(): Promise<void> {
    const { content, netascii, socket } = this.params;
    try {
      if (!netascii && content.openRandomAccess !== undefined) {
        const random = await content.openRandomAccess();
        if (this.sender.phase !== 'data') {
          random.close();
          return;
        }
        this.window = new WindowBuffer(random, content.size, this.blockSize, this.params.negotiated.windowSize);
      } else {
        this.reader = new BlockReader(content.open(), netascii);
      }
    } catch (err) {
      this.failRead(err);
      return;
    }
    this.params.onStarted();
    const window = this.window;
    const opened =
      window !== undefined
        ? {
            finalIndex: window.finalIndex,
            finalLength: content.size - (window.finalIndex - 1) * this.blockSize,
            pumpable: socket.pump !== undefined && window.fd !== undefined,
          }
        : { pumpable: false };
    await this.carryOut(this.sender.fileOpened(opened));
  }

  /**
   * Send blocks from..to (fewer when a stream ends first), then wait.
   * Synchronous while the blocks are held (window buffer, or kept for
   * resending); returns a promise only when it has to read.
   */
  private sendWindow(from: number, to: number): Promise<void> | undefined {
    const window = this.window;
    const packets: Buffer[] = [];
    for (let index = from; index <= to; index += 1) {
      // Blocks sent before are kept here: the window buffer may have moved
      // on to a new buffer since (see WindowBuffer.fill).
      let packet = this.unacknowledged.get(index);
      if (packet === undefined) {
        if (window === undefined || index > window.highestRead) {
          this.sendBlocks(packets, index - packets.length);
          return this.readAndSend(index, to);
        }
        packet = window.packet(index, wireBlockNumber(index));
        this.unacknowledged.set(index, packet);
      }
      packets.push(packet);
    }
    this.sendBlocks(packets, from);
    this.wait(this.sender.windowSent(performance.now()).until);
    return undefined;
  }

  /** The rest of sendWindow from block `index`, reading the blocks not read yet. */
  private async readAndSend(index: number, to: number): Promise<void> {
    const packets: Buffer[] = [];
    for (; index <= to; index += 1) {
      const finalIndex = this.sender.finalIndex;
      if (finalIndex !== undefined && index > finalIndex) break;
      let packet = this.unacknowledged.get(index);
      if (packet === undefined) {
        // What is gathered goes out before waiting for a read.
        if (this.window === undefined || index > this.window.highestRead) {
          const first = index - packets.length;
          this.sendBlocks(packets.splice(0), first);
        }
        try {
          packet = this.window !== undefined ? await this.windowPacket(index) : await this.streamPacket(index);
        } catch (err) {
          this.failRead(err);
          return;
        }
        if (this.sender.phase === 'done') return;
        this.unacknowledged.set(index, packet);
        if (packet.length - 4 < this.blockSize) this.sender.lastBlock(index, packet.length - 4);
      }
      packets.push(packet);
    }
    this.sendBlocks(packets, index - packets.length);
    this.wait(this.sender.windowSent(performance.now()).until);
  }

  /**
   * Send blocks first, first + 1, ... (the DATA packets given), in one
   * call to the socket, which may send runs of them in one system call.
   * A failed send is a lost packet, resent on the timer; whether bytes may
   * still be queued is asked of the socket (sendsQueued) when needed.
   */
  private sendBlocks(packets: Buffer[], first: number): void {
    if (packets.length === 0) return;
    const { socket, client } = this.params;
    let segmented = 0;
    if (packets.length === 1) socket.send(packets[0]!, client.port, client.address);
    else segmented = socket.sendMany(packets, client.port, client.address);
    this.sender.blocksSent(first, packets.length, segmented, performance.now());
  }

  /**
   * At windowsize 1 from a file, hand the steady part of the transfer to
   * the socket (server/native/tftp_endpoint.c): it sends block `from` and
   * answers each in-order ACK with the next block, until anything else
   * happens (pumpStopped). When it cannot take the block now (not in
   * memory), send as usual.
   */
  private startPump(action: Extract<SenderAction, { kind: 'startPump' }>): Promise<void> | undefined {
    let outcome: 'started' | 'wouldBlock';
    try {
      outcome = this.params.socket.pump!.start({ ...action.request, fd: this.window!.fd!, size: this.params.content.size, blockSize: this.blockSize });
    } catch (err) {
      this.failRead(err);
      return undefined;
    }
    if (outcome === 'wouldBlock') return this.carryOut(this.sender.pumpWouldBlock());
    this.pumping = true;
    this.sender.pumpStarted(performance.now());
    clearTimeout(this.timer);
    this.timer = undefined;
    return undefined;
  }

  /** The pump handed the transfer back: the sender takes its progress and says how to go on. */
  private pumpStopped(stop: PumpStop): void {
    this.pumping = false;
    if (this.sender.phase !== 'data') return;
    this.unacknowledged.clear();
    const action = this.sender.pumpStopped(stop, performance.now());
    this.released = this.sender.lastAcked;
    void this.carryOut(action);
  }

  /** Whether the socket still holds sends not handed to the kernel: they may point into the window buffer. */
  private readonly sendsQueued = (): boolean => this.params.socket.queuedSends() > 0;

  /** Block `index` from the window buffer, as a DATA packet; when it is new, read it and as many after it as the buffer has room for. */
  private async windowPacket(index: number): Promise<Buffer> {
    const window = this.window!;
    if (index > window.highestRead) await window.fill(index, this.sender.lastAcked + window.capacity, this.sendsQueued());
    return window.packet(index, wireBlockNumber(index));
  }

  /** The next block of a stream (netascii, content in memory), as a DATA packet of its own. */
  private async streamPacket(index: number): Promise<Buffer> {
    const block = await this.reader!.read(this.blockSize);
    return Buffer.concat([encodeDataHeader(wireBlockNumber(index)), block]);
  }

  /**
   * Wait for an ACK until `until`. One timer per transfer that asks the
   * sender when it fires, rather than a new timer per packet: at windowsize
   * 1 that was one setTimeout and one clearTimeout per block. A timer due
   * before `until` stays; the sender tells it to wait on when it fires.
   */
  private wait(until: number): void {
    if (this.timer !== undefined && this.timerDue <= until) return;
    clearTimeout(this.timer);
    this.timerDue = until;
    this.timer = setTimeout(this.onTimer, until - performance.now());
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    void this.carryOut(this.sender.timerFired(performance.now()));
  };

  private async expire(generation: number): Promise<void> {
    await this.carryOut(this.sender.expire(generation, performance.now()));
  }

  private failRead(err: unknown): void {
    const detail = err instanceof Error ? err.message : String(err);
    void this.carryOut(this.sender.end('readError', detail, 'could not read the file'));
  }

  private send(packet: Buffer): void {
    this.params.socket.send(packet, this.params.client.port, this.params.client.address);
  }

  private sendError(code: number, message: string): void {
    this.send(encodePacket({ kind: 'error', code, message }));
  }

  private enqueue(work: () => Promise<void> | undefined): void {
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
    if (this.finished) return;
    this.finished = true;
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
      ...this.sender.counts(),
      durationMs: Date.now() - this.params.startedAt,
    };
    if (detail !== undefined) summary.detail = detail;
    this.params.onFinished(summary);
  }
}

export function clientLabel(client: TftpClient): string {
  return client.address.includes(':') ? `[${client.address}]:${client.port}` : `${client.address}:${client.port}`;
}
