import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import express from 'express';
import type { Browser } from 'playwright-core';
import { createStatusRouter, type StatusRouter } from '../../server/http/status.js';
import { silentLogger } from '../../server/log.js';
import { LoadSampler } from '../../server/status/load.js';
import type { HostStatus, StatusSources } from '../../server/status/snapshot.js';
import { repoRoot } from '../support/build.js';
import { launchBrowser } from '../support/browser.js';

/**
 * The page itself, in headless Chromium: rendering, live updates over
 * server-sent events, filtering and search. (The E2E boot tests check that
 * a real machine's protocol events reach it.)
 */

const hosts: HostStatus[] = [];
let server: Server;
let status: StatusRouter;
let base: string;
let browser: Browser;
const sampler = new LoadSampler('lo', { intervalMs: 200 });

const host = (mac: string, hostname: string, stage: string, extra: Partial<HostStatus> = {}): HostStatus => ({
  mac,
  hostname,
  profile: `profiles/${hostname}.yaml`,
  profileFrom: `${hostname}.yaml (its own file)`,
  address: null,
  stage,
  lastSeen: new Date().toISOString(),
  lastBootSeconds: null,
  failures: 0,
  lastFailure: null,
  alarms: 0,
  lastAlarm: null,
  build: null,
  xen: null,
  kernel: null,
  storage: null,
  ...extra,
});

before(async () => {
  sampler.start();
  const sources: StatusSources = {
    server: { address: '198.18.0.1', interface: 'lo', dhcp: 'full', startedAt: new Date().toISOString(), version: '0.1.0' },
    hosts: () => hosts.map((h) => ({ ...h })),
    build: async () => ({
      id: '20261125-abcdef',
      created: '2026-11-25T18:00:00Z',
      files: [{ name: 'initrd.gz', size: 2_555_837, sha256: 'a'.repeat(64) }],
    }),
    channels: async () => [
      { name: 'default', build: '20261125-abcdef', created: '2026-11-25T18:00:00Z' },
      {
        name: 'testing',
        build: '20261126-fedcba',
        created: '2026-11-26T18:00:00Z',
        changes: ['xen-hypervisor-4.17-amd64: 4.17.7-1 -> 4.17.7-2', 'busybox-static: 1:1.35.0-4 -> 1:1.35.0-4+deb12u1'],
      },
    ],
    downloads: async () => [
      { name: 'rackboot.iso', size: 50_000_000, sha256: 'b'.repeat(64), url: '/iso/rackboot.iso', channel: 'default', currentFor: ['default'] },
      { name: 'rackboot-testing.iso', size: 51_000_000, sha256: 'c'.repeat(64), url: '/iso/rackboot-testing.iso', channel: 'testing', currentFor: [] },
    ],
    rollouts: () => [
      {
        channel: 'stable',
        build: '20261126-fedcba',
        previous: '20261125-abcdef',
        state: 'running',
        hosts: [
          { mac: '52:54:00:00:00:01', stage: 'healthy' },
          { mac: '52:54:00:00:00:02', stage: 'booting' },
          { mac: '52:54:00:00:00:03', stage: 'waiting' },
        ],
      },
    ],
    load: () => sampler.current(),
  };
  status = createStatusRouter({ sources, log: silentLogger(), intervalMs: 100 });
  const app = express();
  app.use('/status', status.router);
  server = await new Promise((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  status.close();
  await new Promise((resolve) => server.close(resolve));
  await sampler.stop();
});

test('the status page shows hosts moving through their stages live, and filters and searches them', async () => {
  const page = await browser.newPage();
  const stageOf = (mac: string) => page.locator(`#hosts tr[data-mac="${mac}"] .stage`);
  try {
    await page.goto(`${base}/status`);
    await page.waitForSelector('#live.on');
    assert.equal(await page.locator('#hosts .empty').textContent(), 'No host has asked to boot yet.');
    assert.equal(await page.locator('#build-id').textContent(), '20261125-abcdef');
    assert.equal(await page.locator('#build .name').textContent(), 'initrd.gz');
    assert.equal(await page.locator('#build .size').textContent(), '2.4 MiB');
    assert.equal(await page.locator('#downloads a').first().getAttribute('href'), '/iso/rackboot.iso');
    assert.deepEqual(await page.locator('#downloads .channel').allTextContents(), ['default (current for default)', 'testing']);
    assert.deepEqual(await page.locator('#channels .name').allTextContents(), ['default', 'testing']);
    const rollout = page.locator('#rollouts tr[data-channel="stable"]');
    assert.equal(await rollout.locator('.build').textContent(), '20261126-fedcba (from 20261125-abcdef)');
    assert.equal(await rollout.locator('.state').textContent(), 'running');
    assert.equal(await rollout.locator('.hosts').textContent(), '1 healthy, 1 booting, 1 waiting');
    assert.deepEqual(await rollout.locator('.actions button').allTextContents(), ['pause', 'abort']);
    assert.deepEqual(await page.locator('#channels .build').allTextContents(), ['20261125-abcdef', '20261126-fedcba']);
    assert.deepEqual(await page.locator('#channels .changes').allTextContents(), ['', 'xen-hypervisor-4.17-amd64: 4.17.7-1 -> 4.17.7-2 (+1 more)']);
    assert.equal(
      await page.locator('#channels .changes').nth(1).getAttribute('title'),
      'xen-hypervisor-4.17-amd64: 4.17.7-1 -> 4.17.7-2\nbusybox-static: 1:1.35.0-4 -> 1:1.35.0-4+deb12u1',
    );

    // A machine boots: each stage shows up without reloading the page.
    hosts.push(host('52:54:00:00:00:01', 'node01', 'dhcp-discover'));
    await stageOf('52:54:00:00:00:01').filter({ hasText: 'dhcp-discover' }).waitFor();
    for (const stage of ['dhcp-ack', 'boot-script', 'booted', 'ready']) {
      Object.assign(hosts[0]!, { stage, address: '198.18.0.50', lastSeen: new Date().toISOString() });
      if (stage === 'ready')
        Object.assign(hosts[0]!, {
          lastBootSeconds: 28.4,
          storage: '2 disks (64 GiB, 932 GiB), 1 volume group (vg0)',
          build: '20261206T074500.123Z-1a2b3c4d',
          xen: '4.17.5',
          kernel: '6.1.0-28-amd64',
        });
      await stageOf('52:54:00:00:00:01')
        .filter({ hasText: new RegExp(`^${stage}$`) })
        .waitFor();
    }
    const row = page.locator('#hosts tr[data-mac="52:54:00:00:00:01"]');
    assert.equal(await row.locator('.address').textContent(), '198.18.0.50');
    assert.equal(await row.locator('.last-boot').textContent(), '28.4 s');
    assert.equal(await row.locator('.build').textContent(), '20261206T074500.123Z-1a2b3c4d');
    assert.equal(await row.locator('.build').getAttribute('title'), 'Xen 4.17.5, kernel 6.1.0-28-amd64');
    assert.equal(await row.locator('.stage').getAttribute('class'), 'stage ready');
    assert.equal(await row.locator('.profile').getAttribute('title'), 'node01.yaml (its own file)');
    assert.equal(await row.locator('.storage').textContent(), '2 disks (64 GiB, 932 GiB), 1 volume group (vg0)');

    // A second host fails; a name with markup is shown as text, not HTML.
    hosts.push(host('52:54:00:00:00:02', '<b>node02</b>', 'failed', { failures: 2, lastFailure: 'domain web: xl create failed' }));
    await stageOf('52:54:00:00:00:02').waitFor();
    assert.equal(await page.locator('#hosts tr[data-mac="52:54:00:00:00:02"] .hostname').textContent(), '<b>node02</b>');
    assert.equal(await page.locator('#hosts b').count(), 0);
    assert.equal(await page.locator('#hosts tr[data-mac="52:54:00:00:00:02"] .storage').textContent(), '', 'no storage report yet');
    assert.equal(await page.locator('#hosts tr[data-mac="52:54:00:00:00:02"] .failures').getAttribute('title'), 'domain web: xl create failed');

    await page.selectOption('#stage-filter', 'failed');
    assert.deepEqual(await page.locator('#hosts tbody tr').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.mac)), ['52:54:00:00:00:02']);
    assert.equal(await page.locator('#host-count').textContent(), '(1 of 2)');
    await page.selectOption('#stage-filter', '');
    await page.fill('#search', '5254-0000-0001'.replaceAll('-', ''));
    assert.deepEqual(await page.locator('#hosts tbody tr').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.mac)), ['52:54:00:00:00:01']);
    await page.fill('#search', 'NODE02');
    assert.deepEqual(await page.locator('#hosts tbody tr').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.mac)), ['52:54:00:00:00:02']);
    await page.fill('#search', 'nothing-like-this');
    assert.equal(await page.locator('#hosts .empty').textContent(), 'No host matches.');
    await page.fill('#search', '');

    // An alarm about a host's token: a red badge beside its stage, the newest alarm as its title.
    hosts.push(host('52:54:00:00:00:03', 'node03', 'ready', { alarms: 2, lastAlarm: 'two boots of 52:54:00:00:00:03 at once? ...' }));
    const alarm = page.locator('#hosts tr[data-mac="52:54:00:00:00:03"] .stage.alarm');
    await alarm.waitFor();
    assert.equal(await alarm.textContent(), 'alarm \u00d72');
    assert.equal(await alarm.getAttribute('title'), 'two boots of 52:54:00:00:00:03 at once? ...');
    assert.equal(await page.locator('#hosts tr[data-mac="52:54:00:00:00:01"] .stage.alarm').count(), 0);

    // The server's own load, from node-os-utils.
    await page.locator('#load dt', { hasText: 'Network in' }).waitFor();
    const load = await page.locator('#load').textContent();
    assert.match(load ?? '', /CPU[\d.]+ %Memory[\d.]+ (MiB|GiB) of [\d.]+ GiB/);

    const artifacts = path.join(repoRoot, 'test', '.work', 'artifacts');
    await mkdir(artifacts, { recursive: true });
    await page.setViewportSize({ width: 1280, height: 640 });
    await page.screenshot({ path: path.join(artifacts, 'status-page.png'), fullPage: true });
  } finally {
    await page.close();
  }
});

test('state.json is the same data as the page, and live streams are capped', async () => {
  const response = await fetch(`${base}/status/state.json`);
  const state = (await response.json()) as { hosts: HostStatus[]; server: { address: string } };
  assert.equal(state.server.address, '198.18.0.1');
  assert.deepEqual(
    state.hosts.map((h) => h.mac),
    hosts.map((h) => h.mac),
  );

  const capped = createStatusRouter({
    sources: {
      server: { address: '', interface: '', dhcp: 'off', startedAt: '', version: '' },
      hosts: () => [],
      build: async () => undefined,
      downloads: async () => [],
      load: () => undefined,
    },
    log: silentLogger(),
    maxStreams: 1,
  });
  const app = express();
  app.use('/status', capped.router);
  const small: Server = await new Promise((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  const url = `http://127.0.0.1:${(small.address() as AddressInfo).port}/status/stream`;
  const controller = new AbortController();
  try {
    const first = await fetch(url, { signal: controller.signal });
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('content-type'), 'text/event-stream');
    const second = await fetch(url);
    assert.equal(second.status, 503);
  } finally {
    controller.abort();
    capped.close();
    await new Promise((resolve) => small.close(resolve));
  }
});
