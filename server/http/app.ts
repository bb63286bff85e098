import { stat } from 'node:fs/promises';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { platformOf, type Platform } from '../core/facts.js';
import { authorizeHost, domainConfigName, hostFile, type HostFileName, type HostSources } from '../core/host-files.js';
import { LOADER_FILES } from '../assets/manifest.js';
import type { Rollouts } from '../rollouts/rollouts.js';
import { renderEntryScript } from '../core/render.js';
import { parseEventReport } from '../events/event.js';
import { RepeatedReports } from '../events/repeats.js';
import { describeIpxeFailure, parseIpxeFailure } from '../logs/ipxe-report.js';
import { maximumStorageReportBytes, parseGuestNetworkReport, parseStorageReport, summarizeGuestNetwork, summarizeStorage } from '../storage/report.js';
import { MemoryEventStore, type EventStore, type HostReportKind } from '../events/store.js';
import type { Logger } from '../log.js';
import { normaliseMac } from '../profiles/mac.js';
import type { Metrics } from '../metrics.js';
import type { BootObserver } from '../observe.js';
import { createAdminRouter, type AdminApiOptions } from './admin.js';
import { downloadsRouter, sendDownload } from './downloads.js';
import { FileCache } from './file-cache.js';
import type { HostIsoCache } from '../iso/host-iso.js';
import { ImageLinks } from './image-links.js';
import { httpBase } from '../core/resolve.js';

export interface HttpAppOptions extends HostSources {
  log: Logger;
  /** The admin API under /api (bearer token); left out, there is none. */
  admin?: AdminApiOptions;
  /** Where reported boot events go; a memory store when left out. */
  events?: EventStore;
  /** The clock events are stamped with; Date.now when left out. */
  now?: () => number;
  /** Told of every answered request, and of every stored report (timeline and metrics: server/observe.ts). */
  observer?: Pick<BootObserver, 'http' | 'reported' | 'settle' | 'hostRefused'>;
  /** The status page under /status and GET /metrics; left out, there are none. */
  status?: { router: Router; metrics: Metrics };
  /**
   * Memory for hot build files where a body cannot go out with sendfile
   * (see FileCache); default 256 MiB, filled only when used; 0 streams every
   * such file from disk.
   */
  fileCacheBytes?: number;
  /** Send file bodies with sendfile(2) over plain TCP (see sendDownload); default true. */
  sendfile?: boolean;
  /**
   * Per-host images (GET /hosts/<mac>/rackboot.iso): who may download them
   * (default: the admin API's token, and links the admin API signs) and
   * their disk budget.
   */
  hostImages?: { token?: Pick<AdminApiOptions['token'], 'matches'>; links?: ImageLinks; cache?: HostIsoCache };
  /**
   * The build whose iPXE loader a machine gets when it asks for one by bare
   * name (HTTP Boot's /ipxe.efi): the build it boots, found from its
   * address; undefined (or left out): the default channel's current build.
   */
  loaderBuild?: (address: string) => Promise<string | undefined>;
  /** Told of the boot scripts and reports that move a rollout on (rollouts/rollouts.ts); also decides builds (HostSources). */
  rollouts?: HostSources['rollouts'] & Pick<Rollouts, 'bootScript' | 'reported' | 'rebootFor'>;
  /** Told of each boot script that went to its host (not a stranger asking for it), with its platform. */
  bootScripts?: { saw(mac: string, platform: Platform): void };
  /**
   * iPXE's failure reports (GET /hosts/<mac>/ipxe-failed/<step>/<errno>,
   * logs/ipxe-report.ts): the host a sender's address belongs to, as for its
   * syslog lines (undefined: no host's), and where the host's log line goes.
   * Left out, there are no such reports (404).
   */
  ipxeReports?: { senderOf(address: string): Promise<string | undefined>; log(mac: string, text: string): void };
}

/** Event bodies are one line of text or so; anything bigger is not a report. */
const eventBodyLimit = '16kb';
/** The most events GET /hosts/<mac>/events returns (the newest ones). */
const eventListLimit = 1000;

/** The header a host shows its token in (host-token.ts); never the URL, which logs and proxies keep. */
export const hostTokenHeader = 'x-rackboot-token';

/** Query parameters whose values are credentials: kept out of the log. */
const secretParameters = /^(token|sig|signature)$/i;

/** The request's path and query for the log, with the values of credential parameters left out. */
export function loggablePath(url: string): string {
  const query = url.indexOf('?');
  if (query < 0) return url;
  const parameters = url
    .slice(query + 1)
    .split('&')
    .map((pair) => {
      const name = pair.split('=', 1)[0]!;
      let decoded = name;
      try {
        decoded = decodeURIComponent(name.replace(/\+/g, ' '));
      } catch {
        // A malformed escape: judged by its raw text.
      }
      return secretParameters.test(decoded.trim()) ? `${name}=(not logged)` : pair;
    });
  return `${url.slice(0, query)}?${parameters.join('&')}`;
}

function remoteAddress(req: Request): string | undefined {
  return req.socket.remoteAddress?.replace(/^::ffff:/, '');
}

/** iPXE's ${platform}: "pcbios" or "efi"; rackboot's own names are accepted too. */
export function platformFromQuery(value: unknown): Platform | undefined {
  if (value === undefined || value === 'pcbios' || value === 'bios') return 'bios';
  if (value === 'efi' || value === 'efi64') return 'efi64';
  return undefined;
}

/**
 * The HTTP side of a boot: the entry script iPXE is pointed at, per-host
 * scripts and files, and the boot parts of the current (or a pinned) build.
 * Every per-host answer comes from resolveHostBoot, the same decision the
 * DHCP and TFTP servers use.
 */
export function createHttpApp(options: HttpAppOptions) {
  const { assets, endpoints, log } = options;
  const events = options.events ?? new MemoryEventStore();
  const now = options.now ?? Date.now;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const path = loggablePath(req.originalUrl);
      log.info(
        {
          event: 'http',
          method: req.method,
          path,
          status: res.statusCode,
          bytes: Number(res.getHeader('content-length') ?? 0),
          remote: req.socket.remoteAddress,
          ms: Number((process.hrtime.bigint() - started) / 1000n) / 1000,
        },
        'http request',
      );
      options.observer?.http({
        path,
        status: res.statusCode,
        bytes: Number(res.getHeader('content-length') ?? 0),
        client: req.socket.remoteAddress,
        ...(typeof res.locals.hostMac === 'string' ? { host: res.locals.hostMac } : {}),
      });
    });
    next();
  });

  const text = (res: Response, body: string, type = 'text/plain') => {
    res.type(type).set('Cache-Control', 'no-store').send(body);
  };

  const imageLinks = options.hostImages?.links ?? new ImageLinks();
  const imageToken = options.hostImages?.token ?? options.admin?.token;
  if (options.admin) app.use('/api', createAdminRouter({ ...options.admin, imageLinks: { links: imageLinks, base: httpBase(endpoints) } }));
  if (options.status) {
    const { metrics } = options.status;
    app.use('/status', options.status.router);
    app.get('/metrics', async (_req, res) => {
      res
        .type(metrics.contentType)
        .set('Cache-Control', 'no-store')
        .send(await metrics.text());
    });
  }
  const fileCache = new FileCache(options.fileCacheBytes ?? 256 * 1024 * 1024);
  app.use(
    downloadsRouter({
      ...options,
      fileCache,
      hostImageAccess: { links: imageLinks, ...(imageToken ? { token: imageToken } : {}) },
      ...(options.hostImages?.cache ? { hostImageCache: options.hostImages.cache } : {}),
    }),
  );

  app.get('/boot.ipxe', (_req, res) => text(res, renderEntryScript(endpoints)));

  /** A generated per-host file, or the reason there is none (a comment line for runtime.env). */
  const sendHostFile = async (
    req: Request,
    res: Response,
    name: HostFileName,
    platform: Platform,
    extra: { buildId?: string; entry?: string; domain?: string } = {},
  ) => {
    const token = req.get(hostTokenHeader);
    const address = remoteAddress(req);
    const file = await hostFile(options, { mac: String(req.params.mac), name, platform, ...extra, requester: { token, address } });
    if (file.kind === 'refused' && file.status === 403) {
      log.warn(
        { event: 'host-secret-refused', mac: normaliseMac(String(req.params.mac)), file: name, remote: address, reason: file.message },
        'host secrets refused',
      );
      options.observer?.hostRefused(name);
    }
    if (file.kind === 'refused') {
      text(res.status(file.status), `${name === 'runtime.env' ? '# ' : ''}rackboot: ${file.message}\n`);
      return undefined;
    }
    if (file.attributed) res.locals.hostMac = file.boot.kind === 'boot' ? file.boot.plan.mac : file.boot.mac;
    if (file.withheld !== undefined) {
      log.info(
        { event: 'host-token-withheld', mac: normaliseMac(String(req.params.mac)), file: name, remote: address, reason: file.withheld },
        'no boot token for this requester',
      );
    }
    text(res, file.body);
    return file.boot;
  };

  app.get('/hosts/:mac/boot.ipxe', async (req, res) => {
    const platform = platformFromQuery(req.query.platform);
    if (!platform) {
      text(res.status(400), `rackboot: unknown platform "${String(req.query.platform)}" (want pcbios or efi)\n`);
      return;
    }
    const boot = await sendHostFile(req, res, 'boot.ipxe', platform);
    if (!boot) return;
    // Only a script that went to the host itself starts its boot's deadline in a rollout.
    if (boot.kind === 'boot' && res.locals.hostMac !== undefined) {
      options.rollouts?.bootScript(boot.plan.mac, boot.plan.build.id);
      options.bootScripts?.saw(boot.plan.mac, platform);
    }
    log.info(
      {
        event: 'boot-script',
        mac: boot.kind === 'boot' ? boot.plan.mac : boot.mac,
        platform,
        result: boot.kind,
        hostname: boot.kind === 'boot' ? boot.plan.profile.hostname : undefined,
        entry: boot.kind === 'boot' ? boot.plan.defaultEntry : undefined,
        build: boot.kind === 'boot' ? boot.plan.build.id : undefined,
        buildFrom: boot.kind === 'boot' ? boot.plan.buildReason : boot.kind === 'no-build' ? boot.reason : undefined,
        notes: boot.kind === 'boot' && boot.plan.notes.length > 0 ? boot.plan.notes : undefined,
      },
      'boot script',
    );
  });

  app.get('/hosts/:mac/builds/:build/xen.cfg', async (req, res) => {
    await sendHostFile(req, res, 'xen.cfg', 'efi64', { buildId: String(req.params.build) });
  });

  app.get('/hosts/:mac/builds/:build/:entry/xen.cfg', async (req, res) => {
    await sendHostFile(req, res, 'xen.cfg', 'efi64', { buildId: String(req.params.build), entry: String(req.params.entry) });
  });

  app.get('/hosts/:mac/domains/:file', async (req, res) => {
    const domain = domainConfigName(String(req.params.file));
    if (domain === undefined) {
      text(res.status(404), `rackboot: no file "${String(req.params.file)}"; domain configurations are /hosts/<mac>/domains/<name>.cfg\n`);
      return;
    }
    const boot = await sendHostFile(req, res, 'domain.cfg', platformOf(undefined), { domain });
    if (boot?.kind === 'boot') log.info({ event: 'domain-config', mac: boot.plan.mac, domain }, 'domain configuration');
  });

  // A Debian guest's first-boot settings: only to that guest, with its own token.
  app.get('/hosts/:mac/domains/:name/first-boot', async (req, res) => {
    const domain = String(req.params.name);
    const boot = await sendHostFile(req, res, 'first-boot', platformOf(undefined), { domain });
    if (boot?.kind === 'boot') log.info({ event: 'first-boot', mac: boot.plan.mac, domain }, 'first-boot settings');
  });

  /** The request's :mac, normalised; undefined after answering 400 when it is no MAC. */
  const macParameter = (req: Request, res: Response): string | undefined => {
    const mac = normaliseMac(String(req.params.mac));
    if (!mac) text(res.status(400), `rackboot: mac: "${String(req.params.mac)}" is not a MAC address\n`);
    return mac || undefined;
  };

  /**
   * Why a report of `stage` (or the heartbeat, "alive") about `mac` is not
   * taken from this request; undefined when the host's token, or its guest's
   * for that guest's own report, says it comes from them (token-use.ts).
   */
  const reportRefusal = (req: Request, mac: string, stage: string, domain?: string): string | undefined => {
    if (!options.secrets) return undefined;
    const decision = authorizeHost(options.secrets, {
      mac,
      use: 'event',
      stage,
      token: req.get(hostTokenHeader),
      address: remoteAddress(req),
      domain,
    });
    return decision.kind === 'refuse' ? decision.reason : undefined;
  };

  // Reports from a host's runtime and its guests: where the boot stands.
  // Form-encoded, so busybox `wget --post-data` can send them, or JSON.
  const eventBody = [express.urlencoded({ extended: false, limit: eventBodyLimit }), express.json({ limit: eventBodyLimit, strict: false })];
  const repeatedReports = new RepeatedReports();
  app.post('/hosts/:mac/events', ...eventBody, (req: Request, res: Response) => {
    const mac = macParameter(req, res);
    if (mac === undefined) return;
    const type = req.headers['content-type'];
    const mediaType = (type ?? '').split(';')[0]!.trim().toLowerCase();
    if (mediaType !== 'application/x-www-form-urlencoded' && mediaType !== 'application/json') {
      text(
        res.status(400),
        `rackboot: body: want application/x-www-form-urlencoded or application/json, got ${type ? JSON.stringify(type) : 'no Content-Type'}\n`,
      );
      return;
    }
    // An empty body leaves req.body unset: a report without fields.
    const report = parseEventReport(req.body ?? {});
    if (!report.ok) {
      log.info({ event: 'host-event-refused', mac, field: report.field, reason: report.message, remote: req.socket.remoteAddress }, 'event refused');
      text(res.status(400), `rackboot: ${report.field}: ${report.message}\n`);
      return;
    }
    const reason = reportRefusal(req, mac, report.event.stage, report.event.domain);
    if (reason !== undefined) {
      log.warn({ event: 'host-event-refused', mac, stage: report.event.stage, remote: remoteAddress(req), reason }, 'report refused: not from the host');
      options.observer?.hostRefused('event');
      text(res.status(403), `rackboot: reports about ${mac} are taken only from that host, with its token: ${reason}\n`);
      return;
    }
    // A retry of a report already taken (its answer came too late for the
    // sender): answered as taken, and not put on the timeline again.
    if (report.reportId !== undefined && repeatedReports.repeated(mac, report.reportId, now())) {
      log.info(
        {
          event: 'host-event-repeated',
          mac,
          stage: report.event.stage,
          domain: report.event.domain,
          report: report.reportId,
          remote: req.socket.remoteAddress,
        },
        'host event already taken',
      );
      res.status(204).set('Cache-Control', 'no-store').end();
      return;
    }
    const stored = events.append({ ...report.event, time: now(), mac });
    options.rollouts?.reported(mac, stored);
    log.info(
      { event: 'host-event', mac, source: stored.source, stage: stored.stage, detail: stored.detail, domain: stored.domain, remote: req.socket.remoteAddress },
      'host event',
    );
    res.status(204).set('Cache-Control', 'no-store').end();
    void options.observer?.reported(mac, stored.stage);
  });

  // iPXE's failure reports: the step that failed and iPXE's error number, from
  // the `:failed` label of the host's boot script. No token (iPXE sends no
  // header of ours): taken only from the host's own address.
  app.get('/hosts/:mac/ipxe-failed/:step/:errno', async (req: Request, res: Response) => {
    const mac = macParameter(req, res);
    if (mac === undefined) return;
    const reports = options.ipxeReports;
    if (reports === undefined) {
      text(res.status(404), 'rackboot: this server takes no iPXE reports\n');
      return;
    }
    const parsed = parseIpxeFailure(String(req.params.step), String(req.params.errno));
    if (!parsed.ok) {
      text(res.status(400), `rackboot: ${parsed.field}: ${parsed.message}\n`);
      return;
    }
    const address = remoteAddress(req);
    const sender = address === undefined ? undefined : await reports.senderOf(address);
    if (sender !== mac) {
      log.warn({ event: 'host-event-refused', mac, stage: 'failed', remote: address, sender }, 'iPXE report refused: not from the host');
      options.observer?.hostRefused('event');
      text(
        res.status(403),
        `rackboot: reports about ${mac} are taken only from that host: ${address ?? 'this sender'} is ${sender ?? "no host of rackboot's"}\n`,
      );
      return;
    }
    const detail = describeIpxeFailure(parsed.failure);
    const stored = events.append({ source: 'http', stage: 'failed', detail, time: now(), mac });
    options.rollouts?.reported(mac, stored);
    reports.log(mac, detail);
    log.warn({ event: 'host-event', mac, source: stored.source, stage: stored.stage, detail, remote: address }, 'host event');
    text(res.status(200).set('Cache-Control', 'no-store'), 'rackboot: noted\n');
    void options.observer?.reported(mac, stored.stage);
  });

  // What the host's runtime found on its disks (builder/runtime/storage-scan),
  // and its guests' network counters: the formats are rackboot's own
  // (storage/report.ts), sent as the body whatever its Content-Type says.
  // The newest report of each kind replaces the last.
  const hostReportRoute = (
    kind: HostReportKind,
    parse: (text: string) => { ok: true; report: unknown } | { ok: false; line: number; message: string },
    summary: (report: never) => string,
  ) => {
    const what = kind === 'storage' ? 'storage report' : 'guest network report';
    app.post(`/hosts/:mac/${kind}`, express.text({ type: () => true, limit: maximumStorageReportBytes }), (req: Request, res: Response) => {
      const mac = macParameter(req, res);
      if (mac === undefined) return;
      const reason = reportRefusal(req, mac, kind);
      if (reason !== undefined) {
        log.warn({ event: `host-${kind}-refused`, mac, remote: remoteAddress(req), reason }, `${what} refused: not from the host`);
        options.observer?.hostRefused(kind);
        text(res.status(403), `rackboot: reports about ${mac} are taken only from that host, with its token: ${reason}\n`);
        return;
      }
      const parsed = parse(typeof req.body === 'string' ? req.body : '');
      if (!parsed.ok) {
        log.info({ event: `host-${kind}-refused`, mac, line: parsed.line, reason: parsed.message, remote: remoteAddress(req) }, `${what} refused`);
        text(res.status(400), `rackboot: ${what}${parsed.line > 0 ? ` line ${parsed.line}` : ''}: ${parsed.message}\n`);
        return;
      }
      events.putHostReport({ mac, kind, time: now(), body: JSON.stringify(parsed.report) });
      log.info({ event: `host-${kind}`, mac, [kind]: summary(parsed.report as never), remote: remoteAddress(req) }, `host ${kind}`);
      res.status(204).set('Cache-Control', 'no-store').end();
    });
  };
  hostReportRoute('storage', parseStorageReport, summarizeStorage);
  hostReportRoute('network', parseGuestNetworkReport, summarizeGuestNetwork);

  // The runtime's heartbeat: its boot token every 30 s, so that a token
  // superseded by another boot of the MAC is seen (the two-boots alarm,
  // token-use.ts) while both run. Nothing is written to the timeline.
  app.post('/hosts/:mac/alive', (req: Request, res: Response) => {
    const mac = macParameter(req, res);
    if (mac === undefined) return;
    const reason = reportRefusal(req, mac, 'alive');
    if (reason !== undefined) {
      log.info({ event: 'host-alive-refused', mac, remote: remoteAddress(req), reason }, 'heartbeat refused');
      options.observer?.hostRefused('alive');
      text(res.status(403), `rackboot: ${reason}\n`);
      return;
    }
    // A rollout may want this host on another build: the answer asks its runtime to reboot (rollout --reboot).
    const claims = options.secrets?.tokens.read(mac, req.get(hostTokenHeader));
    const running = claims === undefined ? undefined : options.secrets!.ledger.buildOf(claims);
    if (options.rollouts?.rebootFor(mac, running) === true) {
      text(res.status(200).set('Cache-Control', 'no-store'), 'reboot\n');
      return;
    }
    res.status(204).set('Cache-Control', 'no-store').end();
  });

  app.get('/hosts/:mac/events', async (req, res) => {
    const mac = macParameter(req, res);
    if (mac === undefined) return;
    // What the servers saw is written in batches: write it before reading.
    await options.observer?.settle();
    const list = events.listByHost(mac, { limit: eventListLimit }).map((event) => ({ ...event, time: new Date(event.time).toISOString() }));
    res.set('Cache-Control', 'no-store').json(list);
  });

  app.get('/hosts/:mac/runtime.env', async (req, res) => {
    const boot = await sendHostFile(req, res, 'runtime.env', platformOf(undefined));
    if (boot?.kind === 'boot') log.info({ event: 'runtime-env', mac: boot.plan.mac, hostname: boot.plan.profile.hostname }, 'runtime settings');
  });

  const sendBuildFile = async (res: Response, name: string, buildId?: string) => {
    const file = await assets.file(name, buildId);
    if (!file) {
      text(res.status(404), `rackboot: no file "${name}" in ${buildId ? `build ${buildId}` : 'the current build'}\n`);
      return;
    }
    // sendDownload answers HEAD, Range and conditional requests (strong
    // ETag from the manifest's sha256). A build folder is immutable once
    // written, so its files may be cached, by clients and in memory.
    try {
      const { mtime } = await stat(file.path);
      await sendDownload(
        res.req.method,
        res.req.headers,
        res,
        // Content-Type by file name as before (initrd.gz: application/gzip), else octet-stream.
        { path: file.path, size: file.entry.size, sha256: file.entry.sha256, mtime, type: String(res.type(name).getHeader('Content-Type')) },
        { cacheControl: buildId ? 'public, max-age=31536000, immutable' : 'no-cache', cache: fileCache, sendfile: options.sendfile !== false },
      );
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || code === 'EPIPE') return; // the client went away
      log.warn({ event: 'http-file', file: file.path, err: (error as Error).message }, 'boot file not sent');
      if (!res.headersSent) text(res.status(500), `rackboot: could not send "${name}": ${(error as Error).message}\n`);
      else res.destroy();
    }
  };

  app.get('/builds/:build/:file', (req, res) => sendBuildFile(res, String(req.params.file), String(req.params.build)));
  // A build by its digest alone: the short URLs of BIOS multiboot lines (resolve.ts).
  app.get('/b/:digest/:file', async (req, res) => {
    const build = await assets.byDigest(String(req.params.digest));
    if (!build) {
      text(res.status(404), `rackboot: no build with digest "${String(req.params.digest)}"\n`);
      return;
    }
    await sendBuildFile(res, String(req.params.file), build.id);
  });
  app.get('/:file', async (req, res) => {
    const name = String(req.params.file);
    const address = remoteAddress(req);
    const loaderBuild = LOADER_FILES.has(name) && address !== undefined ? await options.loaderBuild?.(address) : undefined;
    await sendBuildFile(res, name, loaderBuild);
  });

  // Bodies the parsers refuse (bad JSON, too large) get a 400 naming the body,
  // as every other bad request does, instead of express's HTML page.
  app.use((error: Error & { status?: number; type?: string }, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(error);
    const status = typeof error.status === 'number' && error.status >= 400 && error.status < 500 ? error.status : 500;
    const reason =
      error.type === 'entity.too.large'
        ? `larger than ${eventBodyLimit}`
        : error.type === 'entity.parse.failed'
          ? `not valid JSON (${error.message})`
          : error.message;
    if (status === 500) log.warn({ event: 'http-error', err: error.message }, 'request failed');
    text(res.status(status), `rackboot: body: ${reason}\n`);
  });

  return app;
}
