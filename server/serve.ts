import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adoptSharedAdminToken, loadOrCreateAdminToken, loadOrCreateSecret, type AdminToken } from './admin/token.js';
import { HostTokens } from './tokens/host-token.js';
import { decideTokenGrant, DhcpAnswers } from './tokens/grant.js';
import { BootLedger } from './tokens/use.js';
import { isIpv4, Subnet } from './net/ipv4.js';
import { AssetStore } from './assets/builds.js';
import { DEFAULT_CHANNEL, LOADER_FILES } from './assets/manifest.js';
import { hostBuild } from './core/build-choice.js';
import { buildWanted } from './core/build-choice.js';
import { PostgresRolloutStore, postgresRolloutSchemaVersion } from './rollouts/postgres-store.js';
import { Rollouts } from './rollouts/rollouts.js';
import { HostPower } from './bmc/power.js';
import type { Platform } from './core/facts.js';
import { attributeLogSource } from './logs/attribution.js';
import { PostgresLogStore, postgresLogSchemaVersion } from './logs/postgres-store.js';
import { LogReceiver } from './logs/receiver.js';
import { FlightRecorder } from './logs/recorder.js';
import { SqliteLogStore } from './logs/sqlite-store.js';
import { SqliteRolloutStore } from './rollouts/sqlite-store.js';
import { hostFile, tftpHostFile, type HostSources } from './core/host-files.js';
import { chooseBootFile, type ServerEndpoints } from './core/resolve.js';
import { DhcpServer, type DhcpServerOptions } from './dhcp/server.js';
import type { LeaseStore } from './dhcp/leases/leases.js';
import { PostgresLeaseStore, postgresLeaseSchemaVersion } from './dhcp/leases/postgres.js';
import { SqliteLeaseStore } from './dhcp/leases/sqlite.js';
import { checkDatabase, describeDatabaseUrl } from './postgres/database.js';
import { ServerMembership, serversSchemaVersion } from './postgres/membership.js';
import { loadOrCreateSharedSecrets, secretsSchemaVersion } from './postgres/secrets.js';
import { answeringServer } from './dhcp/decide/peers.js';
import { PostgresEventStore, postgresEventSchemaVersion } from './events/postgres-store.js';
import { SqliteEventStore } from './events/sqlite-store.js';
import { defaultRetention, startEventRetention, type RetentionSettings } from './events/retention.js';
import { describeRollout } from './http/admin.js';
import { changeLines, listImages } from './http/downloads.js';
import { createStatusRouter } from './http/status.js';
import { Metrics } from './metrics.js';
import { currentNeighbor, NeighborTable, openNeighborResolver } from './net/neighbors.js';
import { portHolders } from './net/port-holder.js';
import { BootObserver, observeDhcp } from './observe.js';
import { builderRecipe, packageRoot } from '../builder/recipe.js';
import { BuildPartNames, describeHost, guestNetworkOf, rackbootVersion, storageOf } from './status/hosts.js';
import { HostList, notifyingAppends, type HostListSettings } from './status/host-list.js';
import { listenHttp, type HttpLimits, type ListeningHttp } from './http/limits.js';
import { HostIsoCache, hostImageFolder } from './iso/host-iso.js';
import { LoadSampler } from './status/load.js';
import { hostsPerStage } from './status/timeline.js';
import { createHttpApp } from './http/app.js';
import { RateLimitedLog, silentLogger, type Logger } from './log.js';
import { defaultPool, interfaceAddress, type InterfaceAddress, parsePool, parseProxyRelaySubnet, parseRelaySubnet, parseTftpServer } from './net/interfaces.js';
import { formatProfileError } from './profiles/error.js';
import { formatProfileWarning, profileWarnings } from './profiles/lint.js';
import { ProfileDirectory } from './profiles/store.js';
import { DatabaseProfiles, exportProfiles, postgresProfilesSchemaVersion } from './profiles/postgres-profiles.js';
import { PostgresSlotSightings, postgresSightingsSchemaVersion } from './profiles/postgres-sightings.js';
import { SqliteSlotSightings } from './profiles/sqlite-sightings.js';
import type { RelaySlot } from './profiles/slot.js';
import { fileFromBuffer, fileFromDisk } from './tftp/io/file.js';
import { TftpServer } from './tftp/server.js';
import { resolveTftpPath } from './core/tftp-path.js';
import { lookupUser } from './privileges.js';
import { becomeServerUser } from './run-as-user.js';
import { secureStateFolder } from './state-folder.js';

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
  /** `--first-lease-time`: the lease until a client renews (default 300 s, or leaseSeconds if shorter). */
  firstLeaseSeconds?: number;
  /** `--dhcp-known-only`: answer only MACs and slots with a profile of their own. */
  dhcpKnownOnly?: boolean;
  /** `--dhcp-new-clients-per-second`: new clients given an address per second (default: no limit). */
  dhcpNewClientsPerSecond?: number;
  profiles: string;
  assets: string;
  state: string;
  /** `--database`: a PostgreSQL URL; the leases live there instead of the state folder (see dhcp/leases/postgres.ts). */
  database?: string;
  httpPort: number;
  tftpPort: number;
  /** TFTP transfers at once, in all and from one client address (see TftpServer). */
  tftpMaxTransfers?: number;
  tftpMaxTransfersPerClient?: number;
  /** `--tftp-server`: the TFTP server DHCP names (siaddr, option 66) when it is not this one. */
  tftpServer?: string;
  dhcpPort: number;
  /** How much boot timeline to keep (default: defaultRetention). */
  eventRetention?: RetentionSettings;
  /** `--user`: started as root, become this user once the sockets are bound (see run-as-user.ts). */
  user?: string;
  /** Connection caps and timeouts of the HTTP server (default: defaultHttpLimits). */
  httpLimits?: Partial<HttpLimits>;
  /** How many hosts nobody configured the host list keeps, and how long (default: defaultHostListSettings). */
  hostList?: Partial<HostListSettings>;
  /** Disk budget of the per-host image cache, bytes (default: defaultHostImageBudgetBytes). */
  hostImageCacheBytes?: number;
  /** `--syslog-port`: where hosts' syslog and netconsole lines come (default 514). */
  syslogPort?: number;
  /** Hosts' logs: bytes per host, and days kept (default 16 MiB, and the timeline's days). */
  logRetention?: { maxBytesPerHost: number; days: number };
  log: Logger;
}

/**
 * Runs the DHCP request path over made-up clients against a scratch lease
 * file before the server listens (DhcpServer.warmUp): a rack that powers
 * on together with its server otherwise meets code V8 has not compiled yet,
 * and the first second's requests wait. Leaves nothing behind; a warm-up
 * that fails costs a warning, never the start.
 */
async function warmUpDhcp(options: DhcpServerOptions, log: Logger): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'rackboot-warm-up-'));
  try {
    const scratch = SqliteLeaseStore.open(join(dir, 'leases.sqlite'));
    try {
      const { exchanges, ms } = await DhcpServer.warmUp(options, scratch, warmUpClients);
      log.info({ exchanges, ms }, 'dhcp: request path warmed up on made-up clients');
    } finally {
      scratch.close();
    }
  } catch (error) {
    log.warn({ err: error }, 'dhcp: warm-up failed; the first requests are answered more slowly');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Made-up clients of the warm-up, fewer when the pool is smaller (a pool
 * of 50 addresses never meets a storm of thousands): at 2048, a storm of
 * 4000 requests a second is answered in full from its first second, where
 * 512 were not enough. About 0.6 s on one core.
 */
const warmUpClients = 2048;

/** The lease store serve's options name: a PostgreSQL database shared with other servers, or leases.sqlite in the state folder. */
async function openLeases(options: ServeOptions, log: Logger, server: string): Promise<LeaseStore & { close(): void | Promise<void> }> {
  if (options.database === undefined) {
    const leases = SqliteLeaseStore.open(join(options.state, 'leases.sqlite'));
    log.info({ file: leases.file, leases: leases.all().length }, 'dhcp: leases opened');
    return leases;
  }
  // Until the database answers again, DHCP requests get no reply. Each
  // failed call is a problem: the first of a kind is logged at once, the
  // rest summed up every 10 s (a busy segment makes hundreds a second).
  const database = describeDatabaseUrl(options.database);
  const problems = new Map<string, RateLimitedLog>();
  const problem = (message: string, error: unknown) => {
    let summed = problems.get(message);
    if (summed === undefined) {
      summed = new RateLimitedLog((counts, last) => {
        const times = counts[message] ?? 0;
        if (times > 0) log.error({ ...last, database, times }, times > 1 ? `${message} (${times} times in 10 s)` : message);
      });
      // Kinds of problem, not occurrences: a few at most; the oldest goes past 100.
      if (problems.size >= 100) problems.delete(problems.keys().next().value!);
      problems.set(message, summed);
    }
    summed.note(message, { err: error });
  };
  const leases = await PostgresLeaseStore.open(options.database, {
    server,
    onProblem: problem,
    onRecovered: (message) => log.info({ database: describeDatabaseUrl(options.database!) }, message),
  });
  log.info({ database: leases.database, leases: leases.all().length }, 'dhcp: leases opened');
  return leases;
}

/** The host-token key and the admin token: shared through the database, else files of the state folder. */
async function openSecrets(options: ServeOptions): Promise<{ hostTokenSecret: { value: string }; token: AdminToken }> {
  if (options.database === undefined) {
    return { hostTokenSecret: await loadOrCreateSecret(options.state, 'host-token.key'), token: await loadOrCreateAdminToken(options.state) };
  }
  const [hostToken, admin] = await loadOrCreateSharedSecrets(options.database, ['host-token-key', 'admin-token']);
  return { hostTokenSecret: hostToken!, token: await adoptSharedAdminToken(options.state, admin!.value, admin!.created) };
}

export interface RunningServer {
  endpoints: ServerEndpoints;
  /**
   * Stop. With `drainMs`, first stop taking new work: live status pages are
   * closed, DHCP stops, HTTP stops accepting and TFTP stops taking requests,
   * while downloads and transfers in flight get up to `drainMs` to finish;
   * whatever is still running then is cut, and the log says what.
   */
  close(options?: { drainMs?: number }): Promise<void>;
  /** Read the profiles and the current build again (SIGHUP); says what is served now. */
  reload(): Promise<ReloadReport>;
}

export interface ReloadReport {
  profiles: number;
  problems: number;
  build: string | undefined;
}

function fullModePool(given: string | undefined, served: InterfaceAddress): { start: string; end: string } {
  if (given !== undefined) return parsePool(given, served);
  let example = '';
  try {
    const suggested = defaultPool(served);
    example = ` (for instance --pool ${suggested.start}-${suggested.end}, the upper half of ${served.address}/${served.prefixLength})`;
  } catch {
    // a subnet too small to suggest one
  }
  throw new Error(
    `--dhcp full (the default) makes rackboot this network's DHCP server: name the addresses it may hand out with --pool START-END${example}; beside the network's own DHCP server, use --dhcp proxy`,
  );
}

/** `--profiles` must name a folder that is there (it may be empty). */
async function checkProfileFolder(folder: string): Promise<void> {
  let info;
  try {
    info = await stat(folder);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(
      code === 'ENOENT'
        ? `--profiles ${folder}: no such folder (make it, or name the folder that holds the profiles)`
        : `--profiles ${folder}: cannot read it (${code ?? (error as Error).message})`,
    );
  }
  if (!info.isDirectory()) throw new Error(`--profiles ${folder}: not a folder`);
}

/**
 * Full mode: rackboot's DHCP sockets take SO_REUSEADDR (several share the
 * port, one per address), so a bind beside another DHCP server on this host
 * that does the same succeeds: say so, naming it, once they are bound.
 */
function warnAboutSharedDhcpPort(port: number, log: Logger): void {
  const others = portHolders('udp', port).filter((holder) => holder.pid !== process.pid);
  if (others.length === 0) return;
  log.warn(
    { port, holders: others },
    `another process also listens on UDP port ${port} (${others.map((holder) => `${holder.command}, pid ${holder.pid}`).join('; ')}): if it is a DHCP server, clients get answers from both; stop it, or run rackboot with --dhcp proxy beside it`,
  );
}

/** The subnets behind --relay-subnet, in either mode's form. */
function relaySubnetsOf(options: Pick<ServeOptions, 'relaySubnets' | 'dhcp'>): Subnet[] {
  return (options.relaySubnets ?? []).map((text) => (options.dhcp === 'full' ? parseRelaySubnet(text) : parseProxyRelaySubnet(text)).subnet);
}

/** Addresses no profile may take as its static address. */
function infrastructureOf(served: InterfaceAddress | undefined, router: string | undefined): Array<{ address: string; what: string }> {
  return [
    ...(served ? [{ address: served.address, what: "this server's address" }] : []),
    ...(router ? [{ address: router, what: "the router's address (--router)" }] : []),
  ];
}

export interface CheckReport {
  problems: string[];
  warnings: string[];
  /** What would be served, once there is no problem. */
  summary: string;
}

/**
 * `rackboot serve --check`: everything serve checks before it binds a
 * socket (the interface and its address, the pool, relay subnets, --user,
 * the profile folder and every profile in it), all of it reported at once;
 * nothing is bound, made or changed.
 */
export async function checkServe(options: ServeOptions): Promise<CheckReport> {
  const problems: string[] = [];
  const warnings: string[] = [];
  const attempt = <T>(step: () => T): T | undefined => {
    try {
      return step();
    } catch (error) {
      problems.push((error as Error).message);
      return undefined;
    }
  };
  const served = attempt(() => interfaceAddress(options.interfaceName, options.address));
  if (options.tftpServer !== undefined) attempt(() => parseTftpServer(options.tftpServer!, options.dhcp));
  if (options.user !== undefined) attempt(() => lookupUser(options.user!));
  const pool = served && options.dhcp === 'full' ? attempt(() => fullModePool(options.pool, served)) : undefined;
  const relaySubnets = attempt(() => relaySubnetsOf(options)) ?? [];
  let profileCount = 0;
  // With --database, the database's profiles are checked, from a copy made for the check.
  const copy = options.database === undefined ? undefined : await mkdtemp(join(tmpdir(), 'rackboot-check-profiles-'));
  try {
    if (copy !== undefined) await exportProfiles(options.database!, copy);
    const folder = copy ?? options.profiles;
    await checkProfileFolder(folder);
    const profiles = await ProfileDirectory.open(folder, silentLogger(), { infrastructure: infrastructureOf(served, options.router) });
    try {
      problems.push(...profiles.errors().map(formatProfileError));
      const subnets = served ? [new Subnet(served.address, served.prefixLength), ...relaySubnets] : relaySubnets;
      warnings.push(...profileWarnings(profiles.all(), subnets).map(formatProfileWarning));
      profileCount = profiles.fileStatuses().length;
      if (profileCount === 0) {
        warnings.push(
          copy === undefined
            ? `${options.profiles}: warning: the profile folder holds no profile: no machine will be booted until one is added`
            : 'warning: the database holds no profile: no machine will be booted until one is added (rackboot profiles import DIR)',
        );
      }
    } finally {
      profiles.close();
    }
  } catch (error) {
    problems.push((error as Error).message);
  } finally {
    if (copy !== undefined) {
      await rm(copy, { recursive: true, force: true });
      // Name the database's profiles, not the copy: "postgres://rackboot@db/site profiles/a.yaml:3:5: ...".
      const named = `${attempt(() => describeDatabaseUrl(options.database!)) ?? 'the database'} profiles/`;
      for (const list of [problems, warnings]) list.forEach((line, index) => (list[index] = line.split(`${copy}/`).join(named)));
    }
  }
  let stateIn = '';
  if (options.database !== undefined) {
    stateIn = `; state in ${attempt(() => describeDatabaseUrl(options.database!)) ?? 'no usable database'}`;
    problems.push(
      ...(await checkDatabase(options.database, {
        leases: postgresLeaseSchemaVersion,
        events: postgresEventSchemaVersion,
        sightings: postgresSightingsSchemaVersion,
        secrets: secretsSchemaVersion,
        servers: serversSchemaVersion,
        profiles: postgresProfilesSchemaVersion,
        rollouts: postgresRolloutSchemaVersion,
        logs: postgresLogSchemaVersion,
      })),
    );
  }
  const build = await new AssetStore(options.assets).current().catch(() => undefined);
  if (!build) warnings.push(`${options.assets}: warning: no build yet: machines will be told to wait (run "rackboot build")`);
  const summary = served
    ? `would serve ${served.address}/${served.prefixLength} on ${served.interfaceName}: DHCP ${options.dhcp}${pool ? ` (pool ${pool.start}-${pool.end})` : ''}, TFTP port ${options.tftpPort}, HTTP port ${options.httpPort}; ${profileCount} profile file${profileCount === 1 ? '' : 's'}; build ${build?.id ?? 'none'}${stateIn}`
    : '';
  return { problems, warnings, summary };
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
  const user = options.user === undefined ? undefined : lookupUser(options.user);
  // Full DHCP hands out addresses on a network that may have its own DHCP
  // server: the admin says which ones, never a default.
  const pool = options.dhcp === 'full' ? fullModePool(options.pool, served) : undefined;
  // With --database the profiles are the database's, served from a copy in the state folder.
  if (options.database === undefined) await checkProfileFolder(options.profiles); // before the state folder is made: a mistyped path leaves nothing behind
  const stateModes = await secureStateFolder(options.state);
  if (stateModes.tightened.length > 0) log.warn({ files: stateModes.tightened }, 'state folder: files readable by others set back to 0700/0600');
  let readProfilesAgain = async (): Promise<void> => undefined;
  const databaseProfiles =
    options.database === undefined
      ? undefined
      : await DatabaseProfiles.open(options.database, join(options.state, 'profiles'), {
          onChange: () => readProfilesAgain(),
          onProblem: (message, error) => log.error({ err: error }, message),
        });
  const profileFolder = databaseProfiles?.folder ?? options.profiles;
  if (databaseProfiles) log.info({ database: databaseProfiles.database, copy: profileFolder }, 'profiles: served from the database');

  // A profile may not claim the server's own address or the router's as its static address.
  const profiles = await ProfileDirectory.open(profileFolder, log, {
    infrastructure: infrastructureOf(served, options.router),
  });
  readProfilesAgain = async () => {
    await profiles.reload();
  };
  profiles.watch();
  // Profiles that are valid but likely wrong for this site, at start and after each change.
  const servedSubnets = [new Subnet(served.address, served.prefixLength), ...relaySubnetsOf(options)];
  let warned = new Set<string>();
  const warnAboutProfiles = () => {
    const now = new Set(profileWarnings(profiles.all(), servedSubnets).map(formatProfileWarning));
    for (const line of now) if (!warned.has(line)) log.warn({ warning: line }, 'profile warning');
    warned = now;
  };
  warnAboutProfiles();
  profiles.onChange(warnAboutProfiles);
  if (profiles.fileStatuses().length === 0) {
    log.warn(
      { profiles: profileFolder },
      'the profile folder holds no profile: no machine will be booted until one is added (a default.yaml boots every machine)',
    );
  }
  const assets = new AssetStore(options.assets);
  const current = await assets.current();
  if (current) {
    log.info({ build: current.id, dir: current.dir }, 'serving build');
    if (current.manifest.recipe !== (await builderRecipe(packageRoot()))) {
      log.warn(
        { build: current.id },
        'the current build was made by another version of the builder: its runtime may not match these profiles (run "rackboot build")',
      );
    }
  } else log.warn({ assets: assets.dir }, 'no build yet: machines will be told to wait (run "rackboot build")');

  const closers: Array<() => Promise<void>> = [async () => profiles.close()];
  if (databaseProfiles) closers.push(() => databaseProfiles.close());
  // What a draining stop waits for (see RunningServer.close), set as each starts.
  const draining: { stopFirst: Array<() => Promise<void>>; http?: ListeningHttp; tftp?: TftpServer } = { stopFirst: [] };
  try {
    // Durable: an ACKed lease survives a crash or restart (see sqlite-leases.ts),
    // in PostgreSQL the death of this server too (see postgres.ts). Opened
    // before HTTP starts, since the admin API lists and releases leases.
    const leases = options.dhcp === 'full' ? await openLeases(options, log, served.address) : undefined;
    if (leases) closers.push(async () => await leases.close());
    // With --database, the host-token key and the admin token are the database's, so every server on it honours the same tokens.
    const { hostTokenSecret, token } = await openSecrets(options);
    // Who may have a boot token (tokens/grant.ts): what rackboot's DHCP
    // answered each MAC, and the kernel's neighbour table for the served interface.
    const dhcpAnswers = new DhcpAnswers();
    /** Other DHCP servers clients took offers from (full mode), for the status page. */
    const otherDhcpServers = new Map<string, { mac: string; at: number }>();
    const neighbors = new NeighborTable();
    const servedSubnet = new Subnet(served.address, served.prefixLength);
    // Alarms go on the timeline, whose observer is made below.
    let observer: BootObserver | undefined;
    const hosts: HostSources = {
      secrets: {
        tokens: new HostTokens(Buffer.from(hostTokenSecret.value)),
        ledger: new BootLedger(),
        prove: async (mac, address) =>
          decideTokenGrant({
            mode: options.dhcp,
            mac,
            requester: address !== undefined && isIpv4(address) ? address : undefined,
            onSegment: address !== undefined && servedSubnet.contains(address),
            neighborMac: address !== undefined && isIpv4(address) ? await neighbors.currentMacOf(address, served.interfaceName) : undefined,
            dhcp: dhcpAnswers.of(mac),
            now: Date.now(),
          }),
        alarm: (mac, detail, requester) => observer?.alarm(mac, detail, requester),
        now: Date.now,
      },
      assets,
      lookupProfile: (mac, slot) => profiles.lookup(mac, slot),
      slotOf: (mac) => sightings.slotOf(mac),
      profileProblems: (mac, slot) => profiles.problemsFor(mac, slot).map(formatProfileError),
      endpoints,
    };
    if (token.created) log.info({ file: token.file }, 'admin api: token created (send it as "Authorization: Bearer <token>")');
    // The boot timeline: what runtimes and guests report (see server/events),
    // and what the DHCP, TFTP and HTTP servers see (server/observe.ts).
    const events =
      options.database === undefined
        ? SqliteEventStore.open(join(options.state, 'events.sqlite'))
        : await PostgresEventStore.open(options.database, { onProblem: (message, error) => log.warn({ err: error }, message) });
    closers.push(async () => events.close());
    // Which MAC the DHCP server saw in which slot (option 82), for slot
    // profiles; kept in the state folder, so a restart forgets no machine's
    // slot (see profiles/sqlite-sightings.ts). Opened after the leases and
    // the timeline, whose locks say best that another server holds the folder.
    const sightings =
      options.database === undefined
        ? SqliteSlotSightings.open(join(options.state, 'slots.sqlite'), {
            onWriteError: (error, mac) => log.warn({ err: error, mac }, 'slot sighting not written to the state folder; kept in memory until the next one'),
          })
        : await PostgresSlotSightings.open(options.database, {
            onWriteError: (error, mac) => log.warn({ err: error, mac }, 'slot sighting not written to the database; kept in memory until the next one'),
          });
    closers.push(async () => sightings.close());
    // Canary rollouts (see rollouts/rollouts.ts): beside the timeline in the state folder, or shared through the database.
    const rolloutStore =
      options.database === undefined ? SqliteRolloutStore.open(join(options.state, 'rollouts.sqlite')) : await PostgresRolloutStore.open(options.database);
    closers.push(async () => rolloutStore.close());
    // Hosts whose profile names a BMC: power-cycled into a network boot when a rollout's host goes silent, or by an admin.
    // The platform of each host's last boot script: hosts rackboot boots (the logs' attribution beside another DHCP
    // server), and the firmware path a BMC power-cycle asks for. Bounded: the oldest host is forgotten first.
    const bootScripts = new Map<string, Platform>();
    const power = new HostPower(
      (mac) => profiles.lookup(mac, sightings.slotOf(mac))?.bmc,
      (mac) => bootScripts.get(mac),
      log,
    );
    const rollouts = await Rollouts.open(
      rolloutStore,
      assets,
      {
        members: (channel) =>
          profiles.all().flatMap((profile) => {
            const want = buildWanted(profile);
            return typeof profile.mac === 'string' && want.kind === 'channel' && want.channel === channel ? [profile.mac] : [];
          }),
        wantDomains: (mac) => profiles.lookup(mac, sightings.slotOf(mac))?.domains.filter((domain) => domain.autostart).length ?? 0,
        mayReboot: (mac) => profiles.lookup(mac, sightings.slotOf(mac))?.boot.allowReboot !== false,
      },
      log,
      // rollout-builds.json: the builds "rackboot build --keep" must not prune.
      { state: options.state, power },
    );
    closers.push(async () => rollouts.close());
    hosts.rollouts = rollouts;
    // The flight recorder: hosts' syslog and netconsole lines, per host and boot (see logs/).
    const logStore = options.database === undefined ? SqliteLogStore.open(join(options.state, 'logs.sqlite')) : await PostgresLogStore.open(options.database);
    closers.push(async () => logStore.close());
    const logRetention = options.logRetention ?? { maxBytesPerHost: 16 * 1024 * 1024, days: (options.eventRetention ?? defaultRetention).days };
    const recorder = new FlightRecorder(logStore, log, {
      retention: { maxBytesPerHost: logRetention.maxBytesPerHost, keepMs: logRetention.days * 86_400_000 },
    });
    closers.push(async () => recorder.close());
    const sawBootScript = (mac: string, platform: Platform) => {
      bootScripts.delete(mac);
      bootScripts.set(mac, platform);
      if (bootScripts.size > 65_536) bootScripts.delete(bootScripts.keys().next().value!);
      recorder.startBoot(mac);
    };
    const stopRetention = startEventRetention(events, options.eventRetention ?? defaultRetention, log);
    closers.push(async () => stopRetention());
    const partNames = new BuildPartNames(assets);
    closers.push(async () => partNames.stop());
    // The host list is kept between reads and moved by what is appended to the timeline (see status/host-list.ts).
    const hostRows = new HostList(
      {
        describe: (mac) => describeHost(mac, events, { profiles, sightings, ...(leases ? { leases } : {}) }),
        isKnown: (mac) => profiles.hasOwnProfile(mac, sightings.slotOf(mac)) || leases?.byMac(mac)?.state === 'bound',
      },
      options.hostList,
    );
    for (const latest of events.latestByHost()) hostRows.touched(latest.mac, latest.time);
    const stopRefresh = profiles.onChange(() => hostRows.refreshAll());
    closers.push(async () => void stopRefresh());
    const timeline = notifyingAppends(events, (mac, time) => hostRows.touched(mac, time));
    const hostList = () => hostRows.list();
    const metrics = new Metrics(() => hostsPerStage(hostList()));
    const bootObserver = new BootObserver({
      timeline,
      metrics,
      neighbors,
      log,
      partNames: () => partNames.current,
      firmwareLog: (mac, text, at) => recorder.add(mac, 'ipxe', text, 6, 'ipxe', at),
    });
    observer = bootObserver;
    closers.push(() => bootObserver.close());
    const load = new LoadSampler(served.interfaceName, { log });
    load.start();
    closers.push(() => load.stop());
    const status = createStatusRouter({
      log,
      sources: {
        server: {
          address: served.address,
          interface: served.interfaceName,
          dhcp: options.dhcp,
          startedAt: new Date().toISOString(),
          version: rackbootVersion(),
        },
        hosts: () => {
          bootObserver.flush();
          return hostList();
        },
        build: async () => {
          const build = await assets.current();
          return (
            build && { id: build.id, created: build.manifest.created, files: build.manifest.files.map(({ name, size, sha256 }) => ({ name, size, sha256 })) }
          );
        },
        channels: async () => {
          const current = await assets.current();
          const named = [...(await assets.channels())];
          return [...(current === undefined ? [] : [[DEFAULT_CHANNEL, current] as const]), ...named].map(([name, build]) => ({
            name,
            build: build.id,
            created: build.manifest.created,
            changes: changeLines(build.manifest.changes),
          }));
        },
        downloads: async () =>
          (await listImages(assets)).map((image) => ({
            name: image.name,
            size: image.size,
            sha256: image.sha256,
            url: `/iso/${encodeURIComponent(image.name)}`,
            channel: image.channel,
            currentFor: image.currentFor,
            changes: image.changes,
          })),
        rollouts: () => rollouts.list().map(describeRollout),
        host: async (mac) => {
          bootObserver.flush();
          const host = hostList().find((row) => row.mac === mac);
          if (host === undefined) return undefined;
          const profile = profiles.lookup(mac, sightings.slotOf(mac));
          const next = await hostBuild(assets, profile, { mac, rollouts });
          return {
            host,
            profile,
            lease: leases?.byMac(mac),
            timeline: events.listByHost(mac, { limit: 1000 }),
            nextBuild: { id: next.build?.id ?? null, reason: next.reason },
          };
        },
        load: () => load.current(),
        // Another DHCP server seen within the last hour.
        warnings: () =>
          [...otherDhcpServers]
            .filter(([, seen]) => Date.now() - seen.at < 3600_000)
            .map(
              ([server, seen]) =>
                `Another DHCP server answers on this network: ${server} (${seen.mac} took its offer at ${new Date(seen.at).toISOString()}). Stop it, or run rackboot with --dhcp proxy beside it.`,
            ),
      },
    });
    closers.push(async () => status.close());
    draining.stopFirst.push(async () => status.close());
    // A machine's iPXE loader comes from the build it boots (its channel's, a rollout's, a pinned one), found by
    // its address (the neighbour table, as TFTP counts clients); unknown, the default channel's. Loaders are public:
    // a stranger posing as a machine gets nothing it could not fetch by its build's URL.
    const loaderBuildOf = async (mac: string | undefined): Promise<string | undefined> => {
      if (mac === undefined) return undefined;
      try {
        return (await hostBuild(assets, profiles.lookup(mac, sightings.slotOf(mac)), { mac, rollouts })).build?.id;
      } catch (error) {
        log.warn({ err: error, mac }, "loader: cannot tell the machine's build; the default channel's loader goes out");
        return undefined;
      }
    };
    // TFTP counts a client's transfers per machine: its MAC, resolved on a miss (see resolveNeighbor); syslog's attribution pokes with it too.
    const tftpClients = await openNeighborResolver({
      table: neighbors,
      onLink: (client) => servedSubnet.contains(client),
      bindAddress: served.address,
      onError: (error) => log.debug({ err: error }, 'neighbour poke failed'),
    });
    closers.push(() => tftpClients.close());
    // Whose is a report that carries no token (a syslog line, iPXE's failure report): logs/attribution.ts.
    const attributeSender = async (address: string) => {
      const onSegment = servedSubnet.contains(address);
      const mac = onSegment ? await currentNeighbor(neighbors, address, served.interfaceName, tftpClients.poke) : undefined;
      const slot = mac === undefined ? undefined : sightings.slotOf(mac);
      const profile = mac === undefined ? undefined : profiles.lookup(mac, slot);
      const lease = mac === undefined ? undefined : leases?.byMac(mac);
      return attributeLogSource({
        mode: options.dhcp,
        address,
        onSegment,
        neighborMac: mac,
        dhcpAddress: lease?.state === 'bound' && lease.address === address ? lease.address : mac === undefined ? undefined : dhcpAnswers.of(mac)?.address,
        staticAddress: profile?.network.mode === 'static' ? profile.network.address : undefined,
        known: mac !== undefined && (profiles.hasOwnProfile(mac, slot) || bootScripts.has(mac)),
      });
    };
    const app = createHttpApp({
      ...hosts,
      ipxeReports: {
        senderOf: async (address) => {
          if (!isIpv4(address)) return undefined;
          const source = await attributeSender(address);
          return source.kind === 'host' ? source.mac : undefined;
        },
        log: (mac, text) => recorder.add(mac, 'ipxe', text, 3, 'ipxe'),
      },
      loaderBuild: async (address) => loaderBuildOf(await neighbors.macOf(address)),
      rollouts,
      bootScripts: { saw: sawBootScript },
      log,
      events: timeline,
      observer: bootObserver,
      status: { router: status.router, metrics },
      hostImages: {
        cache: new HostIsoCache(hostImageFolder(options.assets), options.hostImageCacheBytes === undefined ? {} : { budgetBytes: options.hostImageCacheBytes }),
      },
      admin: {
        token,
        profiles,
        ...(databaseProfiles ? { profileStore: databaseProfiles } : {}),
        assets,
        rollouts,
        power,
        logs: logStore,
        ...(leases ? { leases } : {}),
        hosts: {
          list: () => {
            bootObserver.flush();
            return hostList();
          },
          timeline: (mac) => {
            bootObserver.flush();
            return events.listByHost(mac, { limit: 1000 });
          },
          storage: (mac) => storageOf(events, mac),
          guestNetwork: (mac) => guestNetworkOf(events, mac),
        },
        log,
      },
    });
    const http = await listenHttp(app, {
      port: options.httpPort,
      address: served.address,
      log,
      ...(options.httpLimits ? { limits: options.httpLimits } : {}),
      onRefused: (cap) => metrics.httpConnectionRefused(cap),
    });
    closers.push(() => http.close());
    draining.http = http;

    const tftp = new TftpServer({
      onEvent: (event) => {
        if (event.kind === 'transferEnded' && event.outcome !== 'probe') {
          bootObserver.tftp({
            client: event.client.address,
            file: event.file,
            result: event.outcome === 'complete' ? 'complete' : 'failed',
            bytes: event.bytes,
            ...(event.detail ? { reason: event.detail } : { reason: event.outcome }),
          });
        } else if (event.kind === 'requestRefused') {
          bootObserver.tftp({ client: event.client.address, file: event.file, result: 'refused', bytes: 0, reason: event.message });
        }
      },
      address: served.address,
      port: options.tftpPort,
      ...(options.tftpMaxTransfers !== undefined ? { maxTransfers: options.tftpMaxTransfers } : {}),
      ...(options.tftpMaxTransfersPerClient !== undefined ? { maxTransfersPerClient: options.tftpMaxTransfersPerClient } : {}),
      // The per-client cap counts per MAC too: one machine with many
      // addresses on its interface cannot take every slot.
      macOf: tftpClients.macOf,
      log,
      resolve: async (requested, client) => {
        // Generated per-host files first, rendered exactly as HTTP renders them.
        const generated = tftpHostFile(requested);
        if (generated) {
          const file = await hostFile(hosts, { ...generated, platform: 'bios', requester: { address: client.address } });
          if (file.kind === 'refused' && file.status === 403) {
            log.warn(
              { event: 'host-secret-refused', mac: generated.mac, file: requested, remote: client.address, reason: file.message },
              'host secrets refused',
            );
            bootObserver.hostRefused(generated.name);
          }
          return file.kind === 'file' ? fileFromBuffer(Buffer.from(file.body)) : undefined;
        }
        const wanted = resolveTftpPath(requested);
        if (!wanted) return undefined;
        const loaderBuild =
          wanted.buildId === undefined && LOADER_FILES.has(wanted.name) ? await loaderBuildOf(await tftpClients.macOf(client.address)) : undefined;
        const file = await assets.file(wanted.name, wanted.buildId ?? loaderBuild);
        return file ? await fileFromDisk(file.path) : undefined;
      },
    });
    await tftp.start();
    closers.push(() => tftp.close());
    draining.tftp = tftp;

    if (options.dhcp === 'off') {
      log.info('dhcp: off (point your DHCP server at this host: see the README)');
    } else {
      // The same server in both modes, with the same boot choice and profile
      // test; full mode adds addresses (pool, relay pools, leases,
      // reservations). proxyDHCP answers only network-boot clients, beside
      // the network's own DHCP server, relayed ones too.
      const full = options.dhcp === 'full';
      if (full && (!pool || !leases)) throw new Error('full DHCP mode without a pool or a lease store');
      const relayScopes = (options.relaySubnets ?? []).map((text) =>
        full ? parseRelaySubnet(text) : { ...parseProxyRelaySubnet(text), pool: undefined, router: undefined, dns: [] },
      );
      // Servers on one database answer together: one of the live ones answers each client.
      const peers =
        full && options.database !== undefined
          ? await ServerMembership.open(options.database, {
              id: served.address,
              onChange: (live, came, went) => log.info({ servers: live, came, went }, 'dhcp: servers on the database changed'),
              onProblem: (message, error) => log.error({ err: error }, message),
            })
          : undefined;
      if (peers) {
        closers.push(() => peers.close());
        log.info({ servers: peers.live() }, 'dhcp: answering with the servers on the database');
      }
      const fullMode = {
        pool: pool!,
        leases: leases!,
        ...(peers
          ? {
              answersFor: (mac: string) => answeringServer(mac, peers.live()) === served.address,
              // The same hashing splits the pool's never-used addresses: each server gives out its own share first.
              prefersAddress: (address: string) => answeringServer(address, peers.live()) === served.address,
            }
          : {}),
        ...(options.firstLeaseSeconds !== undefined ? { firstLeaseSeconds: options.firstLeaseSeconds } : {}),
        ...(options.dhcpNewClientsPerSecond !== undefined ? { newClientsPerSecond: options.dhcpNewClientsPerSecond } : {}),
        ...(options.router ? { router: options.router } : {}),
        reservationFor: (mac: string, slot?: RelaySlot) => profiles.reservationFor(mac, slot),
        reservationOwner: (address: string) => profiles.reservationOwner(address),
        sightings,
      };
      const dhcpOptions: DhcpServerOptions = {
        mode: options.dhcp,
        interfaceName: served.interfaceName,
        serverAddress: served.address,
        prefixLength: served.prefixLength,
        relayScopes,
        leaseSeconds: options.leaseSeconds,
        dns: full ? options.dns : [],
        knownOnly: options.dhcpKnownOnly === true,
        hasOwnProfile: (mac, slot) => profiles.hasOwnProfile(mac, slot),
        bootFile: (facts) => chooseBootFile(facts, endpoints),
        ...(full ? fullMode : {}),
        onEvent: (event) => {
          // The addresses given, and other DHCP servers seen: full mode's alone (a proxy offer gives no address).
          if (full && event.kind === 'reply' && (event.result === 'offer' || event.result === 'ack') && event.address !== undefined) {
            dhcpAnswers.record(event.mac, event.address, Date.now());
          }
          if (full && event.kind === 'other-server') otherDhcpServers.set(event.server, { mac: event.mac, at: Date.now() });
          observeDhcp(bootObserver, event, !full);
        },
        log,
        port: options.dhcpPort,
      };
      if (full) await warmUpDhcp(dhcpOptions, log);
      const dhcp = new DhcpServer(dhcpOptions);
      await dhcp.start();
      if (full) warnAboutSharedDhcpPort(options.dhcpPort, log);
      closers.push(() => dhcp.close());
      draining.stopFirst.push(() => dhcp.close());
      const relaySubnets = relayScopes.map((scope) =>
        scope.pool === undefined ? scope.subnet.toString() : `${scope.subnet.toString()} ${scope.pool.start}-${scope.pool.end}`,
      );
      if (full) log.info({ interface: served.interfaceName, pool, relaySubnets }, 'dhcp: full server');
      else log.info({ interface: served.interfaceName, relaySubnets }, "dhcp: proxy (boot information only, beside the network's DHCP server)");
    }
    // Hosts' syslog and netconsole lines: a port that cannot be bound is said, by name, and serving goes on without them.
    const syslogPort = options.syslogPort ?? 514;
    const receiver = new LogReceiver({
      address: served.address,
      port: syslogPort,
      attribute: attributeSender,
      onLine: (mac, message) => recorder.syslog(mac, message),
      log,
    });
    metrics.syslogCounts(() => receiver.counts);
    try {
      await receiver.start();
      closers.push(() => receiver.close());
      log.info({ port: receiver.port }, `syslog: receiving hosts' lines on UDP ${served.address}:${receiver.port}`);
      try {
        await receiver.startTcp();
        log.info({ port: receiver.tcpPort }, `syslog: receiving hosts' lines on TCP ${served.address}:${receiver.tcpPort}`);
      } catch (error) {
        log.error({ err: error }, `${(error as Error).message}; hosts' lines come over UDP only`);
      }
    } catch (error) {
      log.error({ err: error }, `${(error as Error).message}; hosts' syslog and netconsole lines are not received`);
    }
    // Every socket is bound and the state is open: root is no longer needed.
    await becomeServerUser({ user, state: options.state, profiles: profileFolder, assets: assets.dir, code: packageRoot(), log });
    log.info(
      {
        interface: served.interfaceName,
        address: served.address,
        http: options.httpPort,
        tftp: options.tftpPort,
        dhcp: options.dhcp,
        ...(tftpServer ? { tftpServer } : {}),
      },
      'rackboot is serving',
    );
  } catch (error) {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    throw error;
  }

  let closing: Promise<void> | undefined;
  return {
    endpoints,
    close: (closeOptions = {}) =>
      (closing ??= (async () => {
        if (closeOptions.drainMs !== undefined) {
          const started = Date.now();
          for (const stop of draining.stopFirst) await stop().catch((error: unknown) => log.warn({ err: error }, 'close failed'));
          const [http, tftp] = await Promise.all([draining.http?.drain(closeOptions.drainMs) ?? 0, draining.tftp?.drain(closeOptions.drainMs) ?? 0]);
          const waited = Date.now() - started;
          if (http + tftp > 0)
            log.warn({ httpConnections: http, tftpTransfers: tftp, waitedMs: waited }, 'stopping: cut what had not finished after the drain time');
          else log.info({ waitedMs: waited }, 'stopping: nothing left in flight');
        }
        for (const close of closers.reverse()) await close().catch((error: unknown) => log.warn({ err: error }, 'close failed'));
      })()),
    reload: async () => {
      await profiles.reload();
      const build = await assets.current();
      const report = { profiles: profiles.all().length, problems: profiles.errors().length, build: build?.id };
      log.info({ ...report, restartNeeded: 'command-line flags take effect on restart' }, 'reloaded: profiles and the current build read again');
      return report;
    },
  };
}
