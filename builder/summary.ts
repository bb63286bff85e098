import { formatBytes, formatSeconds } from './progress.js';

/**
 * The table `rackboot build` prints after a build: each part with its size,
 * sha256 and the time its step took. On a terminal the sha256 is cut to 16
 * digits to fit; elsewhere (logs, files, pipes) it is printed whole.
 */

export interface PartSummary {
  name: string;
  size: number;
  sha256: string;
  /** Time spent making this part (for parts made together, the time of their step). */
  ms: number;
}

/**
 * The extra packages of the runtime (build settings' `packages`) and the
 * ones they brought in, a line each with its version and installed size,
 * and their total; '' without any.
 */
export function renderExtraPackages(packages: Array<{ package: string; version: string; installedKiB: number; dependency?: true }>): string {
  if (packages.length === 0) return '';
  const width = Math.max(...packages.map((p) => p.package.length));
  const versionWidth = Math.max(...packages.map((p) => p.version.length));
  const lines = packages.map((p) =>
    `  ${p.package.padEnd(width)}  ${p.version.padEnd(versionWidth)}  ${formatBytes(p.installedKiB * 1024).padStart(9)}${p.dependency ? '  (a dependency)' : ''}`.trimEnd(),
  );
  const total = packages.reduce((n, p) => n + p.installedKiB, 0);
  return `extra packages in the runtime (installed size, before pruning):\n${lines.join('\n')}\n  ${packages.length} package${packages.length === 1 ? '' : 's'}, ${formatBytes(total * 1024)}\n`;
}

/** What changed since the build before (`--if-changed`): a line per reason and per package, "from -> to". */
export function renderChanges(changes: { packages: Array<{ package: string; from: string | null; to: string | null }>; reasons: string[] }): string {
  const lines = [
    ...changes.reasons.map((reason) => `  ${reason}`),
    ...changes.packages.map((change) => `  ${change.package}: ${change.from ?? '(none)'} -> ${change.to ?? '(none)'}`),
  ];
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

export function renderSummaryTable(parts: PartSummary[], options: { terminal: boolean; totalMs?: number }): string {
  const rows = parts.map((p) => [p.name, formatBytes(p.size), options.terminal ? p.sha256.slice(0, 16) : p.sha256, formatSeconds(p.ms)]);
  const header = ['part', 'size', 'sha256', 'time'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  // Sizes and times read best aligned on the right.
  const right = [false, true, false, true];
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const text = [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
  if (options.totalMs !== undefined) {
    const total = parts.reduce((n, p) => n + p.size, 0);
    text.push(`${parts.length} parts, ${formatBytes(total)}, built in ${formatSeconds(options.totalMs)}`);
  }
  return `${text.join('\n')}\n`;
}
