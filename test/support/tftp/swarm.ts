import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { decodePacket, encodePacket } from '../../../server/tftp/wire/packet.js';

/**
 * Many TFTP reads at once from one process: one UDP socket per transfer and
 * a few lines of state each, where a client program per transfer (atftp)
 * would cost a process apiece. Each block is compared with the expected
 * content as it arrives. The client never retransmits on its own; on a gap
 * it acknowledges the last block in order once (RFC 7440 section 4) and
 * leaves the rest to the server's timeout.
 */

export interface SwarmOptions {
  address: string;
  port: number;
  file: string;
  /** The file's bytes, to check each block against. */
  expected: Buffer;
  transfers: number;
  blockSize: number;
  windowSize: number;
  /** Abort transfers still running after this long (ERROR to the server). */
  deadlineMs: number;
  /** Local addresses to spread the clients over (round robin). */
  localAddresses?: string[];
}

export interface SwarmResult {
  completed: number;
  aborted: number;
  failed: string[];
  /** Payload bytes received in order, all transfers together. */
  bytes: number;
  /** Most transfers in their data phase at the same moment. */
  peakRunning: number;
  durationMs: number;
}

export async function runSwarm(options: SwarmOptions): Promise<SwarmResult> {
  const started = performance.now();
  const result: SwarmResult = { completed: 0, aborted: 0, failed: [], bytes: 0, peakRunning: 0, durationMs: 0 };
  let running = 0;
  const transfers = Array.from({ length: options.transfers }, (_, i) => {
    const local = options.localAddresses?.[i % options.localAddresses.length] ?? options.address;
    return runOne(local);
  });

  async function runOne(local: string): Promise<void> {
    const socket: Socket = createSocket('udp4');
    socket.bind(0, local);
    await once(socket, 'listening');
    let serverPort = options.port;
    let index = 0; // blocks received in order
    let inWindow = 0;
    let gapAcked = -1;
    let inData = false;
    const send = (packet: Parameters<typeof encodePacket>[0]): void => {
      socket.send(encodePacket(packet), serverPort, options.address, () => undefined);
    };
    const done = new Promise<'complete' | 'aborted' | string>((resolve) => {
      const timer = setTimeout(() => {
        send({ kind: 'error', code: 0, message: 'deadline' });
        resolve('aborted');
      }, options.deadlineMs);
      const finish = (outcome: 'complete' | string): void => {
        clearTimeout(timer);
        resolve(outcome);
      };
      socket.on('message', (bytes, remote) => {
        let packet;
        try {
          packet = decodePacket(bytes);
        } catch (err) {
          finish(`malformed packet: ${(err as Error).message}`);
          return;
        }
        if (packet.kind === 'error') {
          finish(`server error ${packet.code}: ${packet.message}`);
          return;
        }
        if (packet.kind === 'optionAcknowledgement') {
          serverPort = remote.port;
          send({ kind: 'acknowledgement', block: 0 });
          return;
        }
        if (packet.kind !== 'data') return;
        if (!inData) {
          inData = true;
          running += 1;
          result.peakRunning = Math.max(result.peakRunning, running);
        }
        if (packet.block !== (index + 1) % 0x10000) {
          // A gap: say once where we are; the server restarts from there.
          if (gapAcked !== index) {
            gapAcked = index;
            inWindow = 0;
            send({ kind: 'acknowledgement', block: index % 0x10000 });
          }
          return;
        }
        const offset = index * options.blockSize;
        const want = options.expected.subarray(offset, offset + options.blockSize);
        if (!want.equals(packet.data)) {
          finish(`block ${index + 1} differs from the file`);
          return;
        }
        index += 1;
        result.bytes += packet.data.length;
        inWindow += 1;
        const last = packet.data.length < options.blockSize;
        if (last || inWindow === options.windowSize) {
          inWindow = 0;
          send({ kind: 'acknowledgement', block: packet.block });
        }
        if (last) finish('complete');
      });
    });
    send({
      kind: 'readRequest',
      fileName: options.file,
      mode: 'octet',
      options: [
        { name: 'blksize', value: String(options.blockSize) },
        { name: 'windowsize', value: String(options.windowSize) },
      ],
    });
    const outcome = await done;
    if (inData) running -= 1;
    if (outcome === 'complete') result.completed += 1;
    else if (outcome === 'aborted') result.aborted += 1;
    else result.failed.push(outcome);
    // Let the final ACK or ERROR leave before the socket goes.
    setTimeout(() => socket.close(), 50);
  }

  await Promise.all(transfers);
  result.durationMs = performance.now() - started;
  return result;
}
