import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Router, type Request, type Response } from 'express';
import type { AssetStore } from '../assets/builds.js';
import { DEFAULT_CHANNEL, type ManifestChanges } from '../assets/manifest.js';
import { httpBase, type ServerEndpoints } from '../core/resolve.js';
import type { HostSources } from '../core/host-files.js';
import type { AdminToken } from '../admin/token.js';
import { HostIsoCache, hostImageFolder } from '../iso/host-iso.js';
import { isDefaultProfile } from '../profiles/profile.js';
import type { Logger } from '../log.js';
import { normaliseMac } from '../profiles/mac.js';
import { checkAdminToken } from './admin.js';
import type { ImageLinks } from './image-links.js';
import type { FileCache } from './file-cache.js';
import { sendFileBody, sendfileSocket } from './file-send.js';

/**
 * The download area: every build's CD/USB image under /iso/, with a
 * SHA256SUMS beside them, and each host's own image at
 * /hosts/<mac>/rackboot.iso. Downloads resume (Range, 206/416), revalidate
 * (strong ETag from the sha256, If-None-Match, Last-Modified) and answer
 * HEAD, so curl -C -, browsers and iPXE's sanboot all work.
 */

export const ISO_FILE = 'rackboot.iso';

/** One image in the listing. */
export interface DownloadImage {
  /** File name under /iso/: rackboot-<build id>.iso. */
  name: string;
  size: number;
  sha256: string;
  build: string;
  /** Whether it is the default channel's current build. */
  current: boolean;
  /** The channel it was built for (its manifest's; "default" when it names none). */
  channel: string;
  /** The channels whose current build it is, by name (the default one as "default"). */
  currentFor: string[];
  /** What changed since the build before it (`rackboot build --if-changed`), a line each; [] when it recorded none. */
  changes: string[];
}

/** A manifest's changes as lines: each reason, then "package: from -> to". Pure. */
export function changeLines(changes: ManifestChanges | undefined): string[] {
  if (changes === undefined) return [];
  return [...changes.reasons, ...changes.packages.map((change) => `${change.package}: ${change.from ?? '(none)'} -> ${change.to ?? '(none)'}`)];
}

/** A file to send: the validators come from the manifest, not from reading the file. */
export interface DownloadFile {
  path: string;
  size: number;
  sha256: string;
  mtime: Date;
  type?: string;
}

/** What a request for a byte range gets (RFC 9110 section 14). Pure. */
export type RangeDecision = { kind: 'full' } | { kind: 'partial'; start: number; end: number } | { kind: 'unsatisfiable' };

/**
 * Decide on a Range header for a file of `size` bytes. One range only:
 * a multi-range or malformed header is ignored (the whole file is sent),
 * as RFC 9110 section 14.2 allows; a well-formed range that starts past
 * the end is unsatisfiable (416). If-Range with another validator also
 * means the whole file.
 */
export function decideRange(range: string | undefined, size: number, ifRange?: string, etag?: string): RangeDecision {
  if (range === undefined) return { kind: 'full' };
  if (ifRange !== undefined && ifRange !== etag) return { kind: 'full' };
  const m = /^bytes=\s*(\d*)\s*-\s*(\d*)\s*$/.exec(range);
  if (!m || (m[1] === '' && m[2] === '')) return { kind: 'full' };
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) return { kind: 'full' }; // invalid range-spec: ignored
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end };
}

/** Strong entity tag of a file: its sha256. */
export function etagOf(sha256: string): string {
  return `"sha256-${sha256}"`;
}

/**
 * If-None-Match (weak comparison, RFC 9110 section 13.1.2), else
 * If-Modified-Since: true when the client's copy is current. A date later
 * than `now` is not a valid one (RFC 9110 section 13.1.3) and is ignored:
 * otherwise a client could pin any later version of the file as unchanged.
 */
export function notModified(headers: IncomingHttpHeaders, etag: string, mtime: Date, now = Date.now()): boolean {
  const inm = headers['if-none-match'];
  if (inm !== undefined) {
    if (inm.trim() === '*') return true;
    return inm.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
  }
  const ims = headers['if-modified-since'];
  if (ims !== undefined) {
    const since = Date.parse(ims);
    if (Number.isNaN(since) || since > now) return false;
    return Math.floor(mtime.getTime() / 1000) <= Math.floor(since / 1000);
  }
  return false;
}

/** Read-stream chunk size: large reads keep the socket fed with few syscalls. */
const READ_CHUNK = 1024 * 1024;

export interface SendOptions {
  cacheControl?: string;
  /**
   * Send bodies with sendfile(2) where the connection allows (plain TCP);
   * default true. Off, every body is written by Node (from the cache or a
   * read stream), as over TLS.
   */
  sendfile?: boolean;
  /**
   * Immutable files in memory: used while few bodies are in flight (see
   * bodiesInFlight), and wherever sendfile cannot be used, when the file fits.
   */
  cache?: FileCache;
}

/** How a response's body went out: no body (HEAD, 304, 416, empty), sendfile, a cached Buffer, a read stream. */
export type BodyPath = 'none' | 'sendfile' | 'memory' | 'stream';

/**
 * Slices of a cached file handed to the socket at a time. One write of the
 * whole file made 64 clients slower than streaming from disk in bench:http;
 * 256 KiB slices with 'drain' between them did best of 256 KiB, 1 MiB, 4 MiB.
 */
const WRITE_CHUNK = 256 * 1024;

/**
 * Write a slice of a shared Buffer (no copy in Node) in chunks, waiting for
 * 'drain' between them, and resolve once it is sent or reject when the
 * client is gone.
 */
function endWith(res: ServerResponse, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    let offset = 0;
    const finish = () => {
      res.off('close', closed);
      res.off('drain', writeMore);
      resolve();
    };
    const closed = () => {
      res.off('drain', writeMore);
      if (res.writableFinished) resolve();
      else reject(Object.assign(new Error('client closed the connection'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    };
    const writeMore = () => {
      while (offset < data.length) {
        const chunk = data.subarray(offset, offset + WRITE_CHUNK);
        offset += chunk.length;
        if (offset >= data.length) {
          res.end(chunk, finish);
          return;
        }
        if (!res.write(chunk)) return; // 'drain' calls writeMore again
      }
      res.end(finish);
    };
    res.once('close', closed);
    res.on('drain', writeMore);
    writeMore();
  });
}

/**
 * Bodies being sent now, by every route. While there are few, a file that
 * is in the memory cache goes out from there rather than by sendfile(2),
 * which is slower for a few clients (splice takes a page reference per
 * 4 KiB, and a receiver on the same host copies anyway); with many clients
 * sendfile is as fast and spends no CPU on copies (docs/performance.md).
 * Either way memory does not grow with clients: the copy is one per file.
 */
let bodiesInFlight = 0;
const memoryWhileAtMost = 4;

/**
 * Send a file with HEAD, Range, ETag and Last-Modified handling. Works on a
 * bare ServerResponse, so raw http handlers can use it as well. The body
 * goes out with sendfile(2) over plain TCP: no copy through the process and
 * no memory per client, the page cache serving hot files to every client.
 * Elsewhere (TLS, or sendfile off) Node writes it, from the file cache when
 * the file fits, else from a read stream.
 */
export async function sendDownload(
  method: string,
  headers: IncomingHttpHeaders,
  res: ServerResponse,
  file: DownloadFile,
  options: SendOptions = {},
): Promise<BodyPath> {
  const cacheControl = options.cacheControl ?? 'no-cache';
  const etag = etagOf(file.sha256);
  res.setHeader('ETag', etag);
  res.setHeader('Last-Modified', file.mtime.toUTCString());
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('Cache-Control', cacheControl);
  if (notModified(headers, etag, file.mtime)) {
    res.statusCode = 304;
    res.end();
    return 'none';
  }
  const ifRange = typeof headers['if-range'] === 'string' ? headers['if-range'] : undefined;
  const decision = decideRange(typeof headers.range === 'string' ? headers.range : undefined, file.size, ifRange, etag);
  if (decision.kind === 'unsatisfiable') {
    res.statusCode = 416;
    res.setHeader('Content-Range', `bytes */${file.size}`);
    res.setHeader('Content-Type', 'text/plain');
    res.end(`rackboot: range ${String(headers.range)} is outside ${path.basename(file.path)} (${file.size} bytes)\n`);
    return 'none';
  }
  const start = decision.kind === 'partial' ? decision.start : 0;
  const end = decision.kind === 'partial' ? decision.end : file.size - 1;
  res.statusCode = decision.kind === 'partial' ? 206 : 200;
  if (decision.kind === 'partial') res.setHeader('Content-Range', `bytes ${start}-${end}/${file.size}`);
  res.setHeader('Content-Type', file.type ?? 'application/octet-stream');
  res.setHeader('Content-Length', String(end - start + 1));
  if (method === 'HEAD' || end < start) {
    res.end();
    return 'none';
  }
  bodiesInFlight += 1;
  try {
    const hot = bodiesInFlight <= memoryWhileAtMost ? options.cache?.peek(file.path, file.sha256) : undefined;
    if (hot !== undefined && hot.length === file.size) {
      await endWith(res, hot.subarray(start, end + 1));
      return 'memory';
    }
    const socket = options.sendfile === false ? undefined : await sendfileSocket(res);
    if (socket) {
      // Loaded for the next requests (once; files over the budget never are).
      if (options.cache) void options.cache.get(file.path, file.size, file.sha256);
      await sendFileBody(res, socket, file.path, start, end);
      return 'sendfile';
    }
    const cached = await options.cache?.get(file.path, file.size, file.sha256);
    if (cached) {
      await endWith(res, cached.subarray(start, end + 1));
      return 'memory';
    }
    await pipeline(createReadStream(file.path, { start, end, highWaterMark: READ_CHUNK }), res);
    return 'stream';
  } finally {
    bodiesInFlight -= 1;
  }
}

/** Every build's image, newest build first, each with its channel and the channels it is current for. */
export async function listImages(assets: AssetStore): Promise<DownloadImage[]> {
  const currentFor = await assets.currentFor();
  const images: DownloadImage[] = [];
  for (const { id } of (await assets.list()).reverse()) {
    const file = await assets.file(ISO_FILE, id);
    if (!file) continue;
    images.push({
      name: `rackboot-${file.build.id}.iso`,
      size: file.entry.size,
      sha256: file.entry.sha256,
      build: file.build.id,
      current: currentFor.get(file.build.id)?.includes(DEFAULT_CHANNEL) === true,
      channel: file.build.manifest.channel ?? DEFAULT_CHANNEL,
      currentFor: currentFor.get(file.build.id) ?? [],
      changes: changeLines(file.build.manifest.changes),
    });
  }
  return images;
}

/** sha256sum's format, so `sha256sum -c SHA256SUMS` checks a download folder. */
export function renderSha256Sums(images: DownloadImage[]): string {
  return images.map((image) => `${image.sha256}  ${image.name}\n`).join('');
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function renderImageList(images: DownloadImage[]): string {
  const rows = images.map(
    (image) =>
      `<tr><td><a href="/iso/${encodeURIComponent(image.name)}">${escapeHtml(image.name)}</a>` +
      `${image.currentFor.length > 0 ? ` (current: ${escapeHtml(image.currentFor.join(', '))})` : ''}</td>` +
      `<td>${image.size}</td><td><code>${image.sha256}</code></td><td>${escapeHtml(image.build)}</td><td>${escapeHtml(image.channel)}</td>` +
      `<td>${image.changes.map(escapeHtml).join('<br>')}</td></tr>`,
  );
  return [
    '<!doctype html>',
    '<html><head><meta charset="utf-8"><title>rackboot CD/USB images</title></head><body>',
    '<h1>rackboot CD/USB images</h1>',
    '<p>Write an image to a USB stick (<code>dd if=IMAGE of=/dev/sdX bs=4M</code>) or burn it to a CD; it boots BIOS and UEFI machines.',
    ' Check downloads with <a href="/iso/SHA256SUMS">SHA256SUMS</a>.</p>',
    '<table><tr><th>image</th><th>bytes</th><th>sha256</th><th>build</th><th>channel</th><th>changes since the build before</th></tr>',
    ...rows,
    '</table></body></html>',
    '',
  ].join('\n');
}

/**
 * What an iPXE menu entry needs to boot a build's image over HTTP (BIOS:
 * iPXE's sanboot reads the image with HEAD and Range requests and hands it
 * to the firmware as a drive; the image's El Torito/MBR boot code runs from
 * there). The build id pins the image to the parts the rest of the menu uses.
 */
export function isoSanbootUrl(endpoints: ServerEndpoints, buildId: string): string {
  return `${httpBase(endpoints)}/builds/${encodeURIComponent(buildId)}/${ISO_FILE}`;
}

export interface DownloadsOptions extends HostSources {
  log: Logger;
  /** Build images are served from it when they fit and sendfile cannot be used. */
  fileCache?: FileCache;
  /** Send bodies with sendfile(2) over plain TCP; default true. */
  sendfile?: boolean;
  /** The per-host image cache; default one in hostImageFolder(assets) with the default budget. */
  hostImageCache?: HostIsoCache;
  /**
   * Who may download a host's own image: the admin token, or a link signed
   * by `imageLinks`. With neither, per-host images are not served.
   */
  hostImageAccess?: { token?: Pick<AdminToken, 'matches'>; links?: ImageLinks };
}

/** The routes above, mounted with one app.use(). */
export function downloadsRouter(options: DownloadsOptions): Router {
  const { assets, log } = options;
  const router = Router();
  const hostImages = options.hostImageCache ?? new HostIsoCache(hostImageFolder(assets.dir));
  const access = options.hostImageAccess ?? {};

  const send = async (req: Request, res: Response, file: DownloadFile, sendOptions: SendOptions = {}) => {
    try {
      await sendDownload(req.method, req.headers, res, file, { ...sendOptions, sendfile: options.sendfile !== false });
    } catch (error) {
      // A client that goes away mid-download is normal (and how resuming starts).
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ERR_STREAM_PREMATURE_CLOSE' && code !== 'ECONNRESET' && code !== 'EPIPE') {
        log.warn({ event: 'download', file: file.path, err: (error as Error).message }, 'download failed');
      }
      if (!res.headersSent)
        res
          .status(500)
          .type('text/plain')
          .send(`rackboot: could not send ${path.basename(file.path)}\n`);
      else res.destroy();
    }
  };

  // Also answers /iso (routing is not strict): the listing's links are absolute.
  router.get('/iso/', async (req, res) => {
    const images = await listImages(assets);
    res.set('Cache-Control', 'no-cache');
    if (req.accepts(['text/html', 'application/json']) === 'application/json') res.json(images);
    else res.type('text/html').send(renderImageList(images));
  });
  router.get('/iso/SHA256SUMS', async (_req, res) => {
    res
      .type('text/plain')
      .set('Cache-Control', 'no-cache')
      .send(renderSha256Sums(await listImages(assets)));
  });
  router.get('/iso/:name', async (req, res) => {
    const m = /^rackboot-(.+)\.iso$/.exec(String(req.params.name));
    const file = m ? await assets.file(ISO_FILE, m[1]!) : undefined;
    if (!file) {
      res
        .status(404)
        .type('text/plain')
        .send(`rackboot: no image "${String(req.params.name)}" (see /iso/)\n`);
      return;
    }
    const { mtime } = await stat(file.path);
    // A build folder never changes: its image may be cached for good.
    await send(
      req,
      res,
      { path: file.path, size: file.entry.size, sha256: file.entry.sha256, mtime, type: 'application/x-iso9660-image' },
      {
        cacheControl: 'public, max-age=31536000, immutable',
        ...(options.fileCache ? { cache: options.fileCache } : {}),
      },
    );
  });
  // A host's image carries its boot token: an admin download. The admin
  // token (header) or a signed link (?expires=&sig=) made by the admin API,
  // and only for a MAC with a profile of its own, so no stranger can have
  // images made for MACs of its choosing.
  router.get('/hosts/:mac/rackboot.iso', async (req, res) => {
    const started = Date.now();
    const mac = normaliseMac(String(req.params.mac));
    if (mac === undefined) {
      res
        .status(400)
        .type('text/plain')
        .send(`rackboot: "${String(req.params.mac)}" is not a MAC address\n`);
      return;
    }
    const admin = access.token === undefined ? 'no token' : checkAdminToken(req, access.token);
    const link =
      admin === 'ok'
        ? { ok: true as const }
        : (access.links?.check(mac, req.query.expires, req.query.sig) ?? { ok: false as const, reason: 'no link' as const });
    if (!link.ok) {
      // Without a link, a token that was shown and is wrong says more than "no link".
      const reason = link.reason === 'no link' && admin === 'wrong token' ? 'wrong token' : link.reason;
      log.warn({ event: 'host-iso-refused', mac, remote: req.socket.remoteAddress, reason }, 'host image refused');
      if (reason === 'no link') {
        res
          .status(401)
          .set('WWW-Authenticate', 'Bearer realm="rackboot"')
          .type('text/plain')
          .send(
            "rackboot: a host's image is an admin download: send the admin token (Authorization: Bearer), or use a link from POST /api/hosts/<mac>/image-link\n",
          );
      } else {
        res.status(403).type('text/plain').send(`rackboot: ${reason}\n`);
      }
      return;
    }
    const profile = options.lookupProfile(mac);
    if (profile === undefined || isDefaultProfile(profile)) {
      res.status(404).type('text/plain').send(`rackboot: ${mac} has no profile of its own; per-host images are made only for hosts with their own profile\n`);
      return;
    }
    const image = await hostImages.image(options, mac);
    if (image.kind === 'refused') {
      res.status(image.status).type('text/plain').send(`rackboot: ${image.message}\n`);
      return;
    }
    if (!image.cached)
      log.info({ event: 'host-iso', mac: image.mac, hostname: image.hostname, build: image.build, ms: Date.now() - started }, 'host image made');
    try {
      await send(req, res, { path: image.path, size: image.size, sha256: image.sha256, mtime: image.mtime, type: 'application/x-iso9660-image' });
    } finally {
      image.release();
    }
  });
  return router;
}
