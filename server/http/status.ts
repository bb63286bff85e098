import express, { type Request, type Response, type Router } from 'express';
import type { Logger } from '../log.js';
import { statusPage } from '../status/page.js';
import { takeSnapshot, type StatusSnapshot, type StatusSources } from '../status/snapshot.js';

export interface StatusRouterOptions {
  sources: StatusSources;
  log: Logger;
  /** How often live pages are sent what changed; default 1 s. */
  intervalMs?: number;
  /** Live pages at once; past it a page falls back to polling. Default 50. */
  maxStreams?: number;
}

export interface StatusRouter {
  router: Router;
  /** Ends every live stream (the server is stopping). */
  close(): void;
}

/**
 * The status page: GET /status (the page), /status/state.json (the same
 * data as JSON) and /status/stream (server-sent events: a `state` event with
 * the whole snapshot whenever it changed, checked every second). Read-only,
 * and it shows no secrets (no hashes, keys or tokens), so it is open like
 * the boot endpoints.
 */
export function createStatusRouter(options: StatusRouterOptions): StatusRouter {
  const { sources, log } = options;
  const intervalMs = options.intervalMs ?? 1000;
  const maxStreams = options.maxStreams ?? 50;
  const router = express.Router();
  const streams = new Set<Response>();
  let timer: NodeJS.Timeout | undefined;
  let last = '';
  let ticking = false;

  const broadcast = async () => {
    if (ticking) return;
    ticking = true;
    try {
      const json = JSON.stringify(await takeSnapshot(sources));
      if (json === last) return;
      last = json;
      for (const stream of streams) stream.write(`event: state\ndata: ${json}\n\n`);
    } catch (error) {
      log.warn({ err: error }, 'status: snapshot failed');
    } finally {
      ticking = false;
    }
  };

  router.get('/', (_req, res) => {
    res.type('html').set('Cache-Control', 'no-store').send(statusPage());
  });

  router.get('/state.json', async (_req, res) => {
    const snapshot: StatusSnapshot = await takeSnapshot(sources);
    res.set('Cache-Control', 'no-store').json(snapshot);
  });

  router.get('/stream', async (req: Request, res: Response) => {
    if (streams.size >= maxStreams) {
      res.status(503).set('Retry-After', '10').json({ error: `${maxStreams} live status pages are open already` });
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
    res.write(`retry: 2000\nevent: state\ndata: ${JSON.stringify(await takeSnapshot(sources))}\n\n`);
    streams.add(res);
    timer ??= setInterval(() => void broadcast(), intervalMs);
    req.on('close', () => {
      streams.delete(res);
      if (streams.size === 0 && timer) {
        clearInterval(timer);
        timer = undefined;
        last = '';
      }
    });
  });

  return {
    router,
    close: () => {
      if (timer) clearInterval(timer);
      timer = undefined;
      for (const stream of streams) stream.end();
      streams.clear();
    },
  };
}
