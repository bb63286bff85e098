import { silentLogger } from '../log.js';
import { formatProfileError } from './error.js';
import { ProfileDirectory } from './store.js';

export interface ValidationReport {
  /** One compiler-style line per problem, in order of file and line. */
  problems: string[];
  summary: string;
}

/**
 * `rackboot profiles validate`: load the directory exactly as the server does
 * (same parser, same conflict rules), and report.
 */
export async function validateProfiles(dir: string): Promise<ValidationReport> {
  const directory = await ProfileDirectory.open(dir, silentLogger());
  try {
    const files = directory.fileStatuses();
    const problems = directory.errors().map(formatProfileError);
    const broken = files.filter((file) => file.problems.length > 0).length;
    const summary =
      problems.length === 0
        ? `${dir}: ${files.length} profile file${files.length === 1 ? '' : 's'}, all good`
        : `${dir}: ${files.length} profile file${files.length === 1 ? '' : 's'}, ${broken} with problems (${problems.length} in all)`;
    return { problems, summary };
  } finally {
    directory.close();
  }
}
