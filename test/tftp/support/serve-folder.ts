/**
 * A TFTP server in a process of its own, serving one folder: for tests and
 * benchmarks that measure the server's memory or speed apart from the
 * clients driving it.
 *
 *   node serve-folder.js ROOT ADDRESS PORT MAX_TRANSFERS MAX_PER_CLIENT
 *
 * Prints one JSON line {"port": N} once listening; stops on SIGTERM.
 */
import { silentLogger } from '../../../server/log.js';
import { fileFromDisk } from '../../../server/tftp/file.js';
import { TftpServer } from '../../../server/tftp/server.js';
import { join } from 'node:path';

const [root, address = '127.0.0.1', port = '0', maxTransfers = '64', maxPerClient = '8'] = process.argv.slice(2);
if (root === undefined) throw new Error('usage: serve-folder ROOT [ADDRESS PORT MAX_TRANSFERS MAX_PER_CLIENT]');

const server = new TftpServer({
  address,
  port: Number(port),
  maxTransfers: Number(maxTransfers),
  maxTransfersPerClient: Number(maxPerClient),
  log: silentLogger(),
  resolve: async (path) => {
    try {
      return await fileFromDisk(join(root, path));
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return undefined;
      throw err;
    }
  },
});
await server.start();
process.stdout.write(`${JSON.stringify({ port: server.port })}\n`);
process.once('SIGTERM', () => {
  void server.close().then(() => process.exit(0));
});
