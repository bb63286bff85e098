/**
 * What a person sees while `rackboot build` runs, on stderr: on a terminal a
 * live line per running step (a bar where the amount of work is known), as
 * plain lines otherwise, one when a step starts and one when it ends with its
 * duration. The build reports to a BuildProgress and knows nothing of either.
 */

/** The build's steps, in the order they run (unpack and kernel modules run side by side). */
export const BUILD_STEPS = ['fetch packages', 'unpack', 'kernel modules', 'rootfs', 'initrd', 'guest', 'debian-guest', 'iso', 'publish'] as const;
export type BuildStep = (typeof BUILD_STEPS)[number];

export type ProgressUnit = 'bytes' | 'items';

export interface StepState {
  step: BuildStep;
  /** The amount of work, when known up front. */
  total: number | undefined;
  unit: ProgressUnit;
  done: number;
  startedMs: number;
}

export interface BuildProgress {
  start(step: BuildStep): void;
  /** The amount of work in a running step, once it is known. */
  total(step: BuildStep, amount: number, unit: ProgressUnit): void;
  /** How much of the step's total is done so far (in `unit` when the step has no total). */
  update(step: BuildStep, done: number, unit?: ProgressUnit): void;
  end(step: BuildStep, outcome: { ok: boolean; ms: number; note?: string }): void;
}

/** A BuildProgress that shows nothing (library use, tests). */
export const NO_PROGRESS: BuildProgress = { start() {}, total() {}, update() {}, end() {} };

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

const STEP_WIDTH = Math.max(...BUILD_STEPS.map((s) => s.length));

/**
 * One live terminal line for a running step, at most `columns` wide:
 *   fetch packages  [##########..........]  50%  13.5 MiB / 27.0 MiB  4.2 s
 * Without a known total only the amount (if any) and the time are shown.
 */
export function renderStepLine(state: StepState, nowMs: number, columns: number): string {
  const elapsed = formatSeconds(Math.max(0, nowMs - state.startedMs));
  const name = state.step.padEnd(STEP_WIDTH);
  const amount = (n: number) => (state.unit === 'bytes' ? formatBytes(n) : `${n}`);
  let line: string;
  if (state.total !== undefined && state.total > 0) {
    const fraction = Math.min(1, Math.max(0, state.done / state.total));
    const tail = `${String(Math.floor(fraction * 100)).padStart(3)}%  ${amount(state.done)} / ${amount(state.total)}${state.unit === 'items' ? ' items' : ''}  ${elapsed}`;
    const barWidth = Math.max(10, Math.min(30, columns - name.length - tail.length - 6));
    const filled = Math.round(fraction * barWidth);
    line = `${name}  [${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}]  ${tail}`;
  } else {
    line = `${name}  ${state.done > 0 ? `${amount(state.done)}  ` : ''}${elapsed}`;
  }
  return line.length > columns ? line.slice(0, Math.max(0, columns)) : line;
}

/** The line a finished step leaves, on a terminal and off it alike. */
export function renderStepEnd(step: BuildStep, outcome: { ok: boolean; ms: number; note?: string }): string {
  const result = outcome.ok ? `done in ${formatSeconds(outcome.ms)}` : `failed after ${formatSeconds(outcome.ms)}`;
  return `build: step "${step}" ${result}${outcome.note ? ` (${outcome.note})` : ''}`;
}

export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** Plain lines: one when a step starts, one when it ends with its duration and amount; no line per update. */
export class LineProgress implements BuildProgress {
  private readonly totals = new Map<BuildStep, string>();
  constructor(private readonly stream: ProgressStream) {}
  start(step: BuildStep): void {
    this.stream.write(`build: step "${step}" started\n`);
  }
  total(step: BuildStep, amount: number, unit: ProgressUnit): void {
    this.totals.set(step, unit === 'bytes' ? formatBytes(amount) : `${amount} items`);
  }
  update(_step: BuildStep, _done: number, _unit?: ProgressUnit): void {}
  end(step: BuildStep, outcome: { ok: boolean; ms: number; note?: string }): void {
    const amount = this.totals.get(step);
    this.stream.write(`${renderStepEnd(step, amount === undefined || outcome.note !== undefined ? outcome : { ...outcome, note: amount })}\n`);
  }
}

/**
 * Live lines at the bottom of a terminal, one per running step, redrawn at
 * most ten times a second (and on every start and end); a finished step's
 * line is printed above them and stays.
 */
export class TerminalProgress implements BuildProgress {
  private readonly running = new Map<BuildStep, StepState>();
  private drawn = 0;
  private lastDraw = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly stream: ProgressStream,
    private readonly now: () => number = Date.now,
  ) {}

  start(step: BuildStep): void {
    this.running.set(step, { step, total: undefined, unit: 'items', done: 0, startedMs: this.now() });
    // The time on a running line moves even when its step reports nothing.
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.draw(true), 250);
      this.timer.unref();
    }
    this.draw(true);
  }

  total(step: BuildStep, amount: number, unit: ProgressUnit): void {
    const state = this.running.get(step);
    if (state === undefined) return;
    state.total = amount;
    state.unit = unit;
    this.draw(true);
  }

  update(step: BuildStep, done: number, unit?: ProgressUnit): void {
    const state = this.running.get(step);
    if (state === undefined) return;
    state.done = done;
    if (unit !== undefined) state.unit = unit;
    // A step's last amount is always shown, however soon after the one before.
    this.draw(state.total !== undefined && done >= state.total);
  }

  end(step: BuildStep, outcome: { ok: boolean; ms: number; note?: string }): void {
    this.running.delete(step);
    this.draw(true, `${renderStepEnd(step, outcome)}\n`);
    if (this.running.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private draw(force: boolean, above = ''): void {
    const now = this.now();
    if (!force && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    const columns = Math.max(20, (this.stream.columns || 80) - 1);
    // Up to the first live line, clear to the end of the screen, then write.
    const erase = this.drawn > 0 ? `\r\x1b[${this.drawn}A\x1b[J` : '\r\x1b[J';
    const lines = [...this.running.values()].map((state) => `${renderStepLine(state, now, columns)}\n`);
    this.stream.write(`${erase}${above}${lines.join('')}`);
    this.drawn = lines.length;
  }
}

/** Bars on a terminal, plain lines otherwise. */
export function progressFor(stream: ProgressStream): BuildProgress {
  return stream.isTTY === true ? new TerminalProgress(stream) : new LineProgress(stream);
}
