import express, { type Request, type Response } from 'express';
import type { AssetStore } from '../assets/builds.js';
import { platformOf, type Platform } from '../boot/facts.js';
import { renderEntryScript, renderHostScript, renderRuntimeEnv, renderXenConfig } from '../boot/render.js';
import { resolveHostBoot, type HostBoot, type ServerEndpoints } from '../boot/resolve.js';
import type { Logger } from '../log.js';
import { normaliseMac } from '../profiles/mac.js';
import type { Profile } from '../profiles/profile.js';

export interface HttpAppOptions {
  assets: AssetStore;
  /** The profile a MAC resolves to (its own, else the default), or undefined. */
  lookupProfile: (mac: string) => Profile | undefined;
  /** Errors of a host's own profile file when it is not served (shown on the machine's console). */
  profileProblems?: (mac: string) => string[];
  endpoints: ServerEndpoints;
  log: Logger;
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
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      log.info(
        {
          event: 'http',
          method: req.method,
          path: req.originalUrl,
          status: res.statusCode,
          bytes: Number(res.getHeader('content-length') ?? 0),
          remote: req.socket.remoteAddress,
          ms: Number((process.hrtime.bigint() - started) / 1000n) / 1000,
        },
        'http request',
      );
    });
    next();
  });

  const text = (res: Response, body: string, type = 'text/plain') => {
    res.type(type).set('Cache-Control', 'no-store').send(body);
  };

  app.get('/boot.ipxe', (_req, res) => text(res, renderEntryScript(endpoints)));

  /** Resolve a host request; answers the error itself and returns undefined on a bad MAC. */
  const hostBoot = async (req: Request, res: Response, platform: Platform, buildId?: string): Promise<HostBoot | undefined> => {
    const mac = normaliseMac(String(req.params.mac));
    if (!mac) {
      text(res.status(400), `rackboot: "${String(req.params.mac)}" is not a MAC address\n`);
      return undefined;
    }
    const build = buildId === undefined ? await assets.current() : await assets.build(buildId);
    if (buildId !== undefined && !build) {
      text(res.status(404), `rackboot: no build "${buildId}"\n`);
      return undefined;
    }
    const problems = options.profileProblems?.(mac) ?? [];
    return resolveHostBoot({ mac, platform, profile: options.lookupProfile(mac), problems, build, endpoints });
  };

  app.get('/hosts/:mac/boot.ipxe', async (req, res) => {
    const platform = platformFromQuery(req.query.platform);
    if (!platform) {
      text(res.status(400), `rackboot: unknown platform "${String(req.query.platform)}" (want pcbios or efi)\n`);
      return;
    }
    const boot = await hostBoot(req, res, platform);
    if (!boot) return;
    log.info(
      { event: 'boot-script', mac: boot.kind === 'boot' ? boot.plan.mac : boot.mac, platform, result: boot.kind,
        hostname: boot.kind === 'boot' ? boot.plan.profile.hostname : undefined },
      'boot script',
    );
    text(res, renderHostScript(boot, endpoints));
  });

  app.get('/hosts/:mac/builds/:build/xen.cfg', async (req, res) => {
    const boot = await hostBoot(req, res, 'efi64', String(req.params.build));
    if (!boot) return;
    if (boot.kind !== 'boot') {
      text(res.status(404), `rackboot: ${boot.kind.replace('-', ' ')} for ${boot.mac}\n`);
      return;
    }
    text(res, renderXenConfig(boot.plan));
  });

  app.get('/hosts/:mac/runtime.env', async (req, res) => {
    const boot = await hostBoot(req, res, platformOf(undefined));
    if (!boot) return;
    if (boot.kind !== 'boot') {
      text(res.status(404), `# rackboot: ${boot.kind.replace('-', ' ')} for ${boot.mac}\n`);
      return;
    }
    log.info({ event: 'runtime-env', mac: boot.plan.mac, hostname: boot.plan.profile.hostname }, 'runtime settings');
    text(res, renderRuntimeEnv(boot.plan));
  });

  const sendBuildFile = async (res: Response, name: string, buildId?: string) => {
    const file = await assets.file(name, buildId);
    if (!file) {
      text(res.status(404), `rackboot: no file "${name}" in ${buildId ? `build ${buildId}` : 'the current build'}\n`);
      return;
    }
    // sendFile answers HEAD, Range and conditional requests; the build
    // folder is immutable once written, so its files may be cached.
    // dotfiles: the path comes from the manifest, not the request, and an
    // assets folder may well sit below a dot-folder (~/.cache, test/.work).
    res.sendFile(
      file.path,
      { dotfiles: 'allow', headers: { 'Cache-Control': buildId ? 'public, max-age=31536000, immutable' : 'no-cache' } },
      (error?: Error) => {
        if (!error) return;
        log.warn({ event: 'http-file', file: file.path, err: error.message }, 'boot file not sent');
        if (!res.headersSent) text(res.status(500), `rackboot: could not send "${name}": ${error.message}\n`);
      },
    );
  };

  app.get('/builds/:build/:file', (req, res) => sendBuildFile(res, String(req.params.file), String(req.params.build)));
  app.get('/:file', (req, res) => sendBuildFile(res, String(req.params.file)));

  return app;
}
