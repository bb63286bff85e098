import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';

/**
 * Where profiles, builds and state live when no flag or setting names them.
 * A clone keeps them beside the code (`profiles`, `boot-assets`, `state`,
 * relative to where a command runs: the demo and the tests rely on that).
 * The Debian package writes dist/layout.json next to the code it installs,
 * naming absolute folders (/etc/rackboot/profiles, /var/lib/rackboot, ...),
 * so an installed rackboot needs no flag to find them.
 */
export interface FolderLayout {
  profiles: string;
  assets: string;
  state: string;
}

export const cloneLayout: FolderLayout = { profiles: 'profiles', assets: 'boot-assets', state: 'state' };

/** A layout file's text checked (pure): every folder named, each absolute; an Error naming the file and the key otherwise. */
export function parseLayout(text: string, file: string): FolderLayout {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`${file}: not JSON (${(error as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new Error(`${file}: want an object {"profiles": ..., "assets": ..., "state": ...}`);
  const record = value as Record<string, unknown>;
  const known = Object.keys(cloneLayout);
  const unknown = Object.keys(record).filter((key) => !known.includes(key));
  if (unknown.length > 0) throw new Error(`${file}: unknown key ${unknown[0]} (the keys are ${known.join(', ')})`);
  const folder = (key: keyof FolderLayout): string => {
    const entry = record[key];
    if (typeof entry !== 'string' || !isAbsolute(entry)) throw new Error(`${file}: ${key}: want an absolute folder, not ${JSON.stringify(entry)}`);
    return entry;
  };
  return { profiles: folder('profiles'), assets: folder('assets'), state: folder('state') };
}

/** The layout in `file`, or the clone's when there is no such file. */
export function readLayout(file: string): FolderLayout {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return cloneLayout;
    throw new Error(`${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  return parseLayout(text, file);
}

/** dist/layout.json, beside dist/server: present in the package, absent in a clone. */
export const layoutFile = new URL('../layout.json', import.meta.url).pathname;

/** The folders this installation uses by default. */
export const folderDefaults: FolderLayout = readLayout(layoutFile);
