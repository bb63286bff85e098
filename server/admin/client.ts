import { readFile } from 'node:fs/promises';
import { serverUrl } from '../cli-flags.js';
import { readAdminToken } from './token.js';

/**
 * The command line's side of the admin API (/api, server/http/admin.ts):
 * `rackboot profiles list|show|apply|rm`, `leases release`, `builds
 * list|switch` and `hosts --server`. The token comes from --token-file,
 * else RACKBOOT_TOKEN, else the state folder's admin.token (on the
 * server's own machine). An error answer is shown as the API gives it: its
 * message, and for a profile that was not saved, each problem on a line of
 * its own (file:line:column: field: message).
 */

export interface AdminTarget {
  server: string;
  /** --token-file; without it the token comes from RACKBOOT_TOKEN or the state folder. */
  tokenFile?: string | undefined;
  state: string;
}

export class AdminApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export async function adminToken(target: Pick<AdminTarget, 'tokenFile' | 'state'>, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (target.tokenFile !== undefined) {
    let text: string;
    try {
      text = await readFile(target.tokenFile, 'utf8');
    } catch (error) {
      throw new Error(`--token-file ${target.tokenFile}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
    const token = text.trim();
    if (token === '') throw new Error(`--token-file ${target.tokenFile}: the file is empty`);
    return token;
  }
  const fromEnv = env.RACKBOOT_TOKEN?.trim();
  if (fromEnv) return fromEnv;
  return readAdminToken(target.state);
}

export class AdminClient {
  private constructor(
    readonly base: URL,
    private readonly token: string,
  ) {}

  static async open(target: AdminTarget): Promise<AdminClient> {
    return new AdminClient(serverUrl(target.server), await adminToken(target));
  }

  /** One call; the parsed JSON answer (undefined for 204), or an AdminApiError saying what the API said. */
  async call(method: string, path: string, body?: { json: unknown } | { yaml: string }): Promise<unknown> {
    const url = new URL(`api/${path}`, `${this.base.href.replace(/\/*$/, '')}/`);
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    let payload: string | undefined;
    if (body !== undefined && 'json' in body) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body.json);
    } else if (body !== undefined) {
      headers['content-type'] = 'application/yaml';
      payload = body.yaml;
    }
    let response: Response;
    try {
      response = await fetch(url, { method, headers, ...(payload === undefined ? {} : { body: payload }) });
    } catch (error) {
      const cause = (error as Error).cause;
      throw new Error(`${method} ${url.href}: ${cause instanceof Error ? cause.message : (error as Error).message}`);
    }
    if (response.status === 204) return undefined;
    const text = await response.text();
    let answer: unknown;
    try {
      answer = JSON.parse(text);
    } catch {
      answer = undefined;
    }
    if (!response.ok) {
      const error = (answer as { error?: unknown } | undefined)?.error;
      const problems = (answer as { problems?: unknown } | undefined)?.problems;
      const more = (answer as { moreProblems?: unknown } | undefined)?.moreProblems;
      const lines = [`${method} ${url.pathname}: ${response.status} ${typeof error === 'string' ? error : text.trim()}`];
      if (Array.isArray(problems)) {
        lines.push(
          ...problems.map((problem) => `  ${typeof problem === 'string' ? problem : ((problem as { text?: string }).text ?? JSON.stringify(problem))}`),
        );
      }
      if (typeof more === 'number') lines.push(`  and ${more} more`);
      throw new AdminApiError(lines.join('\n'), response.status);
    }
    return answer;
  }
}

/** Rows as aligned columns, a header first (pure). */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]) => cells.map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ');
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}
