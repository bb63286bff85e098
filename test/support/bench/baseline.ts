/**
 * Another rackboot checkout measured in the same run as this one:
 * `RACKBOOT_BENCH_BASELINE=DIR npm run bench:…` names a built checkout
 * (`npm install` has run there, so its dist/ is compiled), and each
 * benchmark serves it beside this tree's rackboot and the reference
 * servers, alternating with them, so a change is compared with what came
 * before it on the same machine at the same moment.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

export interface Baseline {
  /** The checkout's folder. */
  dir: string;
  /** `rackboot@<commit>`, for the tables. */
  label: string;
  /** The first of `candidates` (paths under the checkout's dist/) that exists: helper scripts moved between versions. */
  script(candidates: readonly string[]): string;
}

export function benchBaseline(): Baseline | undefined {
  const named = process.env.RACKBOOT_BENCH_BASELINE;
  if (named === undefined || named === '') return undefined;
  const dir = resolve(named);
  if (!existsSync(join(dir, 'dist', 'server', 'cli.js'))) {
    throw new Error(`RACKBOOT_BENCH_BASELINE=${named}: no dist/server/cli.js there; run npm install in that checkout first`);
  }
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['-C', dir, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    // not a git checkout: the label says so
  }
  return {
    dir,
    label: `rackboot@${commit}`,
    script(candidates) {
      const found = candidates.map((candidate) => join(dir, 'dist', candidate)).find((path) => existsSync(path));
      if (found === undefined) throw new Error(`RACKBOOT_BENCH_BASELINE=${named}: none of ${candidates.join(', ')} under dist/`);
      return found;
    },
  };
}
