import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { decodePacket, encodePacket, type TftpOption, type TftpPacket } from '../../../server/tftp/wire/packet.js';

/** A datagram received by RawClient, decoded, with where it came from. */
export interface Received {
  packet: TftpPacket;
  port: number;
  bytes: Buffer;
}

/**
 * A bare UDP socket speaking TFTP one packet at a time, so tests can do
 * what real clients never do: repeat ACKs, send from a foreign port, stop
 * answering, send garbage.
 */
export class RawClient {
  private readonly inbox: Received[] = [];
  private waiter: (() => void) | undefined;

  private constructor(readonly socket: Socket) {
    socket.on('message', (bytes, remote) => {
      this.inbox.push({ packet: decodePacket(bytes), port: remote.port, bytes });
      this.waiter?.();
    });
  }

  /** A client on `address` (any of 127.0.0.0/8 reaches a server on 127.0.0.1). */
  static async open(address = '127.0.0.1'): Promise<RawClient> {
    const socket = createSocket('udp4');
    socket.bind(0, address);
    await once(socket, 'listening');
    return new RawClient(socket);
  }

  get port(): number {
    return this.socket.address().port;
  }

  sendBytes(bytes: Uint8Array, port: number): Promise<void> {
    return new Promise((resolve, reject) => this.socket.send(bytes, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
  }

  send(packet: TftpPacket, port: number): Promise<void> {
    return this.sendBytes(encodePacket(packet), port);
  }

  readRequest(port: number, fileName: string, options: TftpOption[] = [], mode = 'octet'): Promise<void> {
    return this.send({ kind: 'readRequest', fileName: Buffer.from(fileName, 'utf8').toString('latin1'), mode, options }, port);
  }

  /** The next packet, or a rejection after timeoutMs. */
  async receive(timeoutMs = 2000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    while (this.inbox.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no packet within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    return this.inbox.shift()!;
  }

  /** Everything that arrives in the next `ms` milliseconds. */
  async collect(ms: number): Promise<Received[]> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return this.inbox.splice(0);
  }

  close(): void {
    this.socket.close();
  }
}

export interface DownloadResult {
  content: Buffer;
  oack: TftpOption[] | undefined;
  /** Block numbers in the order they arrived, as on the wire. */
  blockNumbers: number[];
  /** Block numbers the client acknowledged, in order. */
  acknowledged: number[];
}

/**
 * A complete, well-behaved read with optional windowsize, for tests that
 * replay captured requests (pass the bytes) or
 * need more control than the real clients give (block size 8, windows of 64,
 * recording the block numbers).
 */
export async function download(
  serverPort: number,
  request: string | Buffer,
  options: TftpOption[] = [],
  mode = 'octet',
  /** Runs before the client acknowledges each block, while the server waits for that ACK. */
  beforeAck?: (block: number) => Promise<void>,
): Promise<DownloadResult> {
  const client = await RawClient.open();
  try {
    if (typeof request === 'string') await client.readRequest(serverPort, request, options, mode);
    else await client.sendBytes(request, serverPort);
    let blockSize = 512;
    let windowSize = 1;
    let first = await client.receive();
    let oack: TftpOption[] | undefined;
    const transferPort = first.port;
    if (first.packet.kind === 'optionAcknowledgement') {
      oack = first.packet.options;
      for (const option of oack) {
        if (option.name === 'blksize') blockSize = Number(option.value);
        if (option.name === 'windowsize') windowSize = Number(option.value);
      }
      await client.send({ kind: 'acknowledgement', block: 0 }, transferPort);
      first = await client.receive();
    }
    const chunks: Buffer[] = [];
    const blockNumbers: number[] = [];
    const acknowledged: number[] = [];
    let expected = 1;
    let inWindow = 0;
    let packet: Received | undefined = first;
    for (;;) {
      const received: Received = packet ?? (await client.receive());
      packet = undefined;
      if (received.packet.kind === 'error') throw new Error(`server error ${received.packet.code}: ${received.packet.message}`);
      if (received.packet.kind !== 'data') throw new Error(`unexpected ${received.packet.kind}`);
      if (received.packet.block !== expected % 0x10000) throw new Error(`got block ${received.packet.block}, want ${expected % 0x10000}`);
      blockNumbers.push(received.packet.block);
      chunks.push(Buffer.from(received.packet.data));
      const last = received.packet.data.length < blockSize;
      inWindow += 1;
      if (last || inWindow === windowSize) {
        await beforeAck?.(expected);
        await client.send({ kind: 'acknowledgement', block: received.packet.block }, transferPort);
        acknowledged.push(received.packet.block);
        inWindow = 0;
      }
      if (last) break;
      expected += 1;
    }
    return { content: Buffer.concat(chunks), oack, blockNumbers, acknowledged };
  } finally {
    client.close();
  }
}
