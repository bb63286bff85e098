import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { decodePacket, encodePacket } from '../../server/dhcp/wire/packet.js';
import { clientRequest } from './dhcp.js';

/**
 * What one stranger on the wire can throw at a rackboot server at once, run
 * inside the stranger's namespace by test/e2e/hostile.test.ts: a pool grab
 * (DHCP DISCOVER and REQUEST as 40 made-up MACs, leaving the pool room for the machine's guests), 16 TFTP transfers it never
 * acknowledges, 2000 idle HTTP connections and 200 live status pages it never
 * reads. Holds them for `holdMs`, then prints what it got as one JSON line.
 *
 * argv: server address, HTTP port, hold time (ms).
 */

const [server = '198.18.0.1', httpPortText = '8080', holdText = '30000'] = process.argv.slice(2);
const httpPort = Number(httpPortText);
const holdMs = Number(holdText);

async function poolGrab(): Promise<{ offers: number; acks: number; leaseSeconds: number[]; sendErrors: number }> {
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((resolve) => socket.bind(68, '0.0.0.0', () => resolve()));
  socket.setBroadcast(true);
  const offers = new Map<number, { mac: string; address: string; server: string }>();
  const acks: number[] = [];
  socket.on('message', (message) => {
    try {
      const reply = decodePacket(message);
      if (reply.options.messageType === 2) {
        const mac = [...reply.hardwareAddress].map((byte) => byte.toString(16).padStart(2, '0')).join(':');
        offers.set(reply.transactionId, { mac, address: reply.yourAddress, server: String(reply.options.serverIdentifier ?? server) });
      } else if (reply.options.messageType === 5) {
        acks.push(Number(reply.options.leaseSeconds ?? 0));
      }
    } catch {
      // not a DHCP reply
    }
  });
  // The wire's own broadcast address: the stranger's namespace has no default route for 255.255.255.255.
  const broadcast = server.replace(/\.\d+$/, '.255');
  let sendErrors = 0;
  const send = (packet: Buffer) =>
    new Promise<void>((resolve) =>
      socket.send(packet, 67, broadcast, (error) => {
        if (error) sendErrors++;
        resolve();
      }),
    );
  const macs = Array.from({ length: 40 }, () => `02:${[...randomBytes(5)].map((byte) => byte.toString(16).padStart(2, '0')).join(':')}`);
  for (const [index, mac] of macs.entries()) {
    await send(encodePacket(clientRequest({ mac, transactionId: 0x5a000000 + index, broadcast: true, options: { messageType: 1 } })));
    await delay(20);
  }
  await delay(2000);
  for (const [transactionId, offer] of offers) {
    await send(
      encodePacket(
        clientRequest({
          mac: offer.mac,
          transactionId,
          broadcast: true,
          options: { messageType: 3, requestedAddress: offer.address, serverIdentifier: offer.server },
        }),
      ),
    );
    await delay(20);
  }
  await delay(2000);
  socket.close();
  return { offers: offers.size, acks: acks.length, leaseSeconds: [...new Set(acks)], sendErrors };
}

/** answered: transfers the server started (it sent data); refused: requests it answered with an error. */
async function silentTftp(): Promise<{ sockets: number; answered: number; refused: number }> {
  const sockets: dgram.Socket[] = [];
  const answered = new Set<number>();
  const refused = new Set<number>();
  const request = Buffer.concat([Buffer.from([0, 1]), Buffer.from('undionly.kpxe\0octet\0')]);
  for (let i = 0; i < 16; i++) {
    const socket = dgram.createSocket('udp4');
    socket.on('message', (message) => {
      if (message.readUInt16BE(0) === 5) refused.add(i);
      else answered.add(i);
    });
    await new Promise<void>((resolve) => socket.bind(0, () => resolve()));
    socket.send(request, 69, server);
    sockets.push(socket);
  }
  await delay(holdMs);
  for (const socket of sockets) socket.close();
  return { sockets: sockets.length, answered: answered.size, refused: refused.size };
}

async function idleConnections(count: number, request?: string): Promise<{ opened: number; closedByServer: number; streaming: number }> {
  let opened = 0;
  let closedByServer = 0;
  let streaming = 0;
  const sockets: net.Socket[] = [];
  await Promise.all(
    Array.from({ length: count }, async () => {
      const socket = net.connect({ host: server, port: httpPort });
      sockets.push(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => closedByServer++);
      await new Promise<void>((resolve) => {
        socket.once('connect', () => {
          opened++;
          if (request) socket.write(request);
          resolve();
        });
        socket.once('error', () => resolve());
      });
      if (request) {
        // Read only the status line, then never again: a reader that stalls.
        socket.once('data', (chunk: Buffer) => {
          if (chunk.toString('latin1').startsWith('HTTP/1.1 200')) streaming++;
          socket.pause();
        });
      }
    }),
  );
  await delay(holdMs);
  const closed = closedByServer;
  for (const socket of sockets) socket.destroy();
  return { opened, closedByServer: closed, streaming };
}

const [dhcp, tftp, http, sse] = await Promise.all([
  poolGrab(),
  silentTftp(),
  idleConnections(2000),
  idleConnections(200, `GET /status/stream HTTP/1.1\r\nHost: ${server}\r\n\r\n`),
]);
process.stdout.write(`${JSON.stringify({ dhcp, tftp, http, sse })}\n`);
