import { readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { AdminToken } from '../admin/token.js';
import type { AssetStore } from '../assets/builds.js';
import { CHANNEL_NAME, DEFAULT_CHANNEL } from '../assets/manifest.js';
import type { Lease, LeaseStore } from '../dhcp/leases/leases.js';
import type { Logger } from '../log.js';
import { firstProblems, formatProfileError, type ProfileError } from '../profiles/error.js';
import { normaliseMac } from '../profiles/mac.js';
import type { ProfileDirectory } from '../profiles/store.js';
import { isGroupProfile } from '../profiles/profile.js';
import { writeAtomically } from '../profiles/write-atomically.js';
import type { HostStatus } from '../status/snapshot.js';
import type { ImageLinks } from './image-links.js';
import type { TimelineEvent } from '../status/timeline.js';
import type { ReportedGuestInterface, StorageReport } from '../storage/report.js';
import { defaultDeadlineMs, isActive, parseDeadline, parseFirstWave, type FirstWave, type Rollout } from '../rollouts/rollout.js';
import type { Rollouts } from '../rollouts/rollouts.js';
import type { HostPower } from '../bmc/power.js';
import type { HostLogStore, LogQuery } from '../logs/store.js';

/** The most lines one GET /api/hosts/<mac>/logs answers with, whatever its ?limit. */
export const maxLogLinesPerAnswer = 10_000;

export interface AdminApiOptions {
  token: AdminToken;
  profiles: ProfileDirectory;
  /**
   * Where a saved or deleted profile goes when the profile folder is a copy
   * (`serve --database`: the database, see profiles/postgres-profiles.ts);
   * resolves once the folder has the change. Absent: the folder itself.
   */
  profileStore?: { save(name: string, text: string): Promise<void>; remove(name: string): Promise<void> };
  assets: AssetStore;
  /** The DHCP lease store; absent when this server gives no addresses (proxy or off). */
  leases?: LeaseStore;
  /** Hosts as the status page shows them, and each one's timeline. */
  hosts?: {
    list(): HostStatus[];
    timeline(mac: string): TimelineEvent[];
    storage(mac: string): (StorageReport & { reportedAt: string }) | undefined;
    guestNetwork(mac: string): { reportedAt: string; interfaces: ReportedGuestInterface[] } | undefined;
  };
  log: Logger;
  now?: () => number;
  /** Signed links to hosts' own images (POST /api/hosts/<mac>/image-link), and the server's http://address:port they start with. */
  imageLinks?: { links: ImageLinks; base: string };
  /** Canary rollouts of builds to channels (rollouts/rollouts.ts). */
  rollouts?: Pick<Rollouts, 'list' | 'start' | 'command'>;
  /** Hosts' BMCs (bmc/power.ts). */
  power?: Pick<HostPower, 'powerCycle'>;
  /** Hosts' logs (logs/store.ts). */
  logs?: Pick<HostLogStore, 'list' | 'boots'>;
}

/** A rollout as the admin API and `rackboot rollout status` show it: each host of the channel with where it stands. */
export function describeRollout(rollout: Rollout) {
  const moved = new Map(rollout.moved.map((host) => [host.mac, host]));
  return {
    ...rollout,
    hosts: rollout.order.map((mac) => {
      const host = moved.get(mac);
      const stage =
        host === undefined
          ? 'waiting'
          : host.failedAt !== undefined
            ? 'failed'
            : host.healthyAt !== undefined
              ? 'healthy'
              : host.bootedAt !== undefined
                ? 'booting'
                : 'moved';
      return { mac, stage, ...(host?.reason === undefined ? {} : { reason: host.reason }) };
    }),
  };
}

/** Whether a request carries the admin token (`Authorization: Bearer <token>`), and if not, what it showed. */
export function checkAdminToken(req: Request, token: Pick<AdminToken, 'matches'>): 'ok' | 'no token' | 'wrong token' {
  const header = req.get('authorization');
  if (header === undefined) return 'no token';
  const presented = header.match(/^Bearer\s+(\S+)\s*$/i)?.[1];
  return presented !== undefined && token.matches(presented) ? 'ok' : 'wrong token';
}

/** A profile file name the API accepts: a plain name, ".yaml" added when it has no YAML extension. */
const profileNamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function profileFileName(name: string): string | undefined {
  if (!profileNamePattern.test(name) || name.includes('..')) return undefined;
  return /\.ya?ml$/.test(name) ? name : `${name}.yaml`;
}

/**
 * The admin API under /api: profiles, leases and builds, as JSON. Every call
 * needs `Authorization: Bearer <token>` (the token file in the state folder);
 * a call without a valid one gets 401 and is logged with where it came from.
 * The boot endpoints stay open: firmware cannot authenticate.
 *
 * Profiles written here go through the same parser and conflict rules as
 * files edited by hand, and reach disk only when they pass: a temporary file
 * in the directory, fsynced, then renamed over the old one, so the directory
 * never holds half a profile and a watcher never reads one.
 */
export function createAdminRouter(options: AdminApiOptions): Router {
  const { profiles, assets, log } = options;
  const now = options.now ?? Date.now;
  const router = express.Router();

  router.use((req: Request, res: Response, next: NextFunction) => {
    const check = checkAdminToken(req, options.token);
    if (check === 'ok') {
      next();
      return;
    }
    log.warn(
      { event: 'admin-denied', method: req.method, path: req.originalUrl, remote: req.socket.remoteAddress, reason: check },
      'admin api: request without a valid token refused',
    );
    res
      .status(401)
      .set('WWW-Authenticate', 'Bearer realm="rackboot"')
      .json({ error: "a valid bearer token is required (the admin token file in the server's state folder)" });
  });

  router.use(express.json({ limit: '1mb' }));
  router.use(express.text({ limit: '1mb', type: ['text/*', 'application/yaml', 'application/x-yaml'] }));

  // --- profiles ---

  router.get('/profiles', (_req, res) => {
    res.json(
      profiles.fileStatuses().map((file) => ({
        name: file.name,
        served: file.served !== undefined,
        mac: file.served?.mac ?? null,
        hostname: file.served === undefined || isGroupProfile(file.served) ? null : file.served.hostname,
        ...(file.served !== undefined && isGroupProfile(file.served) ? { hosts: file.served.hosts.length } : {}),
        ...listedProblems(file.problems),
      })),
    );
  });

  router.get('/profiles/:name', async (req, res) => {
    const name = profileFileName(String(req.params.name));
    const file = name === undefined ? undefined : profiles.fileStatuses().find((candidate) => candidate.name === name);
    if (name === undefined || file === undefined) {
      res.status(404).json({ error: `no profile file "${String(req.params.name)}" in ${profiles.dir}` });
      return;
    }
    const text = await readText(file.path);
    res.json({ name, text, profile: file.served ?? null, ...listedProblems(file.problems) });
  });

  const writeProfile = async (req: Request, res: Response, mode: 'create' | 'replace-or-create') => {
    const requested = mode === 'create' ? bodyField(req.body, 'name') : String(req.params.name);
    const name = requested === undefined ? undefined : profileFileName(requested);
    if (name === undefined) {
      res.status(400).json({ error: `profile name "${requested ?? ''}": want letters, digits, ".", "_" or "-" (".yaml" is added)` });
      return;
    }
    const text = typeof req.body === 'string' ? req.body : bodyField(req.body, 'yaml');
    if (text === undefined) {
      res.status(400).json({ error: 'send the profile as YAML (Content-Type: application/yaml) or as JSON {"yaml": "..."}' });
      return;
    }
    const exists = profiles.fileStatuses().some((file) => file.name === name);
    if (mode === 'create' && exists) {
      res.status(409).json({ error: `profile file ${name} exists already; replace it with PUT /api/profiles/${name}` });
      return;
    }
    const check = profiles.check(name, text);
    if (!check.ok) {
      const { shown, more } = firstProblems(check.errors);
      res.status(422).json({ error: `profile ${name} was not saved`, problems: shown.map(describeError), ...(more > 0 ? { moreProblems: more } : {}) });
      return;
    }
    if (options.profileStore) await options.profileStore.save(name, text);
    else {
      await writeAtomically(join(profiles.dir, name), text);
      await profiles.reload();
    }
    log.info(
      {
        event: 'admin-profile',
        action: exists ? 'replaced' : 'created',
        file: name,
        ...(isGroupProfile(check.profile) ? { hosts: check.profile.hosts.length } : { mac: check.profile.mac, hostname: check.profile.hostname }),
      },
      'admin api: profile saved',
    );
    const served = profiles.fileStatuses().find((file) => file.name === name);
    res.status(exists ? 200 : 201).json({ name, profile: served?.served ?? check.profile, problems: (served?.problems ?? []).map(formatProfileError) });
  };

  router.post('/profiles', (req, res) => writeProfile(req, res, 'create'));
  router.put('/profiles/:name', (req, res) => writeProfile(req, res, 'replace-or-create'));

  router.delete('/profiles/:name', async (req, res) => {
    const name = profileFileName(String(req.params.name));
    if (name === undefined || !profiles.fileStatuses().some((file) => file.name === name)) {
      res.status(404).json({ error: `no profile file "${String(req.params.name)}" in ${profiles.dir}` });
      return;
    }
    if (options.profileStore) await options.profileStore.remove(name);
    else {
      await unlink(join(profiles.dir, name));
      await profiles.reload();
    }
    log.info({ event: 'admin-profile', action: 'deleted', file: name }, 'admin api: profile deleted');
    res.status(204).end();
  });

  // --- leases ---

  const noLeases = (res: Response) => res.status(404).json({ error: 'this server gives no addresses (--dhcp proxy or off), so it holds no leases' });

  router.get('/leases', (_req, res) => {
    if (!options.leases) return noLeases(res);
    res.json(options.leases.all().map(leaseJson));
  });

  router.delete('/leases/:address', async (req, res) => {
    const leases = options.leases;
    if (!leases) return noLeases(res);
    const address = String(req.params.address);
    const lease = leases.byAddress(address);
    if (lease === undefined) {
      res.status(404).json({ error: `no lease for ${address}` });
      return;
    }
    // Answered once kept: on disk, or committed in the database servers share.
    try {
      await leases.transactionSyncedLater(() => {
        if (lease.state === 'declined') {
          // A quarantined address has no client to release it from: the admin
          // says the conflict is gone, so the record goes.
          leases.remove(address);
        } else {
          leases.release(lease.mac, now());
        }
      }).synced;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      log.error({ event: 'admin-lease', mac: lease.mac, address, err: error }, 'admin api: lease not released');
      res.status(503).json({ error: `the lease of ${address} was not released: ${message}` });
      return;
    }
    log.info({ event: 'admin-lease', action: 'released', mac: lease.mac, address, was: lease.state }, 'admin api: lease released');
    res.json(leaseJson(leases.byAddress(address) ?? { ...lease, state: 'released', expiresAt: now() }));
  });

  // --- hosts ---

  router.get('/hosts', (_req, res) => {
    res.json(options.hosts?.list() ?? []);
  });

  router.get('/hosts/:mac', (req, res) => {
    const mac = normaliseMac(String(req.params.mac));
    const host = mac === undefined ? undefined : options.hosts?.list().find((candidate) => candidate.mac === mac);
    if (mac === undefined || host === undefined) {
      res.status(404).json({ error: `no host ${String(req.params.mac)} has been seen` });
      return;
    }
    const timeline = options.hosts!.timeline(mac).map((event) => ({ ...event, time: new Date(event.time).toISOString() }));
    res.json({ ...host, storageReport: options.hosts!.storage(mac) ?? null, guestNetwork: options.hosts!.guestNetwork(mac) ?? null, timeline });
  });

  // A link to a host's own image that opens it without the token, for a
  // short while (see image-links.ts); only for a MAC with a profile of its own.
  router.post('/hosts/:mac/image-link', (req, res) => {
    const mac = normaliseMac(String(req.params.mac));
    if (mac === undefined) {
      res.status(400).json({ error: `mac: "${String(req.params.mac)}" is not a MAC address` });
      return;
    }
    if (options.imageLinks === undefined) {
      res.status(404).json({ error: 'this server makes no image links' });
      return;
    }
    if (!profiles.hasOwnProfile(mac)) {
      res.status(404).json({ error: `${mac} has no profile of its own; per-host images are made only for hosts with their own profile` });
      return;
    }
    const link = options.imageLinks.links.make(mac);
    log.info({ event: 'admin-image-link', mac, expires: new Date(link.expires * 1000).toISOString() }, 'admin api: image link made');
    res.json({ url: `${options.imageLinks.base}${link.path}`, path: link.path, expires: new Date(link.expires * 1000).toISOString() });
  });

  // --- builds ---

  router.get('/builds', async (_req, res) => {
    const currentFor = await assets.currentFor();
    res.json(
      (await assets.list()).map(({ id, manifest }) => ({
        id,
        created: manifest.created,
        release: manifest.release,
        channel: manifest.channel ?? DEFAULT_CHANNEL,
        current: currentFor.get(id)?.includes(DEFAULT_CHANNEL) === true,
        currentFor: currentFor.get(id) ?? [],
        files: manifest.files,
      })),
    );
  });

  // {"id": ...} switches the default channel's current build; with "channel", that channel's.
  router.put('/builds/current', async (req, res) => {
    const id = bodyField(req.body, 'id');
    const channel = bodyField(req.body, 'channel') ?? DEFAULT_CHANNEL;
    if (channel !== DEFAULT_CHANNEL && !CHANNEL_NAME.test(channel)) {
      res.status(400).json({ error: `channel ${JSON.stringify(channel)} is not a channel name (a lower-case letter, then up to 31 of a-z, 0-9 and -)` });
      return;
    }
    const rolling = options.rollouts?.list().find((rollout) => rollout.channel === channel && isActive(rollout));
    if (rolling !== undefined) {
      res.status(409).json({
        error: `a rollout of ${rolling.build} on channel ${channel} is ${rolling.state}; abort it first (rackboot rollout abort --channel ${channel})`,
      });
      return;
    }
    const build = id === undefined ? undefined : await assets.build(id);
    if (id === undefined || build === undefined) {
      res
        .status(id === undefined ? 400 : 404)
        .json({ error: id === undefined ? 'send JSON {"id": "<build id>"}' : `no build "${id}" in ${join(assets.dir, 'builds')}` });
      return;
    }
    await assets.switchTo(build.id, channel);
    log.info({ event: 'admin-build', action: 'switched', build: build.id, channel }, 'admin api: current build switched');
    res.json({ id: build.id, channel, current: true });
  });

  // --- logs ---

  // ?boot=N (default: every boot kept), ?sinceId=ID (the lines after one already read: --follow), ?since=MS,
  // ?limit=N (the newest N; after sinceId, the next N).
  router.get('/hosts/:mac/logs', async (req, res) => {
    const mac = normaliseMac(String(req.params.mac));
    if (mac === undefined) {
      res.status(400).json({ error: `${JSON.stringify(String(req.params.mac))} is not a MAC address` });
      return;
    }
    if (options.logs === undefined) {
      res.status(404).json({ error: 'this server keeps no logs' });
      return;
    }
    const query: LogQuery = {};
    for (const name of ['boot', 'sinceId', 'since', 'limit'] as const) {
      const text = req.query[name];
      if (text === undefined) continue;
      const value = Number(text);
      if (typeof text !== 'string' || !/^\d{1,15}$/.test(text) || !Number.isSafeInteger(value)) {
        res.status(400).json({ error: `${name}: want a whole number, got ${JSON.stringify(text)}` });
        return;
      }
      query[name] = value;
    }
    query.limit = Math.min(query.limit ?? 1000, maxLogLinesPerAnswer);
    const [lines, boots] = await Promise.all([options.logs.list(mac, query), options.logs.boots(mac)]);
    res.json({ mac, boots, lines });
  });

  // --- power ---

  // {"efi": true|false} (optional; else the platform of the host's last boot script): power-cycle into a network boot.
  router.post('/hosts/:mac/power-cycle', async (req, res) => {
    const mac = normaliseMac(String(req.params.mac));
    if (mac === undefined) {
      res.status(400).json({ error: `${JSON.stringify(String(req.params.mac))} is not a MAC address` });
      return;
    }
    const efi = (req.body as { efi?: unknown } | undefined)?.efi;
    if (efi !== undefined && typeof efi !== 'boolean') {
      res.status(400).json({ error: 'efi: want true or false' });
      return;
    }
    if (options.power === undefined) {
      res.status(404).json({ error: 'this server powers no hosts' });
      return;
    }
    const outcome = await options.power.powerCycle(mac, 'asked through the admin API', efi);
    log.info({ event: 'admin-power', mac, outcome: outcome.kind }, 'admin api: power-cycle');
    switch (outcome.kind) {
      case 'no-bmc':
        res.status(404).json({ error: `${mac}'s profile names no BMC (bmc: in its own file)` });
        return;
      case 'busy':
        res.status(409).json({ error: `${mac} is being power-cycled through ${outcome.bmc} already` });
        return;
      case 'failed':
        res.status(502).json({ error: outcome.problem });
        return;
      case 'done':
        res.json({ mac, bmc: outcome.bmc, wasOn: outcome.result.wasOn, nextBoot: outcome.result.efi ? 'network (UEFI)' : 'network' });
    }
  });

  // --- rollouts ---

  router.get('/rollouts', (_req, res) => {
    res.json((options.rollouts?.list() ?? []).map(describeRollout));
  });

  // {"channel", "build", "first": "1" | "25%", "deadline": "20m", "reboot": true}: start one.
  router.post('/rollouts', async (req, res) => {
    if (options.rollouts === undefined) {
      res.status(404).json({ error: 'this server keeps no rollouts' });
      return;
    }
    const channel = bodyField(req.body, 'channel') ?? DEFAULT_CHANNEL;
    const build = bodyField(req.body, 'build');
    const first = parseFirstWave(bodyField(req.body, 'first') ?? '1');
    const deadline = parseDeadline(bodyField(req.body, 'deadline') ?? `${defaultDeadlineMs / 1000}s`);
    const problem =
      channel !== DEFAULT_CHANNEL && !CHANNEL_NAME.test(channel)
        ? `channel ${JSON.stringify(channel)} is not a channel name`
        : build === undefined
          ? 'send JSON {"channel": ..., "build": "<build id>", "first": "1" or "25%", "deadline": "20m"}'
          : 'problem' in first
            ? first.problem
            : typeof deadline !== 'number'
              ? deadline.problem
              : undefined;
    if (problem !== undefined) {
      res.status(400).json({ error: problem });
      return;
    }
    const reboot = (req.body as { reboot?: unknown } | undefined)?.reboot;
    if (reboot !== undefined && typeof reboot !== 'boolean') {
      res.status(400).json({ error: 'reboot: want true or false' });
      return;
    }
    const started = await options.rollouts.start({
      channel,
      build: build!,
      first: first as FirstWave,
      deadlineMs: deadline as number,
      reboot: reboot === true,
    });
    if (!started.ok) {
      res.status(started.problem.startsWith('no build') ? 404 : 409).json({ error: started.problem });
      return;
    }
    log.info({ event: 'admin-rollout', action: 'start', channel, build }, 'admin api: rollout started');
    res.status(201).json(describeRollout(started.rollout));
  });

  router.post('/rollouts/:channel/:action', async (req, res) => {
    const action = String(req.params.action);
    if (options.rollouts === undefined || (action !== 'pause' && action !== 'resume' && action !== 'abort')) {
      res.status(404).json({ error: "no such admin API call (pause, resume or abort a channel's rollout)" });
      return;
    }
    const done = await options.rollouts.command(String(req.params.channel), action);
    if (!done.ok) {
      res.status(done.problem.includes('has no rollout') ? 404 : 409).json({ error: done.problem });
      return;
    }
    log.info({ event: 'admin-rollout', action, channel: done.rollout.channel }, `admin api: rollout ${action}`);
    res.json(describeRollout(done.rollout));
  });

  router.use((_req: Request, res: Response) => {
    res.status(404).json({ error: 'no such admin API call' });
  });
  router.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    const status = typeof (error as { status?: unknown }).status === 'number' ? (error as { status: number }).status : 500;
    if (status >= 500) log.error({ err: error, path: req.originalUrl }, 'admin api: request failed');
    res.status(status).json({ error: status >= 500 ? 'internal error (see the server log)' : (error as Error).message });
  });
  return router;
}

function bodyField(body: unknown, field: string): string | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const value = (body as Record<string, unknown>)[field];
  return typeof value === 'string' ? value : undefined;
}

/** At most maxListedProblems problems, as text, and how many more there are. */
function listedProblems(problems: readonly ProfileError[]): { problems: string[]; moreProblems?: number } {
  const { shown, more } = firstProblems(problems);
  return { problems: shown.map(formatProfileError), ...(more > 0 ? { moreProblems: more } : {}) };
}

function describeError(error: ProfileError) {
  return { line: error.line, column: error.column, field: error.field, message: error.message, text: formatProfileError(error) };
}

function leaseJson(lease: Lease) {
  return {
    mac: lease.mac,
    address: lease.address,
    state: lease.state,
    expiresAt: new Date(lease.expiresAt).toISOString(),
    // Left out of the JSON when the client sent none.
    hostname: lease.hostname,
  };
}

async function readText(path: string): Promise<string | null> {
  return readFile(path, 'utf8').catch(() => null);
}
