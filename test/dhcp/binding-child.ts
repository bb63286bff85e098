/**
 * Programs test/dhcp/binding.test.ts runs inside a network namespace (a Node
 * process cannot enter one). Without arguments it does nothing: the test
 * runner also loads every file under dist/test.
 *
 *   witness <json>  a plain 0.0.0.0 socket on the DHCP port, bound to no
 *                   device, as rackboot's used to be: prints one JSON line
 *                   per datagram it hears, so the test can show that the
 *                   other network's packets did reach the host.
 *   inform <json>   send one DHCPINFORM by unicast from localAddress to
 *                   serverAddress; print whether an answer came back.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { encodePacket, type DhcpPacket } from '../../server/dhcp/wire/packet.js';
import { clientRequest } from '../support/dhcp.js';
import { runChildMode } from '../support/child-main.js';

export const bindingChildScript = fileURLToPath(import.meta.url);

export interface WitnessConfig {
  port: number;
}

export interface InformConfig {
  localAddress: string;
  serverAddress: string;
  waitMs: number;
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

async function witness(config: WitnessConfig): Promise<void> {
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  socket.on('message', (message, remote) => print({ kind: 'heard', source: `${remote.address}:${remote.port}`, bytes: message.length }));
  socket.bind({ address: '0.0.0.0', port: config.port });
  await once(socket, 'listening');
  print({ kind: 'ready' });
  // Runs until the test kills it.
}

async function inform(config: InformConfig): Promise<void> {
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  socket.bind({ address: config.localAddress, port: 68 });
  await once(socket, 'listening');
  const packet: DhcpPacket = clientRequest({
    mac: '02:bb:00:00:00:09',
    transactionId: 0x5eed0001,
    clientAddress: config.localAddress,
    options: { messageType: 8 },
  });
  let answered = false;
  socket.on('message', () => (answered = true));
  await new Promise<void>((resolve, reject) => socket.send(encodePacket(packet), 67, config.serverAddress, (error) => (error ? reject(error) : resolve())));
  await new Promise((resolve) => setTimeout(resolve, config.waitMs));
  socket.close();
  print({ sent: true, answered });
}

runChildMode({ witness, inform });
