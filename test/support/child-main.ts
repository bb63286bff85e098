/**
 * The entry of a test's child script: `node child.js MODE JSON` runs the
 * mode's function with the parsed JSON; a failure exits 1 with its stack,
 * an unknown mode exits 2. Imported without arguments (the test runner loads
 * every file), it does nothing.
 */
export function runChildMode(modes: Record<string, (config: any) => Promise<unknown>>): void {
  const [mode, json] = process.argv.slice(2);
  if (mode === undefined) return;
  const run = modes[mode];
  if (run === undefined) {
    process.stderr.write(`unknown mode ${mode} (want ${Object.keys(modes).join(', ')})\n`);
    process.exit(2);
  }
  run(JSON.parse(json ?? '{}')).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
