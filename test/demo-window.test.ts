import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { openNamespaceWindow } from '../server/demo/window.js';
import { Netns } from './support/netns.js';

/**
 * The demo's window: a page served only inside a namespace (on an address
 * of 198.18.0.0/15 there) is read from this machine's loopback, through the
 * window's Unix socket. Needs root; fails (never skips) without it.
 */
test("a server inside a namespace is reached on this machine's loopback, and the window closes", async () => {
  const work = await mkdtemp(path.join(tmpdir(), 'rackboot-window-'));
  const ns = Netns.create('rbwin');
  try {
    ns.ip('addr', 'add', '198.18.9.1/24', 'dev', 'lo');
    const server = ns.spawn(process.execPath, [
      '-e',
      "require('node:http').createServer((q, s) => s.end('inside ' + q.url)).listen(80, '198.18.9.1', () => console.log('up'))",
    ]);
    await new Promise<void>((resolve) => server.stdout!.on('data', () => resolve()));
    const window = await openNamespaceWindow(ns, { host: '198.18.9.1', port: 80 }, path.join(work, 'window.sock'));
    try {
      assert.match(window.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      const answer = await fetch(`${window.url}/status/hosts/52:54:00:ab:cd:01`);
      assert.equal(await answer.text(), 'inside /status/hosts/52:54:00:ab:cd:01');
    } finally {
      await window.close();
      server.kill();
    }
    await assert.rejects(fetch(window.url), 'closed: nothing listens there any more');
  } finally {
    ns.delete();
    await rm(work, { recursive: true, force: true });
  }
});
