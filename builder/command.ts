import type { Logger } from '../server/log.js';
import { build, defaultCacheDir, packageRoot, type BuildResult } from './build.js';
import { applySwitches, BuildConfigError, settingsForChannel, type BuildSwitches } from './config.js';
import { defaultConfigPath, loadBuildConfig } from './config-file.js';
import { BuildStepError } from './errors.js';
import { progressFor, type ProgressStream } from './progress.js';
import { renderChanges, renderExtraPackages, renderSummaryTable } from './summary.js';
import { buildNow, changed, changesSince, type BuildChanges } from './if-changed.js';
import { AptClient } from './apt.js';
import { AssetStore } from '../server/assets/builds.js';
import { DEFAULT_CHANNEL } from '../server/assets/manifest.js';
import { builderRecipe } from './recipe.js';

/**
 * `rackboot build` without --host: settings from the file and the switches,
 * the build with progress on stderr, then the summary table (stderr too:
 * stdout carries the JSON log lines, whose "build done" line holds the same
 * parts with their full sha256). Returns the exit code; a failure is one
 * line naming the step, never a stack trace.
 */
export interface BuildCommandOptions {
  out: string;
  cacheDir?: string;
  /** The settings file; default builder/build.yaml. */
  config?: string;
  /** Build for this channel of the settings file (its settings, its current build); default the default channel. */
  channel?: string;
  /** Build only when a build now would differ from the channel's current one (see if-changed.ts); exit 0 either way. */
  ifChanged?: boolean;
  switches: BuildSwitches;
  log: Logger;
  stderr?: ProgressStream;
}

/** The line a failed build ends with. */
export function failureLine(error: unknown): string {
  if (error instanceof BuildStepError) {
    const pkg = error.package !== undefined && !error.reason.includes(error.package) ? ` for package ${error.package}` : '';
    return `rackboot build: step "${error.step}" failed${pkg}: ${error.reason}`;
  }
  return `rackboot build: failed: ${error instanceof Error ? error.message : String(error)}`;
}

export async function runBuildCommand(options: BuildCommandOptions): Promise<number> {
  const stderr = options.stderr ?? process.stderr;
  let settings;
  try {
    // switch > the channel's setting > the file's top level > default.
    const config = options.config ?? defaultConfigPath(packageRoot());
    settings = applySwitches(settingsForChannel(await loadBuildConfig(config), options.channel, config), options.switches);
  } catch (error) {
    if (!(error instanceof BuildConfigError)) throw error;
    for (const problem of error.problems) stderr.write(`rackboot build: ${problem}\n`);
    return 2;
  }
  let changes: BuildChanges | undefined;
  if (options.ifChanged) {
    const current = await new AssetStore(options.out).current(options.channel);
    if (current !== undefined) {
      try {
        const apt = new AptClient({ cacheDir: options.cacheDir ?? defaultCacheDir(), log: options.log });
        // What Debian publishes now reaches apt's lists only through an update, which only root may run.
        if (process.getuid?.() === 0) await apt.update();
        else
          stderr.write(
            `rackboot build: not root: apt's package lists were not refreshed, so this compares with the lists as they are (run apt-get update first, or build as root)\n`,
          );
        changes = changesSince(current.manifest, await buildNow(current.manifest, settings, apt, await builderRecipe(packageRoot())));
      } catch (error) {
        stderr.write(`${failureLine(error)}\n`);
        return 1;
      }
      const channel = options.channel === undefined || options.channel === DEFAULT_CHANNEL ? '' : ` of channel ${options.channel}`;
      if (!changed(changes)) {
        options.log.info({ channel: options.channel ?? DEFAULT_CHANNEL, current: current.id }, 'build: nothing changed; no build made');
        stderr.write(`rackboot build: nothing changed since ${current.id}, the current build${channel}; no build made\n`);
        return 0;
      }
      stderr.write(`rackboot build: ${current.id}, the current build${channel}, is out of date:\n${renderChanges(changes)}`);
    }
  }
  let result: BuildResult;
  try {
    result = await build({
      ...(changes === undefined ? {} : { changes }),
      out: options.out,
      cacheDir: options.cacheDir,
      settings,
      ...(options.channel === undefined ? {} : { channel: options.channel }),
      progress: progressFor(stderr),
      log: options.log,
    });
  } catch (error) {
    stderr.write(`${failureLine(error)}\n`);
    return 1;
  }
  stderr.write(renderSummaryTable(result.parts, { terminal: stderr.isTTY === true, totalMs: result.durationMs }));
  stderr.write(renderExtraPackages(result.manifest.extraPackages ?? []));
  return 0;
}
