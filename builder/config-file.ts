import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BuildConfigError, settingsFromText, type BuildSettings } from './config.js';

/** builder/build.yaml in the source tree or the installed package: the documented defaults. */
export function defaultConfigPath(packageRoot: string): string {
  return join(packageRoot, 'builder', 'build.yaml');
}

/** Read and check a build configuration file; a BuildConfigError names the file and every problem in it. */
export async function loadBuildConfig(path: string): Promise<BuildSettings> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new BuildConfigError([`${path}: cannot read the build configuration: ${(error as NodeJS.ErrnoException).code ?? String(error)}`]);
  }
  return settingsFromText(text, path);
}
