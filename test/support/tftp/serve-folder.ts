/**
 * A TFTP server in a process of its own, serving one folder: for tests and
 * benchmarks that measure the server's memory or speed apart from the
 * clients driving it.
 *
 *   node serve-folder.js ROOT ADDRESS PORT MAX_TRANSFERS MAX_PER_CLIENT [ON_LINK_CIDRS]
 *
 * With ON_LINK_CIDRS (comma-separated), transfers are also counted per MAC
 * for clients in those subnets, as `rackboot serve` counts them (the
 * kernel's neighbour table, see resolveNeighbor).
 *
 * Prints one JSON line {"port": N} once listening; stops on SIGTERM.
 */
import { silentLogger } from '../../../server/log.js';
import { fileFromDisk } from '../../../server/tftp/io/file.js';
import { TftpServer } from '../../../server/tftp/server.js';
import { join } from 'node:path';
import { Subnet } from '../../../server/net/ipv4.js';
import { NeighborTable, openNeighborResolver } from '../../../server/net/neighbors.js';

const [root, address = '127.0.0.1', port = '0', maxTransfers = '64', maxPerClient = '8', onLinkCidrs] = process.argv.slice(2);
if (root === undefined) throw new Error('usage: serve-folder ROOT [ADDRESS PORT MAX_TRANSFERS MAX_PER_CLIENT]');

let macOf: ((address: string) => Promise<string | undefined>) | undefined;
if (onLinkCidrs !== undefined) {
  const subnets = onLinkCidrs.split(',').map((cidr) => {
    const [network, prefix] = cidr.split('/');
    return new Subnet(network!, Number(prefix));
  });
  ({ macOf } = await openNeighborResolver({ table: new NeighborTable(), onLink: (candidate) => subnets.some((subnet) => subnet.contains(candidate)) }));
}

const server = new TftpServer({
  ...(macOf === undefined ? {} : { macOf }),
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
