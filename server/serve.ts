import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { AssetStore } from './assets/builds.js';
import { hostFile, tftpHostFile, type HostSources } from './boot/host-files.js';
import { chooseBootFile, type ServerEndpoints } from './boot/resolve.js';
import { MemoryLeaseStore } from './dhcp/leases.js';
import { DhcpServer } from './dhcp/server.js';
import { SqliteLeaseStore } from './dhcp/sqlite-leases.js';
import { createHttpApp } from './http/app.js';
import type { Logger } from './log.js';
import { defaultPool, interfaceAddress, parsePool, parseRelaySubnet, parseTftpServer } from './net/interfaces.js';
import { formatProfileError } from './profiles/error.js';
import { ProfileDirectory } from './profiles/store.js';
import { fileFromBuffer, fileFromDisk } from './tftp/file.js';
import { TftpServer } from './tftp/server.js';
import { resolveTftpPath } from './boot/tftp-path.js';

export type DhcpMode = 'full' | 'proxy' | 'off';

export interface ServeOptions {
  interfaceName: string;
  address?: string;
  dhcp: DhcpMode;
  pool?: string;
  /** `--relay-subnet` values: subnets behind DHCP relays, served in full mode. */
  relaySubnets?: string[];
  router?: string;
  dns: string[];
  leaseSeconds: number;
  profiles: string;
  assets: string;
  state: string;
  httpPort: number;
  tftpPort: number;
  /** TFTP transfers at once, in all and from one client address (see TftpServer). */
  tftpMaxTransfers?: number;
  tftpMaxTransfersPerClient?: number;
  /** `--tftp-server`: the TFTP server DHCP names (siaddr, option 66) when it is not this one. */
  tftpServer?: string;
  dhcpPort: number;
  log: Logger;
}

export interface RunningServer {
  endpoints: ServerEndpoints;
  close(): Promise<void>;
}

/**
 * `rackboot serve`: DHCP, TFTP and HTTP on one interface, all answering from
 * the same profiles and the same current build.
 */
export async function serve(options: ServeOptions): Promise<RunningServer> {
  const { log } = options;
  const served = interfaceAddress(options.interfaceName, options.address);
  const tftpServer = options.tftpServer !== undefined ? parseTftpServer(options.tftpServer, options.dhcp) : undefined;
  const endpoints: ServerEndpoints = { address: served.address, httpPort: options.httpPort, ...(tftpServer ? { tftpServer } : {}) };
  await mkdir(options.state, { recursive: true });

  const profiles = await ProfileDirectory.open(options.profiles, log);
  profiles.watch();
  const assets = new AssetStore(options.assets);
  const current = await assets.current();
  if (current) log.info({ build: current.id, dir: current.dir }, 'serving build');
  else log.warn({ assets: assets.dir }, 'no build yet: machines will be told to wait (run "rackboot build")');

  const closers: Array<() => Promise<void>> = [async () => profiles.close()];
  try {
    const hosts: HostSources = {
      assets,
      lookupProfile: (mac) => profiles.lookup(mac),
      profileProblems: (mac) => profiles.problemsFor(mac).map(formatProfileError),
      endpoints,
    };
    const app = createHttpApp({ ...hosts, log });
    const http: Server = await new Promise((resolve, reject) => {
      const server = app.listen(options.httpPort, served.address, () => resolve(server));
      server.once('error', reject);
    });
    closers.push(() => new Promise((resolve) => http.close(() => resolve())));

    const tftp = new TftpServer({
      address: served.address,
      port: options.tftpPort,
      ...(options.tftpMaxTransfers !== undefined ? { maxTransfers: options.tftpMaxTransfers } : {}),
      ...(options.tftpMaxTransfersPerClient !== undefined ? { maxTransfersPerClient: options.tftpMaxTransfersPerClient } : {}),
      log,
      resolve: async (requested) => {
        // Generated per-host files first, rendered exactly as HTTP renders them.
        const generated = tftpHostFile(requested);
        if (generated) {
          const file = await hostFile(hosts, { ...generated, platform: 'bios' });
          return file.kind === 'file' ? fileFromBuffer(Buffer.from(file.body)) : undefined;
        }
        const wanted = resolveTftpPath(requested);
        if (!wanted) return undefined;
        const file = await assets.file(wanted.name, wanted.buildId);
        return file ? await fileFromDisk(file.path) : undefined;
      },
    });
    await tftp.start();
    closers.push(() => tftp.close());

    if (options.dhcp === 'full') {
      const pool = options.pool ? parsePool(options.pool, served) : defaultPool(served);
      const relayScopes = (options.relaySubnets ?? []).map(parseRelaySubnet);
      // Durable: an ACKed lease survives a crash or restart (see sqlite-leases.ts).
      const leases = SqliteLeaseStore.open(join(options.state, 'leases.sqlite'));
      closers.push(async () => leases.close());
      log.info({ file: leases.file, leases: leases.all().length }, 'dhcp: leases opened');
      const dhcp = new DhcpServer({
        interfaceName: served.interfaceName,
        serverAddress: served.address,
        prefixLength: served.prefixLength,
        pool,
        relayScopes,
        leaseSeconds: options.leaseSeconds,
        ...(options.router ? { router: options.router } : {}),
        dns: options.dns,
        leases,
        reservationFor: (mac) => profiles.reservationFor(mac),
        reservationOwner: (address) => profiles.reservationOwner(address),
        bootFile: (facts) => chooseBootFile(facts, endpoints),
        log,
        port: options.dhcpPort,
      });
      await dhcp.start();
      closers.push(() => dhcp.close());
      log.info(
        { interface: served.interfaceName, pool, relaySubnets: relayScopes.map((scope) => `${scope.subnet.toString()} ${scope.pool.start}-${scope.pool.end}`) },
        'dhcp: full server',
      );
    } else if (options.dhcp === 'proxy') {
      // proxyDHCP: the network's DHCP server gives addresses; rackboot only
      // answers network-boot clients, with the same boot choice as full mode.
      const dhcp = new DhcpServer({
        mode: 'proxy',
        interfaceName: served.interfaceName,
        serverAddress: served.address,
        prefixLength: served.prefixLength,
        leaseSeconds: options.leaseSeconds,
        dns: [],
        leases: new MemoryLeaseStore(), // stays empty: proxy mode writes no leases
        reservationFor: () => undefined,
        reservationOwner: () => undefined,
        bootFile: (facts) => chooseBootFile(facts, endpoints),
        log,
        port: options.dhcpPort,
      });
      await dhcp.start();
      closers.push(() => dhcp.close());
      log.info({ interface: served.interfaceName }, 'dhcp: proxy (boot information only, beside the network\'s DHCP server)');
    } else {
      log.info('dhcp: off (point your DHCP server at this host: see the README)');
    }
    log.info(
      { interface: served.interfaceName, address: served.address, http: options.httpPort, tftp: options.tftpPort, dhcp: options.dhcp, ...(tftpServer ? { tftpServer } : {}) },
      'rackboot is serving',
    );
  } catch (error) {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    throw error;
  }

  return {
    endpoints,
    close: async () => {
      for (const close of closers.reverse()) await close().catch((error: unknown) => log.warn({ err: error }, 'close failed'));
    },
  };
}
