import { closeSync } from 'node:fs';
import { getSystemErrorName } from 'node:util';
import { nativeBinding, type NativeUdpBatch } from './native.js';

/**
 * UDP sockets that hear one network device only (SO_BINDTODEVICE), read
 * and written a batch at a time.
 *
 * A DHCP server binds 0.0.0.0:67 to hear clients that have no address yet,
 * and on Linux that socket hears the broadcasts of every interface: on a
 * multi-homed host rackboot would answer on networks it was never given.
 * Node's dgram can neither set SO_BINDTODEVICE nor tell which interface a
 * datagram came in on (IP_PKTINFO), so a small addon of ours
 * (server/native, built by node-gyp at npm install) creates the socket, sets
 * the option before bind() so nothing from another device is ever queued,
 * and binds it (udp_device.c). The same addon then reads and writes it
 * (udp_batch.c): the DHCP server takes its requests a commit window at a
 * time and sends a batch's replies together, where dgram would enter
 * JavaScript for each datagram and each completed send.
 */

export interface DeviceSocketOptions {
  /** Network device, e.g. eth1. */
  device: string;
  /** Local IPv4 address to bind; 0.0.0.0 for broadcasts. */
  address: string;
  port: number;
  /**
   * The receive buffer to ask for (SO_RCVBUFFORCE, or SO_RCVBUF capped by
   * net.core.rmem_max without CAP_NET_ADMIN); the kernel's default if unset.
   * receiveBufferSize() tells what was given (Linux doubles it).
   */
  receiveBufferBytes?: number;
}

/** A datagram received; message is null for one longer than the socket keeps (8 KiB), which was dropped. */
export interface Datagram {
  message: Buffer | null;
  address: string;
  port: number;
}

/** A datagram to send. */
export interface Outgoing {
  bytes: Buffer;
  port: number;
  address: string;
}

/**
 * A udp4 socket bound to address:port that receives only what arrives on
 * `device` and sends only through it, with SO_REUSEADDR and SO_BROADCAST.
 * Linux before 5.7 wants CAP_NET_RAW for SO_BINDTODEVICE; port 67 needs
 * root anyway. Throws an Error with code, errno and syscall like Node's
 * system errors when a system call fails.
 *
 * onReadable is called once datagrams are queued; the socket is then not
 * watched until resume(), so whatever arrives meanwhile waits in the
 * kernel for the next read().
 */
export class DeviceSocket {
  private readonly batch: NativeUdpBatch;

  constructor(options: DeviceSocketOptions, onReadable: () => void) {
    const { device, address, port, receiveBufferBytes } = options;
    const binding = nativeBinding();
    const fd =
      receiveBufferBytes === undefined ? binding.openUdp4OnDevice(device, address, port) : binding.openUdp4OnDevice(device, address, port, receiveBufferBytes);
    try {
      this.batch = new binding.UdpBatch(fd, onReadable);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  /** The datagrams queued now, at most `max`. Throws for a failed recvmmsg(2). */
  read(max: number): Datagram[] {
    // Five values a datagram: the ArrayBuffer of its recvmmsg(2) call, where in it, how long (-1: too long, dropped), from where.
    const flat = this.batch.read(max);
    const datagrams: Datagram[] = [];
    for (let i = 0; i < flat.length; i += 5) {
      const length = flat[i + 2] as number;
      const message = length < 0 ? null : Buffer.from(flat[i] as ArrayBuffer, flat[i + 1] as number, length);
      datagrams.push({ message, address: flat[i + 3] as string, port: flat[i + 4] as number });
    }
    return datagrams;
  }

  /** Watch the socket again: onReadable once something is queued, at once when something still is. */
  resume(): void {
    this.batch.resume();
  }

  /** Sends all of them in one system call: for each, null once the kernel has it, or why not. */
  send(outgoing: readonly Outgoing[]): Array<NodeJS.ErrnoException | null> {
    const flat: Array<Buffer | string | number> = [];
    for (const { bytes, port, address } of outgoing) flat.push(bytes, port, address);
    const codes = this.batch.send(flat);
    return codes.map((code, i) => {
      if (code === 0) return null;
      const { port, address } = outgoing[i]!;
      const name = getSystemErrorName(-code);
      const error: NodeJS.ErrnoException = new Error(`sendmmsg ${name} ${address}:${port}`);
      error.code = name;
      error.errno = -code;
      error.syscall = 'sendmmsg';
      return error;
    });
  }

  /** SO_RCVBUF as Linux reports it: twice what was set (the other half is its bookkeeping). */
  receiveBufferSize(): number {
    return this.batch.receiveBufferSize();
  }

  /** The local port (the one the kernel chose, when bound to port 0). */
  port(): number {
    return this.batch.localPort();
  }

  /** Closes the descriptor; again is nothing. */
  close(): void {
    this.batch.close();
  }
}
