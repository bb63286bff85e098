import type { Socket } from 'node:dgram';
import { nativeBinding, type NativeTftpEndpoint } from '../net/native.js';

/** What a transfer needs of its socket, whose port is the transfer ID. */
export interface TransferSocket {
  /** One datagram; a failed send is a lost packet (the transfer resends on its timer). */
  send(packet: Buffer, port: number, address: string): void;
  onMessage(listener: (message: Buffer, remote: { address: string; port: number }) => void): void;
  /** Sends handed to the socket and not yet to the kernel: they may still point into a buffer the transfer wants to reuse. */
  queuedSends(): number;
  close(): void;
  /** Present when the socket can answer in-order ACKs itself. */
  readonly pump?: BlockPump;
}

/** What the pump sends from: an open file, as a transfer with windowsize 1 and blocks of blockSize. */
export interface PumpJob {
  fd: number;
  size: number;
  blockSize: number;
  /** The first block to send, counted from 1; every block before it is acknowledged. */
  from: number;
  finalIndex: number;
  client: { address: string; port: number };
  /** How long to wait for an ACK before handing the transfer back, while nothing is measured or when not adaptive. */
  timeoutMs: number;
  /**
   * When set, the pump carries on RFC 6298's estimator from this state
   * (both undefined when nothing was measured yet), and waits smoothed + 4 x
   * variation within minMs..maxMs.
   */
  adaptive?: { smoothedMs: number | undefined; variationMs: number; minMs: number; maxMs: number };
}

/**
 * Why a pump handed its transfer back:
 * - packet: a packet other than the expected ACK came in; it is delivered to onMessage right after;
 * - timeout: no ACK for the block in flight within timeoutMs;
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
  /** The round-trip estimator's state, with PumpJob.adaptive (undefined when nothing was measured). */
  smoothedMs: number | undefined;
  variationMs: number;
  detail?: string;
}

export interface BlockPump {
  /** Send block job.from and answer each in-order ACK with the next block until a PumpStop; 'wouldBlock' (nothing sent) when the block is not in memory. Throws when the file cannot be read. */
  start(job: PumpJob): 'started' | 'wouldBlock';
  /** Stop at once, without a PumpStop. */
  stop(): void;
  onStopped(listener: (stop: PumpStop) => void): void;
}

/** A dgram socket, bound by the caller. */
export function dgramTransferSocket(socket: Socket, onError: (err: Error) => void): TransferSocket {
  socket.on('error', onError);
  return {
    send: (packet, port, address) => {
      socket.send(packet, port, address);
    },
    onMessage: (listener) => {
      socket.on('message', listener);
    },
    queuedSends: () => socket.getSendQueueCount(),
    close: () => socket.close(),
  };
}

/**
 * A transfer socket of the native addon (server/native/tftp_endpoint.c),
 * bound to `address` and an ephemeral port, with a pump: for transfers at
 * windowsize 1 from a file, where the server's work per block is one ACK
 * received and one DATA sent, and doing that in JavaScript costs more than
 * the transfer's logic (see tftp_endpoint.c for the numbers). udp4 only.
 */
export class NativeTransferSocket implements TransferSocket, BlockPump {
  private readonly endpoint: NativeTftpEndpoint;
  private messageListener: ((message: Buffer, remote: { address: string; port: number }) => void) | undefined;
  private stopListener: ((stop: PumpStop) => void) | undefined;
  private closed = false;
  readonly pump: BlockPump = this;

  constructor(address: string) {
    const { TftpEndpoint } = nativeBinding();
    this.endpoint = new TftpEndpoint(
      address,
      (message, from, port) => this.messageListener?.(message, { address: from, port }),
      (reason, lastAcked, highestSent, sinceSentMs, smoothedMs, variationMs, detail) => {
        const stop: PumpStop = { reason: reason as PumpStop['reason'], lastAcked, highestSent, sinceSentMs, smoothedMs: smoothedMs >= 0 ? smoothedMs : undefined, variationMs };
        if (detail !== undefined) stop.detail = detail;
        this.stopListener?.(stop);
      },
    );
  }

  get port(): number {
    return this.endpoint.port();
  }

  send(packet: Buffer, port: number, address: string): void {
    if (!this.closed) this.endpoint.send(packet, port, address);
  }

  onMessage(listener: (message: Buffer, remote: { address: string; port: number }) => void): void {
    this.messageListener = listener;
  }

  /** Sends leave at once (sendto on a non-blocking socket): none is ever queued. */
  queuedSends(): number {
    return 0;
  }

  start(job: PumpJob): 'started' | 'wouldBlock' {
    const timeoutMs = Math.max(1, Math.round(job.timeoutMs));
    const adaptive = job.adaptive;
    return this.endpoint.pump(
      job.fd,
      job.size,
      job.blockSize,
      job.from,
      job.finalIndex,
      job.client.port,
      job.client.address,
      timeoutMs,
      adaptive !== undefined,
      Math.max(1, adaptive?.minMs ?? timeoutMs),
      Math.max(1, adaptive?.maxMs ?? timeoutMs),
      adaptive?.smoothedMs ?? -1,
      adaptive?.variationMs ?? 0,
    );
  }

  stop(): void {
    if (!this.closed) this.endpoint.stopPump();
  }

  onStopped(listener: (stop: PumpStop) => void): void {
    this.stopListener = listener;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.endpoint.close();
  }
}
