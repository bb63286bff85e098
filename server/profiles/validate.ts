import { silentLogger } from '../log.js';
import type { Subnet } from '../net/ipv4.js';
import { formatProfileError } from './error.js';
import { formatProfileWarning, profileWarnings } from './lint.js';
import { ProfileDirectory } from './store.js';

export interface ValidationReport {
  /** One compiler-style line per problem, in order of file and line. */
  problems: string[];
  /** Profiles that are valid but likely wrong (profileWarnings): one line each. */
  warnings: string[];
  summary: string;
}

/**
 * `rackboot profiles validate`: load the directory exactly as the server does
 * (same parser, same conflict rules), and report.
 */
export async function validateProfiles(dir: string, options: { subnets?: readonly Subnet[] } = {}): Promise<ValidationReport> {
  const directory = await ProfileDirectory.open(dir, silentLogger());
  try {
    const files = directory.fileStatuses();
    const problems = directory.errors().map(formatProfileError);
    const warnings = profileWarnings(directory.all(), options.subnets).map(formatProfileWarning);
    const broken = files.filter((file) => file.problems.length > 0).length;
    const summary =
      problems.length === 0
        ? `${dir}: ${files.length} profile file${files.length === 1 ? '' : 's'}, all good`
        : `${dir}: ${files.length} profile file${files.length === 1 ? '' : 's'}, ${broken} with problems (${problems.length} in all)`;
    return { problems, warnings, summary: warnings.length > 0 ? `${summary}; ${warnings.length} warning${warnings.length === 1 ? '' : 's'}` : summary };
  } finally {
    directory.close();
  }
}
