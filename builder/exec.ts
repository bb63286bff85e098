import { execFile } from 'node:child_process';

export interface CommandResult {
  stdout: string;
  stderr: string;
}

/** Thrown when a command exits non-zero; `detail` is its last stderr line (or stdout when stderr is empty). */
export class CommandError extends Error {
  readonly detail: string;
  readonly stderr: string;

  constructor(command: string, code: number | string | null, stderr: string, stdout: string) {
    const text = (stderr.trim() || stdout.trim()).split('\n');
    const detail = text[text.length - 1] ?? '';
    super(`${command} exited with ${code}: ${detail}`);
    this.name = 'CommandError';
    this.detail = detail;
    this.stderr = stderr;
  }
}

/** Run a program (no shell) and collect its output. */
export function runCommand(cmd: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { ...options, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) {
        const code = (error as NodeJS.ErrnoException & { code?: number | string }).code ?? null;
        reject(new CommandError([cmd, ...args].join(' '), code, stderr, stdout));
        return;
      }
      resolve({ stdout, stderr });
    });
  });
}

export type CommandRunner = typeof runCommand;
