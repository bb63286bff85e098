import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeAtomically } from '../profiles/write-atomically.js';
import { isActive, type Rollout } from './rollout.js';

/**
 * The builds the server's active rollouts hand out, written to its state
 * folder for `rackboot build --keep`: the rollouts live in the server's
 * own store (which it holds open), and pruning either build of a running
 * rollout would leave its hosts nothing to boot.
 */
export const ROLLOUT_BUILDS_FILE = 'rollout-builds.json';

export interface RolloutBuilds {
  /** Each active rollout: its channel, its new build and the previous one its other hosts boot. */
  active: Array<{ channel: string; build: string; previous: string; state: Rollout['state'] }>;
}

/** What the file says for these rollouts. Pure. */
export function rolloutBuilds(rollouts: readonly Rollout[]): RolloutBuilds {
  return {
    active: rollouts
      .filter(isActive)
      .map((rollout) => ({ channel: rollout.channel, build: rollout.build, previous: rollout.previous, state: rollout.state }))
      .sort((a, b) => (a.channel < b.channel ? -1 : a.channel > b.channel ? 1 : 0)),
  };
}

/** Every build id the file names. Pure. */
export function buildsInUse(file: RolloutBuilds): Set<string> {
  return new Set(file.active.flatMap((rollout) => [rollout.build, rollout.previous]));
}

/** Write the file whole (profiles/write-atomically.ts), so a reader never sees half of it. */
export async function writeRolloutBuilds(state: string, builds: RolloutBuilds): Promise<void> {
  await writeAtomically(join(state, ROLLOUT_BUILDS_FILE), `${JSON.stringify(builds, null, 2)}\n`);
}

/** The file in `state`; none there (no server ran rollouts from it) is no active rollout. A file that does not parse is an error naming it. */
export async function readRolloutBuilds(state: string): Promise<RolloutBuilds> {
  const file = join(state, ROLLOUT_BUILDS_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { active: [] };
    throw new Error(`${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`${file}: not JSON (${(error as Error).message})`, { cause: error });
  }
  const active = (value as { active?: unknown } | null)?.active;
  const ok =
    Array.isArray(active) &&
    active.every(
      (entry: unknown) =>
        typeof entry === 'object' &&
        entry !== null &&
        ['channel', 'build', 'previous', 'state'].every((key) => typeof (entry as Record<string, unknown>)[key] === 'string'),
    );
  if (!ok) throw new Error(`${file}: want {"active": [{"channel", "build", "previous", "state"}, ...]}`);
  return { active: active as RolloutBuilds['active'] };
}
