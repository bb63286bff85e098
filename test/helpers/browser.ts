import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** Debian's Chromium (package chromium, installed by builder/install-deps.sh). */
export const chromiumPath = '/usr/bin/chromium';

/**
 * Headless Chromium for page tests. Without it the test fails (it never
 * skips): the flags keep Chromium from reaching out to the network for
 * updates, sync or field trials, which a closed lab network refuses anyway.
 */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(chromiumPath)) throw new Error(`${chromiumPath} is missing: install Debian's chromium (builder/install-deps.sh does)`);
  return chromium.launch({
    executablePath: chromiumPath,
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
