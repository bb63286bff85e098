import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileFromBuffer, fileFromDisk, type TftpFile } from '../../../server/tftp/io/file.js';
import { TftpServer, type TftpEvent, type TftpServerOptions } from '../../../server/tftp/server.js';
import { capturingLogger } from './logs.js';

export interface ServerFixture {
  server: TftpServer;
  port: number;
  /** Folder served from disk, removed by close(). */
  dir: string;
  events: TftpEvent[];
  lines: Array<Record<string, unknown>>;
  /** Every path handed to resolve(). */
  resolved: string[];
  /** In-memory files, looked up before the folder. */
  memory: Map<string, TftpFile>;
  /** Put random bytes in the folder; returns the bytes. */
  writeRandomFile(name: string, size: number): Buffer;
  waitForEvent<K extends TftpEvent['kind']>(
    kind: K,
    predicate?: (event: Extract<TftpEvent, { kind: K }>) => boolean,
    timeoutMs?: number,
  ): Promise<Extract<TftpEvent, { kind: K }>>;
  close(): Promise<void>;
}

/** A server on 127.0.0.1 and a free port, serving a fresh temporary folder. */
export async function startServer(overrides: Partial<TftpServerOptions> = {}): Promise<ServerFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'rackboot-tftp-'));
  const { log, lines } = capturingLogger();
  const events: TftpEvent[] = [];
  const resolved: string[] = [];
  const memory = new Map<string, TftpFile>();
  const listeners = new Set<() => void>();
  const server = new TftpServer({
    address: '127.0.0.1',
    port: 0,
    log,
    resolve: async (path) => {
      resolved.push(path);
      const inMemory = memory.get(path);
      if (inMemory !== undefined) return inMemory;
      try {
        return await fileFromDisk(join(dir, path));
      } catch (err) {
        if ((err as { code?: string }).code === 'ENOENT') return undefined;
        throw err;
      }
    },
    onEvent: (event) => {
      events.push(event);
      for (const listener of listeners) listener();
    },
    ...overrides,
  });
  try {
    await server.start();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    server,
    port: server.port,
    dir,
    events,
    lines,
    resolved,
    memory,
    writeRandomFile(name, size) {
      const content = randomBytes(size);
      writeFileSync(join(dir, name), content);
      return content;
    },
    waitForEvent(kind, predicate = () => true, timeoutMs = 10_000) {
      type Wanted = Extract<TftpEvent, { kind: typeof kind }>;
      const find = (): Wanted | undefined => events.find((event): event is Wanted => event.kind === kind && predicate(event as Wanted));
      return new Promise<Wanted>((resolve, reject) => {
        const check = (): void => {
          const found = find();
          if (found === undefined) return;
          listeners.delete(check);
          clearTimeout(timer);
          resolve(found);
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`no ${kind} event within ${timeoutMs} ms; saw ${events.map((event) => event.kind).join(', ')}`));
        }, timeoutMs);
        listeners.add(check);
        check();
      });
    },
    async close() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export { fileFromBuffer };

/**
 * Fail (never skip) when a client program the test needs is missing, with
 * the package that provides it.
 */
export function requireTool(name: string, debianPackage: string): void {
  const found = (process.env.PATH ?? '').split(delimiter).some((folder) => {
    try {
      accessSync(join(folder, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  if (!found) throw new Error(`${name} is not installed; this test needs it (apt-get install ${debianPackage})`);
}

export interface ToolResult {
  code: number | null;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** Run a client program; resolves with its exit status instead of throwing. */
export function runTool(cmd: string, args: string[], timeoutMs = 60_000): Promise<ToolResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
      resolve({ code, stdout, stderr, durationMs: performance.now() - started });
    });
  });
}
