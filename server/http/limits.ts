import { createServer, type RequestListener, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { heldBy } from '../net/port-holder.js';
import { RateLimitedLog, type Logger } from '../log.js';

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

/**
 * Caps a server's connections: the total by Node's own maxConnections
 * (refused before a socket is made; its 'drop' event tells), per remote
 * address here, closing those past it at once. Keeps the server alive
 * through accept errors (EMFILE when descriptors run out): those are
 * logged, rate-limited, rather than thrown.
 */
function limitConnections(server: Server, limits: HttpLimits, log: Logger, onRefused?: (reason: ConnectionRefusal) => void): { stop(): void } {
  const perAddress = new Map<string, number>();
  const refusals = new RateLimitedLog((counts, last) =>
    log.warn({ event: 'http-connection-refused', ...last, counts }, 'http: connections refused (caps reached)'),
  );
  const acceptErrors = new RateLimitedLog((counts, last) => log.warn({ event: 'http-accept-failed', ...last, counts }, 'http: accepting a connection failed'));
  const refused = (reason: ConnectionRefusal, remote: string | undefined) => {
    refusals.note(reason, { remote });
    onRefused?.(reason);
  };

  server.maxConnections = limits.maxConnections;
  server.on('drop', (dropped?: { remoteAddress?: string }) => refused('total', dropped?.remoteAddress));
  server.on('connection', (socket: Socket) => {
    const remote = socket.remoteAddress ?? 'unknown';
    const fromAddress = perAddress.get(remote) ?? 0;
    if (fromAddress >= limits.maxConnectionsPerAddress) {
      socket.destroy();
      refused('per-address', remote);
      return;
    }
    perAddress.set(remote, fromAddress + 1);
    socket.once('close', () => {
      const left = (perAddress.get(remote) ?? 1) - 1;
      if (left > 0) perAddress.set(remote, left);
      else perAddress.delete(remote);
    });
  });
  server.on('error', (error: NodeJS.ErrnoException) => acceptErrors.note(error.code ?? 'error', { err: error.message }));
  return {
    stop: () => {
      refusals.stop();
      acceptErrors.stop();
    },
  };
}

export interface ListeningHttp {
  server: Server;
  /**
   * Stop accepting connections, close idle keep-alive ones as they become
   * idle, and wait up to `deadlineMs` for requests in flight (downloads) to
   * finish; returns how many connections are still open. close() ends them.
   */
  drain(deadlineMs: number): Promise<number>;
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
      reject(
        Object.assign(
          new Error(`http: cannot listen on ${options.address}:${options.port}: ${error.code ?? error.message}${heldBy(error, 'tcp', options.port)}`),
          {
            code: error.code,
            cause: error,
          },
        ),
      );
    };
    server.once('error', failed);
    server.listen(options.port, options.address, () => {
      server.off('error', failed);
      const connections = limitConnections(server, limits, options.log, options.onRefused);
      let closed: Promise<void> | undefined;
      const stopListening = () => (closed ??= new Promise<void>((done) => server.close(() => done())));
      const open = () => new Promise<number>((done) => server.getConnections((error, count) => done(error ? 0 : count)));
      resolve({
        server,
        drain: async (deadlineMs) => {
          void stopListening();
          const until = Date.now() + deadlineMs;
          for (;;) {
            // A keep-alive connection goes idle after each response: close it then.
            server.closeIdleConnections();
            const left = await open();
            if (left === 0 || Date.now() >= until) return left;
            await new Promise((done) => setTimeout(done, 50));
          }
        },
        close: async () => {
          connections.stop();
          const done = stopListening();
          // Keep-alive and streaming clients would hold close() open.
          server.closeAllConnections();
          await done;
        },
      });
    });
  });
}
