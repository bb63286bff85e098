import { spawn, type ChildProcess } from 'node:child_process';
import { cliPath, repoRoot } from './build.js';

export interface Finished {
  /** null when a signal ended it. */
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CollectOptions {
  /** Written to the child's stdin (a pipe, not a terminal), which is then closed. */
  input?: string;
  /** Kill it and fail after this long, naming `what`. */
  timeoutMs?: number;
  what?: string;
}

/** The output and exit of a started child, without blocking the event loop; a non-zero exit is a result, not an error. */
export function collect(child: ChildProcess, options: CollectOptions = {}): Promise<Finished> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  if (options.input !== undefined) child.stdin?.end(options.input);
  return new Promise((resolve, reject) => {
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            child.kill('SIGKILL');
            reject(new Error(`${options.what ?? 'the command'} timed out after ${options.timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
          }, options.timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs a command to its end; `env` adds to this process's environment. */
export function runCommand(cmd: string, args: string[], options: CollectOptions & { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<Finished> {
  const child = spawn(cmd, args, {
    stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
  });
  return collect(child, { what: `${cmd} ${args.join(' ')}`, ...options });
}

/** The rackboot CLI (dist/server/cli.js), run from the repository root. */
export function runRackboot(args: string[], options: CollectOptions & { env?: NodeJS.ProcessEnv } = {}): Promise<Finished> {
  return runCommand(process.execPath, [cliPath, ...args], { cwd: repoRoot, ...options });
}
