import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';

/** Debian's Chromium (package chromium, installed by builder/install-deps.sh). */
export const chromiumPath = '/usr/bin/chromium';

/**
 * Headless Chromium for page tests. Without it the test fails (it never
 * skips): the flags keep Chromium from reaching out to the network for
 * updates, sync or field trials, which a closed lab network refuses anyway.
 */
export async function launchBrowser(options: { netns?: string; workDir?: string } = {}): Promise<Browser> {
  if (!existsSync(chromiumPath)) throw new Error(`${chromiumPath} is missing: install Debian's chromium (builder/install-deps.sh does)`);
  let executablePath = chromiumPath;
  if (options.netns !== undefined) {
    // Inside a test's namespace, where the rack's server is: Playwright
    // talks to Chromium over its stdio pipes, which `ip netns exec` keeps.
    if (options.workDir === undefined) throw new Error('launchBrowser: a netns needs a workDir for its wrapper script');
    executablePath = path.join(options.workDir, 'chromium-in-netns');
    await writeFile(executablePath, `#!/bin/sh\nexec ip netns exec ${options.netns} ${chromiumPath} "$@"\n`, { mode: 0o755 });
  }
  return chromium.launch({
    executablePath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
