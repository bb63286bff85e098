import type { Logger } from '../log.js';
import type { EventStore } from './store.js';

export interface RetentionSettings {
  /** Events older than this many days go (each host's newest stays). */
  days: number;
  /** At most this many events per host (each host's newest stays). */
  perHost: number;
}

/** `rackboot serve` keeps three months of timeline, and the last 500 events of each host. */
export const defaultRetention: RetentionSettings = { days: 90, perHost: 500 };

const hourMs = 3600_000;

/**
 * Keeps a timeline from growing without end: prunes now, then every hour.
 * A rack that reboots all day still reads its hosts' last boots at once,
 * and the events file stays the size of what it keeps. Returns stop().
 */
export function startEventRetention(store: EventStore, settings: RetentionSettings, log: Logger, now: () => number = Date.now): () => void {
  const prune = (): void => {
    try {
      const removed = store.prune({ before: now() - settings.days * 24 * hourMs, keepPerHost: settings.perHost });
      if (removed > 0) log.info({ removed, days: settings.days, perHost: settings.perHost }, 'timeline: old events pruned');
    } catch (err) {
      log.warn({ err }, 'timeline: pruning failed; will try again in an hour');
    }
  };
  prune();
  const timer = setInterval(prune, hourMs);
  timer.unref();
  return () => clearInterval(timer);
}
