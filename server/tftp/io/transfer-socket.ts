import type { Socket } from 'node:dgram';
import { constants } from 'node:os';
import { nativeBinding, type NativeTftpEndpoint } from '../../net/native.js';
import type { RoundTripEstimate } from '../sender/rtt.js';
import type { PumpStop } from '../sender/sender.js';

const EAGAIN = constants.errno.EAGAIN;
/** Linux takes at most 64 segments per send (UDP_MAX_SEGMENTS), and one IPv4 datagram's worth of bytes. */
const maxSegments = 64;
const maxSegmentedBytes = 65507;

/** What a transfer needs of its socket, whose port is the transfer ID. */
export interface TransferSocket {
  /** One datagram; a failed send is a lost packet (the transfer resends on its timer). */
  send(packet: Buffer, port: number, address: string): void;
  /** Datagrams in this order, as send() each; runs of them may go in one system call. Returns how many went that way. */
  sendMany(packets: Buffer[], port: number, address: string): number;
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
  /** How long to wait for an ACK before handing the transfer back, while nothing is measured or when not adaptive. */
  timeoutMs: number;
  /**
   * When set, the pump carries on RFC 6298's estimator (server/tftp/sender/rtt.ts)
   * from this estimate (undefined when nothing was measured yet), and waits
   * smoothed + 4 x variation within minMs..maxMs.
   */
  adaptive?: { estimate: RoundTripEstimate | undefined; minMs: number; maxMs: number };
}

export interface BlockPump {
  /**
   * Send block job.from and answer each in-order ACK with the next block
   * until a PumpStop; 'wouldBlock' (nothing sent) when the block is not in
   * memory. Throws when the file cannot be read.
   */
  start(job: PumpJob): 'started' | 'wouldBlock';
  /** Stop at once, without a PumpStop. */
  stop(): void;
  onStopped(listener: (stop: PumpStop) => void): void;
}

/**
 * A dgram socket, bound by the caller. With `fd`, the socket's descriptor
 * (dgram adopted it with bind({ fd })), sendMany() sends runs of packets
 * that lie one after the other in one buffer, all full-size but the last,
 * in one sendmsg(2) with UDP segmentation (see server/native/udp_segments.c):
 * a window of 44 blocks of 1468 bytes is one system call instead of 44.
 * Only while dgram has nothing queued, so the order holds; packets it
 * could not send that way go through dgram, which queues them.
 */
export function dgramTransferSocket(socket: Socket, onError: (err: Error) => void, fd?: number): TransferSocket {
  socket.on('error', onError);
  let segmenting = fd !== undefined;
  const send = (packet: Buffer, port: number, address: string): void => {
    socket.send(packet, port, address);
  };
  return {
    send,
    sendMany: (packets, port, address) => {
      let next = 0;
      let segmented = 0;
      if (segmenting && socket.getSendQueueCount() === 0) {
        const { sendSegments } = nativeBinding();
        while (next < packets.length) {
          const first = packets[next]!;
          const size = first.length;
          let end = next + 1;
          let bytes = size;
          while (end < packets.length && end - next < maxSegments) {
            const packet = packets[end]!;
            if (packets[end - 1]!.length !== size || bytes + packet.length > maxSegmentedBytes) break;
            if (packet.buffer !== first.buffer || packet.byteOffset !== first.byteOffset + bytes) break;
            bytes += packet.length;
            end += 1;
          }
          if (end - next === 1) {
            send(first, port, address);
            next = end;
            continue;
          }
          const sent = sendSegments(fd!, Buffer.from(first.buffer, first.byteOffset, bytes), size, port, address);
          if (sent < 0) {
            // No room now (EAGAIN): dgram queues the rest. Anything else: this
            // path cannot take segments (larger than the MTU, no checksum offload).
            if (sent !== -EAGAIN) segmenting = false;
            break;
          }
          segmented += end - next;
          next = end;
        }
      }
      for (; next < packets.length; next += 1) send(packets[next]!, port, address);
      return segmented;
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

  /** Bound to `address` and an ephemeral port, for one client's transfer. */
  constructor(address: string, client: { address: string; port: number }) {
    const { TftpEndpoint } = nativeBinding();
    this.endpoint = new TftpEndpoint(
      address,
      client.address,
      client.port,
      (message, from, port) => this.messageListener?.(message, { address: from, port }),
      (native) => {
        const { smoothedMs, variationMs, detail, ...progress } = native;
        const stop: PumpStop = {
          ...progress,
          reason: native.reason as PumpStop['reason'],
          roundTrip: smoothedMs >= 0 ? { smoothedMs, variationMs } : undefined,
        };
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

  sendMany(packets: Buffer[], port: number, address: string): number {
    for (const packet of packets) this.send(packet, port, address);
    return 0;
  }

  onMessage(listener: (message: Buffer, remote: { address: string; port: number }) => void): void {
    this.messageListener = listener;
  }

  /** Sends leave at once (sendto on a non-blocking socket): none is ever queued. */
  queuedSends(): number {
    return 0;
  }

  start(job: PumpJob): 'started' | 'wouldBlock' {
    const { fd, size, blockSize, from, finalIndex, adaptive } = job;
    const timeoutMs = Math.max(1, Math.round(job.timeoutMs));
    return this.endpoint.pump({
      fd,
      size,
      blockSize,
      from,
      finalIndex,
      timeoutMs,
      ...(adaptive === undefined
        ? {}
        : {
            adaptive: {
              smoothedMs: adaptive.estimate?.smoothedMs ?? -1,
              variationMs: adaptive.estimate?.variationMs ?? 0,
              minMs: Math.max(1, adaptive.minMs),
              maxMs: Math.max(1, adaptive.maxMs),
            },
          }),
    });
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
