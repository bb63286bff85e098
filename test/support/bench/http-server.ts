/**
 * rackboot's HTTP server for `npm run bench:http`, alone: the real app
 * (createHttpApp, as `rackboot serve` mounts it) on one address and port,
 * without DHCP and TFTP, so the benchmark needs no interface setup beyond
 * its veth. Prints {"port": N} once listening. The e2e test of iPXE's
 * sanboot uses it too, as the server of the image.
 */
import { AssetStore } from '../../../server/assets/builds.js';
import { createHttpApp } from '../../../server/http/app.js';
import { createLogger, silentLogger } from '../../../server/log.js';

const [assets, address, port, cacheMiB, flagList] = process.argv.slice(2);
if (!assets || !address || !port) {
  process.stderr.write('usage: http-server.js ASSETS ADDRESS PORT [FILE-CACHE-MiB [FLAG,...]]  (flags: log, nosendfile)\n');
  process.exit(2);
}
const flags = new Set((flagList ?? '').split(',').filter(Boolean));
const app = createHttpApp({
  assets: new AssetStore(assets),
  lookupProfile: () => undefined,
  endpoints: { address, httpPort: Number(port) },
  // "log": one JSON line per request on stdout, after the port line (tests read them).
  log: flags.has('log') ? createLogger({ pretty: false }) : silentLogger(),
  ...(cacheMiB === undefined ? {} : { fileCacheBytes: Number(cacheMiB) * 1024 * 1024 }),
  // "nosendfile": Node writes every body (from the file cache or a read stream), as over TLS.
  sendfile: !flags.has('nosendfile'),
});
const server = app.listen(Number(port), address, () => process.stdout.write(`${JSON.stringify({ port: Number(port) })}\n`));
process.once('SIGTERM', () => server.close(() => process.exit(0)));
