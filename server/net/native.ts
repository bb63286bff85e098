import { createRequire } from 'node:module';

/**
 * rackboot's native addon (server/native, built by node-gyp at npm install):
 * the few things Node's own modules cannot do.
 */
export interface NativeBinding {
  /** A bound UDP socket's descriptor; throws an Error with code/errno/syscall like Node's. See udp_device.c. */
  openUdp4OnDevice(device: string, address: string, port: number, receiveBufferBytes?: number): number;
  /** A bound UDP socket (openUdp4OnDevice's) read and written a batch at a time; it closes the descriptor. See udp_batch.c. */
  UdpBatch: new (fd: number, onReadable: () => void) => NativeUdpBatch;
  /** A UDP socket bound to address and an ephemeral port, as a descriptor for dgram's bind({ fd }). See udp_segments.c. */
  openUdp4(address: string): number;
  /** The buffer as datagrams of segmentSize bytes (the last may be shorter) in one sendmsg; bytes sent, or -errno. See udp_segments.c. */
  sendSegments(fd: number, buffer: Buffer, segmentSize: number, port: number, address: string): number;
  /** A TFTP transfer's socket that answers windowsize-1 ACKs itself. See tftp_endpoint.c. */
  TftpEndpoint: new (
    address: string,
    clientAddress: string,
    clientPort: number,
    onMessage: (message: Buffer, address: string, port: number) => void,
    onPumpStopped: (stop: NativePumpStop) => void,
  ) => NativeTftpEndpoint;
  /** RFC 6298's estimator of tftp_endpoint.c after each sample, from `state` (smoothedMs -1 before any): for tests against server/tftp/sender/rtt.ts. */
  roundTripTimeouts(samples: number[], state: NativeRoundTrip): Array<{ smoothedMs: number; variationMs: number; timeoutMs: number }>;
  /** A user's uid and primary gid (getpwnam_r), or undefined for no such user. See privileges.c. */
  lookupUser(options: { name: string }): { uid: number; gid: number } | undefined;
  /** Every thread left with only `keep` (capability numbers); threads that block the signal used are listed. See privileges.c. */
  clearCapabilities(options: { keep: number[] }): { threads: number; unreachable: number[] };
  /**
   * Bytes offset..offset+length-1 of a file sent to a connected socket with
   * sendfile(2), without blocking the event loop; onDone once, with null or
   * an Error with code/errno/syscall like Node's, and the bytes sent. The
   * caller keeps both descriptors open until then. See send_file.c.
   */
  FileSend: {
    new (
      socketFd: number,
      fileFd: number,
      offset: number,
      length: number,
      onDone: (error: NodeJS.ErrnoException | null, bytesSent: number) => void,
    ): NativeFileSend;
    /** Check the page cache with mincore() (kernels before 6.5) even where cachestat() works: for tests of the older way. */
    checkWithMincore(on: boolean): void;
  };
}

export interface NativeUdpBatch {
  /**
   * The datagrams queued now, at most max, as [round, offset, length,
   * address, port, ...]: each recvmmsg call's datagrams are copied into one
   * ArrayBuffer (round), a datagram at offset for length bytes; length -1
   * for one over 8 KiB. Throws for a failed recvmmsg.
   */
  read(max: number): Array<ArrayBuffer | string | number>;
  /** Watch the socket again: onReadable once something is queued (at once when something still is). */
  resume(): void;
  /** [buffer, port, address, ...] in one sendmmsg: each datagram's errno, 0 for sent. */
  send(list: Array<Buffer | string | number>): number[];
  /** SO_RCVBUF as Linux reports it (twice what was set). */
  receiveBufferSize(): number;
  localPort(): number;
  close(): void;
}

export interface NativeFileSend {
  /** Stop early: onDone gets an ECANCELED error (never a second call). */
  abort(): void;
}

/** The round-trip estimator's state as the native side takes it: smoothedMs -1 before the first sample. */
export interface NativeRoundTrip {
  smoothedMs: number;
  variationMs: number;
  minMs: number;
  maxMs: number;
}

/** Why and where a pump stopped (see PumpStop in server/tftp/io/transfer-socket.ts); smoothedMs -1 when nothing was measured. */
export interface NativePumpStop {
  reason: string;
  lastAcked: number;
  highestSent: number;
  sinceSentMs: number;
  smoothedMs: number;
  variationMs: number;
  detail?: string;
  polledAcks: number;
  pollMisses: number;
}

export interface NativeTftpEndpoint {
  port(): number;
  send(packet: Buffer, port: number, address: string): void;
  pump(job: {
    fd: number;
    size: number;
    blockSize: number;
    from: number;
    finalIndex: number;
    timeoutMs: number;
    adaptive?: NativeRoundTrip;
  }): 'started' | 'wouldBlock';
  stopPump(): void;
  close(): void;
}

let binding: NativeBinding | undefined;

export function nativeBinding(): NativeBinding {
  if (binding === undefined) {
    const require = createRequire(import.meta.url);
    try {
      binding = require('rackboot-native') as NativeBinding;
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`the native addon rackboot-native is not built (run npm install; it needs g++, make and python3): ${reason}`);
    }
  }
  return binding;
}
