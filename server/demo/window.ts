import { once } from 'node:events';
import { createConnection, createServer, type Socket } from 'node:net';
import type { Netns } from './netns.js';

/**
 * A window into a namespace: 127.0.0.1:PORT on this machine reaches one TCP
 * address inside `ns` (the demo's server, so a browser here can watch the
 * boot). A helper process inside the namespace listens on a Unix socket in
 * `socketPath` (a file: the one thing both sides share) and connects to the
 * target; this process listens on loopback and pipes each connection
 * through that socket. Nothing listens on the host's own interfaces.
 */
export interface NamespaceWindow {
  url: string;
  close(): Promise<void>;
}

/** The helper run inside the namespace: argv socket path, host, port. */
const inside = `
const net = require('node:net');
const [path, host, port] = process.argv.slice(1);
net.createServer((client) => {
  const target = net.connect(Number(port), host);
  client.pipe(target).pipe(client);
  client.on('error', () => target.destroy());
  target.on('error', () => client.destroy());
}).listen(path, () => process.stdout.write('listening\\n'));
`;

function pipeBoth(a: Socket, b: Socket): void {
  a.pipe(b).pipe(a);
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
}

export async function openNamespaceWindow(ns: Netns, target: { host: string; port: number }, socketPath: string, localPort = 0): Promise<NamespaceWindow> {
  const helper = ns.spawn(process.execPath, ['-e', inside, socketPath, target.host, String(target.port)]);
  let said = '';
  helper.stderr?.on('data', (chunk: Buffer) => (said += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    helper.stdout?.on('data', (chunk: Buffer) => (chunk.toString().includes('listening') ? resolve() : undefined));
    helper.once('exit', (code) => reject(new Error(`the window into ${ns.name} stopped (exit ${code}): ${said.trim() || 'no reason given'}`)));
  });
  const server = createServer((client) => pipeBoth(client, createConnection(socketPath)));
  server.listen(localPort, '127.0.0.1');
  try {
    await once(server, 'listening');
  } catch (error) {
    helper.kill();
    throw new Error(`cannot listen on 127.0.0.1:${localPort} for the window into ${ns.name}: ${(error as Error).message}`);
  }
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      helper.kill();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
