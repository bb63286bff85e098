import { stat } from 'node:fs/promises';
import express, { type Request, type Response } from 'express';
import { platformOf, type Platform } from '../boot/facts.js';
import { hostFile, type HostFileName, type HostSources } from '../boot/host-files.js';
import { renderEntryScript } from '../boot/render.js';
import type { Logger } from '../log.js';
import { downloadsRouter, sendDownload } from './downloads.js';
import { FileCache } from './file-cache.js';

export interface HttpAppOptions extends HostSources {
  log: Logger;
  /** Memory for hot build files (see FileCache); default 256 MiB, 0 streams every file from disk. */
  fileCacheBytes?: number;
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

  const fileCache = new FileCache(options.fileCacheBytes ?? 256 * 1024 * 1024);
  app.use(downloadsRouter({ ...options, fileCache }));

  app.get('/boot.ipxe', (_req, res) => text(res, renderEntryScript(endpoints)));

  /** A generated per-host file, or the reason there is none (a comment line for runtime.env). */
  const sendHostFile = async (req: Request, res: Response, name: HostFileName, platform: Platform, buildId?: string) => {
    const file = await hostFile(options, { mac: String(req.params.mac), name, platform, ...(buildId === undefined ? {} : { buildId }) });
    if (file.kind === 'refused') {
      text(res.status(file.status), `${name === 'runtime.env' ? '# ' : ''}rackboot: ${file.message}\n`);
      return undefined;
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
    log.info(
      { event: 'boot-script', mac: boot.kind === 'boot' ? boot.plan.mac : boot.mac, platform, result: boot.kind,
        hostname: boot.kind === 'boot' ? boot.plan.profile.hostname : undefined },
      'boot script',
    );
  });

  app.get('/hosts/:mac/builds/:build/xen.cfg', async (req, res) => {
    await sendHostFile(req, res, 'xen.cfg', 'efi64', String(req.params.build));
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
        { cacheControl: buildId ? 'public, max-age=31536000, immutable' : 'no-cache', cache: fileCache },
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
  app.get('/:file', (req, res) => sendBuildFile(res, String(req.params.file)));

  return app;
}
