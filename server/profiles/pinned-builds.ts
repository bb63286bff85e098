import type { Logger } from 'pino';
import { formatProfileError } from './error.js';
import { ProfileDirectory } from './store.js';

/**
 * The build ids profiles pin (boot.build), for `rackboot build --keep`: a
 * pinned build must outlive pruning, or its hosts have nothing to boot. A
 * file that does not parse may pin one too; its name is logged so that the
 * admin can tell why a build they expected to be kept is gone.
 */
export async function pinnedBuilds(dir: string, log: Logger): Promise<Set<string>> {
  let profiles: ProfileDirectory;
  try {
    profiles = await ProfileDirectory.open(dir, log.child({}, { level: 'silent' }));
  } catch (error) {
    log.warn({ profiles: dir, err: error }, 'builds: cannot read the profiles folder; no build is kept for a boot.build pin');
    return new Set();
  }
  try {
    for (const problem of profiles.errors()) {
      log.warn({ problem: formatProfileError(problem) }, 'builds: a profile with errors is not read for boot.build pins');
    }
    return new Set(profiles.all().flatMap((profile) => (profile.boot.build === undefined ? [] : [profile.boot.build])));
  } finally {
    profiles.close();
  }
}
