import express, { type Request, type Response, type Router } from 'express';
import type { Logger } from '../log.js';
import { normaliseMac } from '../profiles/mac.js';
import { hostPage } from '../status/host-page.js';
import { hostPageData } from '../status/host-page-data.js';
import { statusPage } from '../status/page.js';
import { takeSnapshot, type StatusSnapshot, type StatusSources } from '../status/snapshot.js';

export interface StatusRouterOptions {
  sources: StatusSources;
  log: Logger;
  /** How often live pages are sent what changed; default 1 s. */
  intervalMs?: number;
  /** Live pages at once; past it a page falls back to polling. Default 50. */
  maxStreams?: number;
  /**
   * A live page whose unsent data passes this many bytes is not reading
   * (or reads too slowly to follow): it is dropped rather than buffered
   * without end. Default 4 MiB.
   */
  maxBufferedBytes?: number;
  /** A comment line is sent after this long without a change, so a reading page's connection stays in use. Default 15 s. */
  heartbeatMs?: number;
}

export interface StatusRouter {
  router: Router;
  /** Ends every live stream (the server is stopping). */
  close(): void;
  /** Live streams open now, and those dropped for not reading. */
  streams(): { open: number; dropped: number };
}

/**
 * The status page: GET /status (the page), /status/state.json (the same
 * data as JSON) and /status/stream (server-sent events: a `state` event with
 * the whole snapshot whenever it changed, checked every second); and a
 * page per host, /status/hosts/<mac> with its data at
 * /status/hosts/<mac>.json. Read-only, and it shows no secrets (no hashes,
 * keys or tokens), so it is open like the boot endpoints. A host's log is
 * not open: its page asks the admin API for it, with the admin token.
 */
export function createStatusRouter(options: StatusRouterOptions): StatusRouter {
  const { sources, log } = options;
  const intervalMs = options.intervalMs ?? 1000;
  const maxStreams = options.maxStreams ?? 50;
  const maxBufferedBytes = options.maxBufferedBytes ?? 4 * 1024 * 1024;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const router = express.Router();
  const streams = new Set<Response>();
  /** Slots taken, counted when a request is let in (before anything is awaited), freed when it closes. */
  let slots = 0;
  let dropped = 0;
  let timer: NodeJS.Timeout | undefined;
  let last = '';
  let lastSentAt = Date.now();
  /**
   * One snapshot at a time, shared by everyone who asks while it is made:
   * the tick, new live pages and state.json (50 pages opening at once cost
   * one snapshot, not 50).
   */
  let making: Promise<string> | undefined;
  const snapshotJson = (): Promise<string> =>
    (making ??= takeSnapshot(sources)
      .then((snapshot: StatusSnapshot) => JSON.stringify(snapshot))
      .finally(() => (making = undefined)));

  /** Write to a stream unless it has not taken what it was sent before: then it is dropped. */
  const send = (stream: Response, text: string) => {
    if (stream.writableLength > maxBufferedBytes) {
      dropped += 1;
      streams.delete(stream);
      log.info(
        { event: 'status-stream-dropped', remote: stream.req.socket.remoteAddress, buffered: stream.writableLength },
        'status: live page dropped (not reading)',
      );
      stream.destroy();
      return;
    }
    stream.write(text);
  };

  const broadcast = async () => {
    try {
      const json = await snapshotJson();
      if (json === last) {
        if (Date.now() - lastSentAt >= heartbeatMs) {
          lastSentAt = Date.now();
          for (const stream of streams) send(stream, ':\n\n');
        }
        return;
      }
      last = json;
      lastSentAt = Date.now();
      for (const stream of streams) send(stream, `event: state\ndata: ${json}\n\n`);
    } catch (error) {
      log.warn({ err: error }, 'status: snapshot failed');
    }
  };

  router.get('/', (_req, res) => {
    res.type('html').set('Cache-Control', 'no-store').send(statusPage());
  });

  router.get('/state.json', async (_req, res) => {
    res
      .type('json')
      .set('Cache-Control', 'no-store')
      .send(await snapshotJson());
  });

  // /status/hosts/<mac> is the page, /status/hosts/<mac>.json its data; any MAC spelling normaliseMac takes.
  router.get('/hosts/:file', async (req: Request, res: Response) => {
    const file = String(req.params.file);
    const json = file.endsWith('.json');
    const asked = json ? file.slice(0, -'.json'.length) : file;
    const mac = normaliseMac(asked);
    const notFound = (message: string) => {
      res.status(404).set('Cache-Control', 'no-store');
      // The message names what was asked for: as JSON or plain text, never as HTML.
      if (json) res.json({ error: message });
      else res.type('text/plain').send(`${message}\n`);
    };
    if (mac === undefined) {
      notFound(`${JSON.stringify(asked.slice(0, 64))} is not a MAC address (want 52:54:00:12:34:56, 52-54-00-12-34-56 or 525400123456)`);
      return;
    }
    let detail;
    try {
      detail = await sources.host?.(mac);
    } catch (error) {
      log.warn({ err: error, mac }, 'status: host page failed');
      res.status(500).json({ error: 'host page failed (see the server log)' });
      return;
    }
    if (detail === undefined) {
      notFound(`no host ${mac} has been seen: it has not asked to boot, or it left the host list`);
      return;
    }
    res.set('Cache-Control', 'no-store');
    if (json) res.json(hostPageData(detail));
    else res.type('html').send(hostPage());
  });

  router.get('/stream', async (req: Request, res: Response) => {
    // The slot is taken here, before the first await: parallel requests
    // each see the ones let in before them.
    if (slots >= maxStreams) {
      res
        .status(503)
        .set('Retry-After', '10')
        .json({ error: `${maxStreams} live status pages are open already` });
      return;
    }
    slots += 1;
    let closed = false;
    req.on('close', () => {
      closed = true;
      slots -= 1;
      streams.delete(res);
      if (streams.size === 0 && timer) {
        clearInterval(timer);
        timer = undefined;
        last = '';
      }
    });
    let first: string;
    try {
      first = await snapshotJson();
    } catch (error) {
      log.warn({ err: error }, 'status: snapshot failed');
      if (!closed) res.status(500).json({ error: 'status snapshot failed (see the server log)' });
      return;
    }
    if (closed) return;
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
    res.write(`retry: 2000\nevent: state\ndata: ${first}\n\n`);
    streams.add(res);
    timer ??= setInterval(() => void broadcast(), intervalMs);
  });

  return {
    router,
    close: () => {
      if (timer) clearInterval(timer);
      timer = undefined;
      for (const stream of streams) stream.end();
      streams.clear();
    },
    streams: () => ({ open: streams.size, dropped }),
  };
}
