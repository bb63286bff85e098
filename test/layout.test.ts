import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

/**
 * The layout's rules, read from the sources: decisions and codecs import no
 * I/O, the server does not reach into the builder from its protocol code,
 * and no two modules import each other (directly or round a loop).
 */

// dist/test/ -> the repository root
const repo = fileURLToPath(new URL('../../', import.meta.url));

/** Node modules that do I/O (files, sockets, processes, the host): a pure module imports none of them. */
const ioModules = ['fs', 'fs/promises', 'dgram', 'net', 'dns', 'http', 'https', 'child_process', 'os', 'worker_threads', 'readline'];

/** The shells: the modules of the pure folders that own sockets, files and timers. */
const shells = new Set([
  'server/dhcp/server.ts',
  'server/dhcp/leases/sqlite.ts',
  'server/dhcp/leases/postgres.ts',
  'server/profiles/store.ts',
  'server/profiles/sqlite-sightings.ts',
  'server/profiles/postgres-sightings.ts',
  'server/profiles/postgres-profiles.ts',
  'server/profiles/write-atomically.ts',
  'server/profiles/validate.ts',
  'server/assets/builds.ts',
  'server/logs/receiver.ts',
  'server/logs/recorder.ts',
  'server/logs/sqlite-store.ts',
  'server/logs/postgres-store.ts',
]);

/** Folders of codecs, decisions and state machines: pure but for the shells above. */
const pureFolders = [
  'server/core',
  'server/tokens',
  'server/dhcp/wire',
  'server/dhcp/decide',
  'server/dhcp/leases',
  'server/tftp/wire',
  'server/tftp/sender',
  'server/profiles',
  'server/assets',
  'server/storage',
  'server/logs',
];

/** Folders the builder must stay out of: the server's protocol code and state. */
const noBuilder = [
  'server/core',
  'server/tokens',
  'server/storage',
  'server/dhcp',
  'server/tftp',
  'server/http',
  'server/profiles',
  'server/assets',
  'server/status',
  'server/events',
];

async function sources(folder: string): Promise<string[]> {
  const entries = await readdir(path.join(repo, folder), { withFileTypes: true, recursive: true });
  return entries
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts'))
    .map((entry) => path.relative(repo, path.join(entry.parentPath, entry.name)))
    .filter((file) => !file.includes('node_modules'))
    .sort();
}

/** The modules a source file imports at run time (`import type` is erased and left out). */
async function imports(file: string): Promise<string[]> {
  const text = await readFile(path.join(repo, file), 'utf8');
  const found: string[] = [];
  for (const match of text.matchAll(/^(?:import|export)\s+(?!type\b)(?:[^;'"]*?\sfrom\s+)?'([^']+)'/gms)) found.push(match[1]!);
  for (const match of text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)) found.push(match[1]!);
  return found;
}

function resolve(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  return path.normalize(path.join(path.dirname(from), specifier)).replace(/\.js$/, '.ts');
}

test('decisions and codecs import no I/O module; only the named shells do', async () => {
  const offenders: string[] = [];
  for (const folder of pureFolders) {
    for (const file of await sources(folder)) {
      if (shells.has(file)) continue;
      for (const specifier of await imports(file)) {
        const name = specifier.replace(/^node:/, '');
        if (ioModules.includes(name)) offenders.push(`${file} imports ${specifier}`);
      }
    }
  }
  assert.deepEqual(offenders, []);
});

/** What makes a function depend on when or how often it runs: a pure module takes the time as an input and sets no timer. */
const clockAndTimers = /\b(?:setTimeout|setInterval|setImmediate|Date\.now|performance\.now|process\.hrtime|Math\.random)\b|\bnew Date\(\)/;

test('decisions and state machines read no clock and set no timer; only the named shells do', async () => {
  const offenders: string[] = [];
  for (const folder of pureFolders) {
    for (const file of await sources(folder)) {
      if (shells.has(file)) continue;
      const lines = (await readFile(path.join(repo, file), 'utf8')).split('\n');
      lines.forEach((line, index) => {
        const code = line
          .replace(/\/\*.*?(?:\*\/|$)/g, '')
          .replace(/\/\/.*$/, '')
          .replace(/^\s*\*.*$/, '');
        if (clockAndTimers.test(code)) offenders.push(`${file}:${index + 1}: ${line.trim()}`);
      });
    }
  }
  assert.deepEqual(offenders, []);
});

test("the server's protocol and state code never imports the builder", async () => {
  const offenders: string[] = [];
  for (const folder of noBuilder) {
    for (const file of await sources(folder)) {
      for (const specifier of await imports(file)) {
        const target = resolve(file, specifier);
        if (target !== undefined && target.startsWith(`builder${path.sep}`)) offenders.push(`${file} imports ${specifier}`);
      }
    }
  }
  assert.deepEqual(offenders, []);
});

test('no import cycles in server/ and builder/', async () => {
  const graph = new Map<string, string[]>();
  for (const file of [...(await sources('server')), ...(await sources('builder'))]) {
    graph.set(
      file,
      (await imports(file)).flatMap((specifier) => resolve(file, specifier) ?? []),
    );
  }
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (!graph.has(next)) continue;
      if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next].join(' -> '));
      else if (state.get(next) === undefined) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (state.get(file) === undefined) visit(file);
  assert.ok(graph.size > 100, `read ${graph.size} modules`);
  assert.deepEqual(cycles, []);
});
