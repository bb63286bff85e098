/**
 * A TFTP client in a process of its own that takes its time: it reads a
 * file at blksize 1468, windowsize 1, and sends each ACK DELAY_MS after
 * its block came, as a client on a slower wire would.
 *
 *   node slow-client-main.js SERVER_PORT FILE DELAY_MS
 *
 * Prints one JSON line {"bytes": N, "sha256": "..."} when the last block
 * is acknowledged; exits 1 on a TFTP error or 10 s of silence.
 */
import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';

const [port, file, delayMs] = process.argv.slice(2);
if (delayMs === undefined) throw new Error('usage: slow-client-main SERVER_PORT FILE DELAY_MS');
const blockSize = 1468;
const socket = createSocket('udp4');
const hash = createHash('sha256');
let bytes = 0;
let expected = 1;
let silence = setTimeout(() => fail('no answer for 10 s'), 10_000);

function fail(why: string): never {
  process.stderr.write(`slow client: ${why}\n`);
  process.exit(1);
}

function ack(block: number, to: { address: string; port: number }): void {
  const packet = Buffer.from([0, 4, (block >> 8) & 0xff, block & 0xff]);
  setTimeout(() => socket.send(packet, to.port, to.address), Number(delayMs));
}

socket.on('message', (message, remote) => {
  clearTimeout(silence);
  silence = setTimeout(() => fail('no answer for 10 s'), 10_000);
  const opcode = message.readUInt16BE(0);
  if (opcode === 5) fail(`error ${message.readUInt16BE(2)}: ${message.subarray(4).toString('latin1')}`);
  if (opcode === 6) {
    ack(0, remote);
    return;
  }
  if (opcode !== 3) fail(`opcode ${opcode}`);
  const block = message.readUInt16BE(2);
  if (block !== (expected & 0xffff)) {
    ack(block, remote); // a resend of one already had
    return;
  }
  const data = message.subarray(4);
  hash.update(data);
  bytes += data.length;
  expected += 1;
  ack(block, remote);
  if (data.length < blockSize) {
    clearTimeout(silence);
    process.stdout.write(`${JSON.stringify({ bytes, sha256: hash.digest('hex') })}\n`);
    setTimeout(() => process.exit(0), Number(delayMs) + 50);
  }
});

const request = Buffer.concat([Buffer.from([0, 1]), Buffer.from(`${file}\0octet\0blksize\0${blockSize}\0`, 'latin1')]);
socket.send(request, Number(port), '127.0.0.1');
