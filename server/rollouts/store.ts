import { rolloutStates, type Rollout } from './rollout.js';

/**
 * Where rollouts are kept: the newest rollout of each channel, as one
 * record. Writes are read-modify-write under the store's own lock (a
 * SQLite transaction, a PostgreSQL advisory lock), so two servers on one
 * database never lose each other's changes (a host's ready report counted
 * on one, a pause given on the other).
 */
export interface RolloutStore {
  /** Every channel's newest rollout, by channel name. */
  list(): Promise<Rollout[]>;
  /**
   * Change one channel's rollout: `change` gets what is stored (or
   * undefined) and returns the new record, or the same one to leave it.
   * Returns what is stored afterwards.
   */
  update(channel: string, change: (current: Rollout | undefined) => Rollout | undefined): Promise<Rollout | undefined>;
  close(): void | Promise<void>;
}

/** Rollouts in memory, lost on restart: for tests. */
export class MemoryRolloutStore implements RolloutStore {
  private readonly rollouts = new Map<string, Rollout>();

  list(): Promise<Rollout[]> {
    return Promise.resolve([...this.rollouts.values()].sort((a, b) => (a.channel < b.channel ? -1 : 1)).map((rollout) => structuredClone(rollout)));
  }

  async update(channel: string, change: (current: Rollout | undefined) => Rollout | undefined): Promise<Rollout | undefined> {
    const current = this.rollouts.get(channel);
    const given = current === undefined ? undefined : structuredClone(current);
    const next = change(given);
    if (next === undefined || next === given) return current && structuredClone(current);
    this.rollouts.set(channel, structuredClone(checkRollout(next, channel)));
    return structuredClone(next);
  }

  close(): void {}
}

/**
 * A stored record read back: the shape checked, so a hand-edited or
 * damaged row is an error naming the channel rather than a crash later.
 */
export function parseStoredRollout(text: string, channel: string): Rollout {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`the rollout of channel ${channel} is not JSON: ${(error as Error).message}`, { cause: error });
  }
  return checkRollout(value as Rollout, channel);
}

function checkRollout(rollout: Rollout, channel: string): Rollout {
  const problem = (what: string): never => {
    throw new Error(`the rollout of channel ${channel}: ${what}`);
  };
  if (typeof rollout !== 'object' || rollout === null) problem('not a record');
  if (rollout.channel !== channel) problem(`it names channel ${JSON.stringify(rollout.channel)}`);
  for (const field of ['build', 'previous'] as const) if (typeof rollout[field] !== 'string' || rollout[field] === '') problem(`${field} is not a build id`);
  if (!(rolloutStates as readonly string[]).includes(rollout.state))
    problem(`state ${JSON.stringify(rollout.state)} is not one of ${rolloutStates.join(', ')}`);
  for (const field of ['first', 'deadlineMs', 'startedAt', 'updatedAt'] as const) if (!Number.isFinite(rollout[field])) problem(`${field} is not a number`);
  if (!Array.isArray(rollout.order) || !Array.isArray(rollout.moved)) problem('order and moved must be lists');
  return rollout;
}
