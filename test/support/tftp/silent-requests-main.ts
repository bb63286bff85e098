/**
 * A stranger's silent TFTP requests, run in a network namespace: from each
 * of `addresses`, `perAddress` sockets each send one read request and then
 * never acknowledge anything. Prints one JSON line once every socket has
 * had its first answer (or `answerWaitMs` passed): how many were started
 * (an OACK or DATA came back) and the refusals by message; then, after
 * `holdMs`, a second line: how long each started transfer took to end with
 * the server's ERROR, the longest first.
 *
 *   node silent-requests-main.js '{"server":..., "port":..., "file":..., "addresses":[...], "perAddress":8, "answerWaitMs":1000, "holdMs":8000}'
 */
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { decodePacket, encodePacket } from '../../../server/tftp/wire/packet.js';

interface Config {
  server: string;
  port: number;
  file: string;
  addresses: string[];
  perAddress: number;
  answerWaitMs: number;
  holdMs: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as Config;
const sockets: Array<{ socket: Socket; sentAt: number; first?: string; endedAfterMs?: number; endMessage?: string }> = [];
for (const address of config.addresses) {
  for (let index = 0; index < config.perAddress; index++) {
    const socket = createSocket('udp4');
    socket.bind(0, address);
    await once(socket, 'listening');
    const entry: (typeof sockets)[number] = { socket, sentAt: 0 };
    socket.on('message', (bytes) => {
      const packet = decodePacket(bytes);
      const kind = packet.kind === 'error' ? `error: ${packet.message}` : packet.kind;
      entry.first ??= kind;
      if (packet.kind === 'error' && entry.first !== kind) {
        entry.endedAfterMs = Date.now() - entry.sentAt;
        entry.endMessage = packet.message;
      }
    });
    sockets.push(entry);
  }
}
for (const entry of sockets) {
  entry.sentAt = Date.now();
  entry.socket.send(encodePacket({ kind: 'readRequest', fileName: config.file, mode: 'octet', options: [] }), config.port, config.server);
}
await new Promise((resolve) => setTimeout(resolve, config.answerWaitMs));
const refused: Record<string, number> = {};
for (const entry of sockets) if (entry.first?.startsWith('error') === true) refused[entry.first] = (refused[entry.first] ?? 0) + 1;
const started = sockets.filter((entry) => entry.first !== undefined && !entry.first.startsWith('error'));
process.stdout.write(`${JSON.stringify({ started: started.length, unanswered: sockets.filter((entry) => entry.first === undefined).length, refused })}\n`);
await new Promise((resolve) => setTimeout(resolve, config.holdMs));
const ended = started
  .map((entry) => ({ afterMs: entry.endedAfterMs ?? null, message: entry.endMessage ?? null }))
  .sort((a, b) => (b.afterMs ?? Infinity) - (a.afterMs ?? Infinity));
process.stdout.write(`${JSON.stringify({ ended })}\n`);
for (const entry of sockets) entry.socket.close();
