import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { buildPackage, changelogVersion, installedLayout } from '../builder/package/build-deb.js';
import { renderSampleConfig } from '../builder/package/sample-config.js';
import { parseServeConfig } from '../server/serve-config.js';
import { serveOptions } from '../server/serve-options.js';
import { repoRoot } from './support/build.js';

test('the sample settings file: every serve setting, commented out; opened, each line is a valid setting', () => {
  const text = renderSampleConfig(serveOptions, installedLayout);
  assert.deepEqual(parseServeConfig(text, 'rackboot.yaml'), { values: {}, problems: [] }, 'as installed it sets nothing');
  const opened = text.replace(/^#([a-z-]+:)/gm, '$1');
  const parsed = parseServeConfig(opened, 'rackboot.yaml');
  assert.deepEqual(parsed.problems, []);
  assert.deepEqual(Object.keys(parsed.values).sort(), Object.keys(serveOptions).sort(), 'every key is there');
  // Interface and pool come first, to fill in; the folders are the installed ones.
  assert.match(text, /^#interface: eth1\n\n[^]*?^#pool: /m);
  assert.ok(text.indexOf('#interface:') < text.indexOf('#address:'));
  assert.equal(parsed.values.state, '/var/lib/rackboot');
  assert.equal(parsed.values.profiles, '/etc/rackboot/profiles');
  assert.equal(parsed.values.assets, '/var/lib/rackboot/boot-assets');
  assert.equal(parsed.values['http-port'], 80);
});

test('npm run package refuses a Node other than 20, naming it', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'rackboot-package-node-'));
  try {
    const node = path.join(dir, 'node');
    await writeFile(node, '#!/bin/sh\necho v18.19.0\n', { mode: 0o755 });
    await assert.rejects(buildPackage({ root: repoRoot, out: path.join(dir, 'out'), node }), {
      message: `${node} is Node.js v18.19.0: the package carries the Node that builds it, and rackboot wants Node.js 20; run "npm install" and "npm run package" with Node.js 20`,
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('changelogVersion: the newest entry, or the file named', () => {
  assert.equal(changelogVersion('rackboot (0.2.0) unstable; urgency=medium\n', 'changelog'), '0.2.0');
  assert.throws(
    () => changelogVersion('other (1)\n', 'packaging/changelog'),
    /^Error: packaging\/changelog: the first line is not "rackboot \(VERSION\) \.\.\."$/,
  );
});
