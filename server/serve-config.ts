import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, visit, type Node } from 'yaml';
import { checkAddressFlags, checkNumberFlags, serveNumberFlags } from './cli-flags.js';
import { serveOptions } from './serve-options.js';
import { closest } from './text/closest.js';

/**
 * `rackboot serve --config FILE`: the same settings as the flags, as YAML
 * keys named like the flags (`http-port: 8080`, `relay-subnet: [...]`).
 * Folders (profiles, assets, state) given relative are relative to the
 * file's own folder. Checked as a profile is: every problem with its file, line and column
 * (`/etc/rackboot/rackboot.yaml:4:12: lease-time: want a whole number of
 * seconds from 60`), an unknown key with the one it most likely meant.
 */

export const defaultConfigFile = '/etc/rackboot/rackboot.yaml';

/** Settings that name folders: relative ones are relative to the settings file. */
const folderSettings = new Set(['profiles', 'assets', 'state']);

/** Keys the file may not set: the file itself, and the one-shot --check. */
const notInFile = new Set(['config', 'check']);

type OptionSpec = { type?: string; array?: boolean; choices?: readonly string[] };

/** Parse and check a configuration text (pure); the values by flag name, or every problem. */
export function parseServeConfig(text: string, file: string): { values: Record<string, unknown>; problems: string[] } {
  const lines = new LineCounter();
  lines.addNewLine(0);
  for (let offset = text.indexOf('\n'); offset >= 0; offset = text.indexOf('\n', offset + 1)) lines.addNewLine(offset + 1);
  const at = (offset: number | undefined) => {
    const { line, col } = lines.linePos(offset ?? 0);
    return `${file}:${line}:${col}`;
  };
  const problems: string[] = [];
  const values: Record<string, unknown> = {};
  const document = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  for (const problem of [...document.errors, ...document.warnings]) problems.push(`${at(problem.pos[0])}: ${problem.message}`);
  if (problems.length > 0) return { values, problems };
  // Aliases are refused, as in profiles: a settings file is short, and this rules out alias bombs.
  let alias: Node | undefined;
  visit(document, {
    Alias(_key, node) {
      alias = node;
      return visit.BREAK;
    },
  });
  if (alias !== undefined) return { values, problems: [`${at(alias.range?.[0])}: aliases are not supported here; write the value out`] };
  const root = document.contents;
  if (root === null) return { values, problems };
  if (!isMap(root)) return { values, problems: [`${at(root.range?.[0])}: want a mapping of settings (key: value), one per line`] };
  const known = Object.keys(serveOptions);
  for (const pair of root.items) {
    const keyNode = pair.key as Node | null;
    const key = isScalar(keyNode) ? String(keyNode.value) : '';
    const where = at(keyNode?.range?.[0]);
    if (notInFile.has(key)) {
      problems.push(`${where}: ${key}: not a setting of the file`);
      continue;
    }
    const spec = (serveOptions as Record<string, OptionSpec>)[key];
    if (spec === undefined) {
      const suggestion = closest(key, known);
      problems.push(`${where}: ${key}: unknown setting; ${suggestion ? `did you mean ${suggestion}?` : `the settings are serve's flags: ${known.join(', ')}`}`);
      continue;
    }
    const valueNode = pair.value as Node | null;
    // A list is checked item by item, each problem at its item.
    const nodes = spec.array && isSeq(valueNode) ? (valueNode.items as Array<Node | null>) : [valueNode];
    const read: unknown[] = [];
    let failed = false;
    for (const node of nodes) {
      const where = at(node?.range?.[0] ?? keyNode?.range?.[0]);
      const value = readValue(node, { ...spec, array: false });
      const bad = typeof value === 'string' && value.startsWith('!') ? value.slice(1) : checkSetting(key, spec.array ? [value] : value);
      if (bad !== undefined) {
        problems.push(`${where}: ${key}: ${bad}`);
        failed = true;
      }
      read.push(value);
    }
    if (failed) continue;
    const value = spec.array ? read : read[0];
    // A folder named in the file is taken from the file's own folder, not from wherever serve was started.
    values[key] = folderSettings.has(key) && typeof value === 'string' ? resolve(dirname(file), value) : value;
  }
  return { values, problems };
}

/** What is wrong with a setting's value by the flags' own checks (cli-flags.ts), without the flag's name; undefined when it is good. */
function checkSetting(key: string, value: unknown): string | undefined {
  const problem = checkNumberFlags({ [key]: value }, serveNumberFlags, []) ?? checkAddressFlags({ [key]: value } as Parameters<typeof checkAddressFlags>[0]);
  return problem?.replace(/^--\S+ "[^"]*": /, '');
}

/** A single value of the type `spec` wants, or "!why" when it is not one. */
function readValue(node: Node | null, spec: OptionSpec): unknown {
  if (!isScalar(node)) return '!want a single value';
  const value = node.value;
  if (spec.choices !== undefined) {
    return typeof value === 'string' && spec.choices.includes(value) ? value : `!want one of ${spec.choices.join(', ')}, not ${JSON.stringify(value)}`;
  }
  switch (spec.type) {
    case 'number':
      return typeof value === 'number' ? value : `!want a number, not ${JSON.stringify(value)}`;
    case 'boolean':
      return typeof value === 'boolean' ? value : `!want true or false, not ${JSON.stringify(value)}`;
    default:
      return typeof value === 'string' || typeof value === 'number' ? String(value) : `!want text, not ${JSON.stringify(value)}`;
  }
}

/** The environment variable for a setting: RACKBOOT_HTTP_PORT for http-port. */
export function environmentName(key: string): string {
  return `RACKBOOT_${key.toUpperCase().replaceAll('-', '_')}`;
}

/**
 * The settings given as RACKBOOT_* variables (pure): numbers, true/false
 * (or 1/0), text; a list (dns, relay-subnet) separated by spaces. Other
 * RACKBOOT_* variables (RACKBOOT_LOG_LEVEL, RACKBOOT_TOKEN) are not settings
 * of serve and are left alone.
 */
export function parseServeEnvironment(env: Readonly<Record<string, string | undefined>>): { values: Record<string, unknown>; problems: string[] } {
  const values: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, spec] of Object.entries(serveOptions as Record<string, OptionSpec>)) {
    const name = environmentName(key);
    const text = env[name];
    if (text === undefined) continue;
    const one = (item: string): unknown => {
      if (spec.choices !== undefined) return spec.choices.includes(item) ? item : `!want one of ${spec.choices.join(', ')}`;
      if (spec.type === 'number') return item.trim() !== '' && Number.isFinite(Number(item)) ? Number(item) : '!want a number';
      if (spec.type === 'boolean') return ['true', '1'].includes(item) ? true : ['false', '0'].includes(item) ? false : '!want true or false';
      return item;
    };
    const value = spec.array ? text.split(/\s+/).filter(Boolean).map(one) : one(text);
    const bad = Array.isArray(value)
      ? value.find((item) => typeof item === 'string' && item.startsWith('!'))
      : typeof value === 'string' && value.startsWith('!')
        ? value
        : undefined;
    const checked = (bad as string | undefined)?.slice(1) ?? checkSetting(key, value);
    if (checked) problems.push(`${name}=${JSON.stringify(text)}: ${checked}`);
    else values[key] = value;
  }
  return { values, problems };
}

/**
 * For yargs' .config(): the file's settings with the environment's over
 * them (flags then win over both), or an Error with every problem.
 * `implicit`: the file is the default path, which may be absent.
 */
export function loadServeConfig(file: string, options: { implicit: boolean; env?: Readonly<Record<string, string | undefined>> }): Record<string, unknown> {
  let fromFile: Record<string, unknown> = {};
  const problems: string[] = [];
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (!(options.implicit && code === 'ENOENT')) problems.push(`--config ${file}: cannot read it (${code ?? (error as Error).message})`);
  }
  if (text !== undefined) {
    const parsed = parseServeConfig(text, file);
    fromFile = parsed.values;
    problems.push(...parsed.problems);
  }
  const fromEnv = parseServeEnvironment(options.env ?? process.env);
  problems.push(...fromEnv.problems);
  if (problems.length > 0) throw new Error(problems.join('\n'));
  return { ...fromFile, ...fromEnv.values };
}

/** The settings whose value differs between two readings, by name (pure). */
export function changedSettings(before: Readonly<Record<string, unknown>>, after: Readonly<Record<string, unknown>>): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter((key) => JSON.stringify(before[key]) !== JSON.stringify(after[key])).sort();
}
