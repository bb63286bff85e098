import dgram from 'node:dgram';
import { closeSync } from 'node:fs';
import { nativeBinding } from './native.js';

/**
 * UDP sockets that hear one network device only (SO_BINDTODEVICE).
 *
 * A DHCP server binds 0.0.0.0:67 to hear clients that have no address yet,
 * and on Linux that socket hears the broadcasts of every interface: on a
 * multi-homed host rackboot would answer on networks it was never given.
 * Node's dgram can neither set SO_BINDTODEVICE nor tell which interface a
 * datagram came in on (IP_PKTINFO), so a small addon of ours
 * (server/native, built by node-gyp at npm install) creates the socket, sets
 * the option before bind() so nothing from another device is ever queued,
 * binds it, and hands the descriptor to dgram's documented bind({ fd }).
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
   * socket.getRecvBufferSize() tells what was given (Linux doubles it).
   */
  receiveBufferBytes?: number;
}

/**
 * A udp4 dgram socket bound to address:port that receives only what arrives
 * on `device` and sends only through it. SO_REUSEADDR and SO_BROADCAST are
 * set. Linux before 5.7 wants CAP_NET_RAW for SO_BINDTODEVICE; port 67
 * needs root anyway.
 */
export function bindUdp4ToDevice(options: DeviceSocketOptions): Promise<dgram.Socket> {
  const { device, address, port, receiveBufferBytes } = options;
  return new Promise((resolve, reject) => {
    // Throws for bad arguments and failed system calls; the promise rejects.
    const fd =
      receiveBufferBytes === undefined
        ? nativeBinding().openUdp4OnDevice(device, address, port)
        : nativeBinding().openUdp4OnDevice(device, address, port, receiveBufferBytes);
    const socket = dgram.createSocket({ type: 'udp4' });
    const onError = (error: Error) => {
      socket.close();
      reject(error);
    };
    socket.once('error', onError);
    try {
      // With fd, dgram adopts the socket as it is: address and port are ignored.
      socket.bind({ fd }, () => {
        socket.off('error', onError);
        resolve(socket);
      });
    } catch (error) {
      closeSync(fd);
      reject(error);
    }
  });
}
