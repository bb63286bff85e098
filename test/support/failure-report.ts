import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach } from 'node:test';

/**
 * What a failing test shows of the processes it ran: the tail of each QEMU
 * machine's console and of the server's log, printed when the test fails
 * (an assertion, a wait that timed out, the test's own timeout), with the
 * whole text saved to files under the temporary folder, because the work
 * folders holding them are removed when the test ends.
 *
 * ConsoleMachine, bootMachine and startRack register what they start, so
 * every test that uses them gets the report; importing this module installs
 * the afterEach hook of the file's tests that prints it.
 */

interface WatchedOutput {
  label: string;
  read: () => string;
  /** How many of the last lines to print. */
  lines: number;
  /** Kept past the end of the test that registered it (a rack started in before()), until dropped. */
  shared: boolean;
}

const watched = new Set<WatchedOutput>();

/**
 * Show `read()` when a test fails: its last `lines` lines (default 80).
 * `shared`: the output belongs to the whole file (a server started in
 * before()), not to the test running now. Returns a function that stops
 * watching it once the test running now has ended (a test's finally block
 * that stops its server runs before the report is printed).
 */
export function watchOutput(label: string, read: () => string, options: { lines?: number; shared?: boolean } = {}): () => void {
  const entry: WatchedOutput = { label, read, lines: options.lines ?? 80, shared: options.shared ?? false };
  watched.add(entry);
  return () => {
    entry.shared = false;
  };
}

/** A console as text: ANSI escapes, carriage returns and other control characters taken out. */
export function plainText(output: string): string {
  return output
    .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
    .replace(/\r/g, '')
    .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');
}

/** The report for the failed test `name`: each watched output's tail, and where its whole text was saved. */
export function failureReport(name: string, saveDir: string | undefined): string {
  const sections: string[] = [];
  let index = 0;
  for (const entry of watched) {
    index++;
    let text: string;
    try {
      text = plainText(entry.read());
    } catch (error) {
      text = `(cannot read it: ${error instanceof Error ? error.message : String(error)})`;
    }
    const lines = text.split('\n');
    let saved = '';
    if (saveDir !== undefined) {
      const file = path.join(saveDir, `${index}-${entry.label.replace(/[^A-Za-z0-9.-]+/g, '-')}.log`);
      try {
        writeFileSync(file, text);
        saved = `, all of it in ${file}`;
      } catch {
        // The report still prints the tail.
      }
    }
    const shown = lines.slice(-entry.lines);
    sections.push(`----- ${entry.label}: last ${shown.length} of ${lines.length} lines${saved} -----`, ...shown);
  }
  if (sections.length === 0) return '';
  return [`===== "${name}" failed; what its processes printed =====`, ...sections, `===== end of the report for "${name}" =====`, ''].join('\n');
}

afterEach((t) => {
  try {
    // TestContext.passed (Node 20.12+) is missing from the @types/node this project pins.
    if ((t as { passed?: boolean }).passed === false && watched.size > 0) {
      let saveDir: string | undefined;
      try {
        saveDir = path.join(tmpdir(), `rackboot-failed-${new Date().toISOString().replace(/[:.]/g, '')}-${process.pid}`);
        mkdirSync(saveDir, { recursive: true });
      } catch {
        saveDir = undefined;
      }
      process.stdout.write(failureReport(t.name, saveDir));
    }
  } finally {
    for (const entry of watched) if (!entry.shared) watched.delete(entry);
  }
});
