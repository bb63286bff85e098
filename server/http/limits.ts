import { createServer, type RequestListener, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../log.js';

/**
 * What one client may hold of the HTTP server. Connections past a cap are
 * closed as soon as they are accepted; idle ones are closed by the timeouts,
 * so a client that opens thousands of sockets and sends nothing takes
 * neither descriptors nor memory from the machines that boot.
 */
export interface HttpLimits {
  /** Connections open at once, from everyone. */
  maxConnections: number;
  /** Connections open at once from one remote address. */
  maxConnectionsPerAddress: number;
  /** A request's headers must arrive within this (slowloris; also a connection that sends nothing). */
  headersTimeoutMs: number;
  /**
   * A whole request (headers and body) must arrive within this. It bounds
   * receiving only: the answer, a 70 MB image to a slow reader, may take
   * as long as it takes.
   */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** How often the server looks for requests past their timeouts. */
  checkIntervalMs: number;
}

export const defaultHttpLimits: HttpLimits = {
  maxConnections: 1024,
  maxConnectionsPerAddress: 64,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  checkIntervalMs: 1_000,
};

/** Why a connection was closed on arrival. */
export type ConnectionRefusal = 'total' | 'per-address';

/** Whether one more connection from an address fits. Pure. */
export function admitConnection(open: { total: number; fromAddress: number }, limits: Pick<HttpLimits, 'maxConnections' | 'maxConnectionsPerAddress'>): ConnectionRefusal | undefined {
  if (open.total >= limits.maxConnections) return 'total';
  if (open.fromAddress >= limits.maxConnectionsPerAddress) return 'per-address';
  return undefined;
}

/**
 * Summary log lines: the first event of a quiet period is logged at once,
 * the rest are counted and logged as one line per `windowMs`, so a flood
 * costs a few lines rather than one per refused connection.
 */
export class RateLimitedLog {
  private counts = new Map<string, number>();
  private last: Record<string, unknown> = {};
  private timer: NodeJS.Timeout | undefined;
  total = 0;

  constructor(
    private readonly write: (fields: Record<string, unknown>) => void,
    private readonly windowMs = 10_000,
  ) {}

  note(reason: string, fields: Record<string, unknown> = {}): void {
    this.total += 1;
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + 1);
    this.last = fields;
    if (this.timer === undefined) {
      this.flush();
      this.arm();
    }
  }

  private arm(): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.counts.size > 0) {
        this.flush();
        this.arm();
      }
    }, this.windowMs);
    this.timer.unref();
  }

  private flush(): void {
    this.write({ ...this.last, counts: Object.fromEntries(this.counts), total: this.total });
    this.counts = new Map();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** The connections a server holds, per remote address, and those it refused. */
export interface ConnectionStats {
  open: number;
  addresses: number;
  refused: number;
}

/**
 * Counts a server's connections, closes those past the caps at once, and
 * keeps the server alive through accept errors (EMFILE when descriptors run
 * out): those are logged, rate-limited, rather than thrown.
 */
export function limitConnections(
  server: Server,
  limits: HttpLimits,
  log: Logger,
  onRefused?: (reason: ConnectionRefusal) => void,
): { stats(): ConnectionStats; stop(): void } {
  const perAddress = new Map<string, number>();
  let open = 0;
  const refusals = new RateLimitedLog((fields) => log.warn({ event: 'http-connection-refused', ...fields }, 'http: connections refused (caps reached)'));
  const acceptErrors = new RateLimitedLog((fields) => log.warn({ event: 'http-accept-failed', ...fields }, 'http: accepting a connection failed'));

  server.on('connection', (socket: Socket) => {
    const remote = socket.remoteAddress ?? 'unknown';
    const fromAddress = perAddress.get(remote) ?? 0;
    const refusal = admitConnection({ total: open, fromAddress }, limits);
    if (refusal !== undefined) {
      socket.destroy();
      refusals.note(refusal, { remote, open, fromAddress });
      onRefused?.(refusal);
      return;
    }
    open += 1;
    perAddress.set(remote, fromAddress + 1);
    socket.once('close', () => {
      open -= 1;
      const left = (perAddress.get(remote) ?? 1) - 1;
      if (left > 0) perAddress.set(remote, left);
      else perAddress.delete(remote);
    });
  });
  server.on('error', (error: NodeJS.ErrnoException) => acceptErrors.note(error.code ?? 'error', { err: error.message }));
  return {
    stats: () => ({ open, addresses: perAddress.size, refused: refusals.total }),
    stop: () => {
      refusals.stop();
      acceptErrors.stop();
    },
  };
}

export interface ListeningHttp {
  server: Server;
  stats(): ConnectionStats;
  close(): Promise<void>;
}

/**
 * An HTTP server for `handler` with the limits above, listening on
 * address:port. Rejects when the bind fails (EADDRINUSE, EADDRNOTAVAIL,
 * EACCES): a server that is not listening never says it is.
 */
export function listenHttp(
  handler: RequestListener,
  options: { port: number; address: string; limits?: Partial<HttpLimits>; log: Logger; onRefused?: (reason: ConnectionRefusal) => void },
): Promise<ListeningHttp> {
  const limits = { ...defaultHttpLimits, ...options.limits };
  const server = createServer({ connectionsCheckingInterval: limits.checkIntervalMs }, handler);
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  return new Promise((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException) => {
      reject(Object.assign(new Error(`http: cannot listen on ${options.address}:${options.port}: ${error.code ?? error.message}`), { code: error.code, cause: error }));
    };
    server.once('error', failed);
    server.listen(options.port, options.address, () => {
      server.off('error', failed);
      const connections = limitConnections(server, limits, options.log, options.onRefused);
      resolve({
        server,
        stats: connections.stats,
        close: () =>
          new Promise((done) => {
            connections.stop();
            server.close(() => done());
            // Keep-alive and streaming clients would hold close() open.
            server.closeAllConnections();
          }),
      });
    });
  });
}
