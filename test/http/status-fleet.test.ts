import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import express from 'express';
import type { Browser } from 'playwright-core';
import { loadOrCreateAdminToken } from '../../server/admin/token.js';
import { AssetStore } from '../../server/assets/builds.js';
import { hostBuild } from '../../server/core/build-choice.js';
import type { NewBootEvent } from '../../server/events/event.js';
import { SqliteEventStore } from '../../server/events/sqlite-store.js';
import type { EventStore } from '../../server/events/store.js';
import { createAdminRouter } from '../../server/http/admin.js';
import { createStatusRouter, type StatusRouter } from '../../server/http/status.js';
import { silentLogger } from '../../server/log.js';
import { SqliteLogStore } from '../../server/logs/sqlite-store.js';
import type { NewLogLine } from '../../server/logs/store.js';
import type { RelaySlot } from '../../server/profiles/slot.js';
import { ProfileDirectory } from '../../server/profiles/store.js';
import { HostList, notifyingAppends } from '../../server/status/host-list.js';
import { describeHost } from '../../server/status/hosts.js';
import { repoRoot } from '../support/build.js';
import { launchBrowser } from '../support/browser.js';
import { seededRandom } from '../support/random.js';

/**
 * The status page at the size of a site: 500 hosts in five racks (four
 * group files, one rack of default-profile machines behind a relay), each
 * with a realistic boot timeline in the SQLite event store, wired as
 * `rackboot serve` wires them (event store, host list, status router,
 * admin API with the log store). Headless Chromium loads the overview,
 * sees the racks and the failures, watches one host move live, then opens
 * a host's page: its boots drawn as SVG, and its log behind the admin
 * token, searched and followed. The times are printed, not asserted: they
 * depend on the machine.
 */

const hostsPerRack = 100;
const racks = 5;
const rootHash = '$6$fleetsalt$Zb4K2WKaOub4kMMnEZU/WANkvvDRaYGk0Joc7v7K.z/H/Jkn5SefSnTRe4Uyxkbe5SHNM7xpzrdl/egyop1HS/';
const sshKey = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGlkc/VLZAO/Wa+NXrNh7Hd4k4QcdyIL1kKnAu8qDRUD you@desk';

let root: string;
let server: Server;
let base: string;
let browser: Browser;
let status: StatusRouter;
let directory: ProfileDirectory;
let events: SqliteEventStore;
let timeline: EventStore;
let logs: SqliteLogStore;
let adminToken: string;
const artifacts = path.join(repoRoot, 'test', '.work', 'artifacts');

const macOf = (rack: number, index: number) => `52:54:00:0${rack}:00:${index.toString(16).padStart(2, '0')}`;
const hostnameOf = (rack: number, index: number) => `r${rack}n${String(index).padStart(3, '0')}`;
/** The host whose page the test opens: three boots (the oldest failed) and a log. */
const watched = macOf(1, 1);
/** The host whose new boot the overview must show live. */
const moving = macOf(3, 50);
const now = Date.now();
const random = seededRandom(19);

type Outcome = 'ready' | 'runtime-failed' | 'tftp-failed' | 'booting';

/** One BIOS boot as the servers and the Debian runtime report it (see test/status-boots.test.ts), with times that vary. */
function bootEvents(mac: string, start: number, outcome: Outcome): NewBootEvent[] {
  const list: NewBootEvent[] = [];
  let time = start;
  const add = (seconds: number, source: NewBootEvent['source'], stage: string, extra: Partial<NewBootEvent> = {}) => {
    time += Math.round(seconds * 1000);
    list.push({ time, mac, source, stage, ...extra });
  };
  const address = `198.18.${mac.slice(10, 11)}.${10 + parseInt(mac.slice(-2), 16)}`;
  add(0, 'dhcp', 'dhcp-discover');
  add(0.01, 'dhcp', 'dhcp-offer', { detail: address });
  add(1 + random(), 'dhcp', 'dhcp-request');
  add(0.01, 'dhcp', 'dhcp-ack', { detail: address });
  if (outcome === 'tftp-failed') {
    add(6, 'tftp', 'tftp-failed', { detail: 'undionly.kpxe: timeout' });
    return list;
  }
  add(0.3 + random() * 0.3, 'tftp', 'tftp', { detail: 'undionly.kpxe' });
  add(1.5, 'dhcp', 'dhcp-discover');
  add(0.01, 'dhcp', 'dhcp-offer', { detail: address });
  add(1, 'dhcp', 'dhcp-request');
  add(0.01, 'dhcp', 'dhcp-ack', { detail: address });
  add(0.1, 'http', 'boot.ipxe');
  for (const part of ['xen', 'vmlinuz', 'initrd.gz']) add(0.3 + random() * 1.5, 'http', 'boot-file', { detail: part });
  add(8 + random() * 10, 'runtime', 'booted', { detail: 'kernel=6.1.0-28-amd64 runtime=debian' });
  if (outcome === 'booting') return list;
  add(0.2, 'http', 'runtime.env');
  add(2 + random() * 4, 'runtime', 'configured');
  if (outcome === 'runtime-failed') {
    add(1, 'runtime', 'domain-failed', { domain: 'demo1', detail: 'xl create: out of memory' });
    add(0.5, 'runtime', 'failed', { detail: 'no domain started' });
    return list;
  }
  for (const domain of ['demo1', 'demo2']) {
    add(0.3, 'http', 'domain.cfg');
    add(0.8 + random(), 'runtime', 'domain-started', { domain, detail: 'domid=1' });
  }
  add(1 + random() * 3, 'runtime', 'ready', {
    detail: `hostname=x ip=${address}/16 domains=2 build=20261206T074500.123Z-1a2b3c4d xen=4.17.5 kernel=6.1.0-28-amd64`,
  });
  const ready = time;
  for (const domain of ['demo1', 'demo2']) {
    time = ready + Math.round((3 + random() * 4) * 1000);
    list.push({ time, mac, source: 'guest', stage: 'guest-ready', domain, detail: `ip=198.19.0.${domain.slice(-1)}/24` });
  }
  return list;
}

function outcomeOf(rack: number, index: number): Outcome {
  const n = rack * hostsPerRack + index;
  if (n % 47 === 3) return 'runtime-failed';
  if (n % 83 === 5) return 'tftp-failed';
  if (n % 31 === 7) return 'booting';
  return 'ready';
}

function groupFile(rack: number): string {
  return [
    'network:',
    '  mode: static',
    '  gateway: 198.18.0.1',
    '  dns: [198.18.0.1]',
    `rootPasswordHash: "${rootHash}"`,
    'ssh: true',
    'sshAuthorizedKeys:',
    `  - "${sshKey}"`,
    'timezone: Europe/Berlin',
    'boot:',
    '  channel: testing',
    'domains:',
    '  - name: demo1',
    '  - name: demo2',
    'hosts:',
    ...Array.from(
      { length: hostsPerRack },
      (_, index) => `  - {mac: "${macOf(rack, index + 1)}", hostname: ${hostnameOf(rack, index + 1)}, address: 198.18.${rack}.${index + 11}/16}`,
    ),
    '',
  ].join('\n');
}

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'rackboot-fleet-'));
  const profilesDir = path.join(root, 'profiles');
  await mkdir(profilesDir);
  for (let rack = 1; rack < racks; rack += 1) await writeFile(path.join(profilesDir, `rack${rack}.yaml`), groupFile(rack));
  await writeFile(path.join(profilesDir, 'default.yaml'), 'hostname: node-{mac}\n');
  const log = silentLogger();
  directory = await ProfileDirectory.open(profilesDir, log, { infrastructure: [{ address: '198.18.0.1', what: "this server's address" }] });
  const assets = new AssetStore(path.join(root, 'assets'));
  const token = await loadOrCreateAdminToken(path.join(root, 'state'));
  adminToken = (await readFile(token.file, 'utf8')).trim();

  // Rack 5 has no group file: its machines boot the default profile, behind the relay agent "sw-rack5".
  const slots = new Map<string, RelaySlot>();
  for (let index = 1; index <= hostsPerRack; index += 1) {
    slots.set(macOf(5, index), { circuitId: Buffer.from(`port${index}`).toString('hex'), remoteId: Buffer.from('sw-rack5').toString('hex') });
  }
  const sightings = { slotOf: (mac: string) => slots.get(mac) };

  events = SqliteEventStore.open(path.join(root, 'events.sqlite'));
  const hostRows = new HostList({
    describe: (mac) => describeHost(mac, events, { profiles: directory, sightings }),
    isKnown: (mac) => directory.hasOwnProfile(mac, sightings.slotOf(mac)),
  });
  timeline = notifyingAppends(events, (mac, time) => hostRows.touched(mac, time));

  // The site's last half hour: the racks booted one after another, a host every few seconds.
  const all: NewBootEvent[] = [];
  for (let rack = 1; rack <= racks; rack += 1) {
    for (let index = 1; index <= hostsPerRack; index += 1) {
      const mac = macOf(rack, index);
      const start = now - 40 * 60_000 + ((rack - 1) * hostsPerRack + index) * 4000;
      if (mac === watched) {
        all.push(...bootEvents(mac, start - 20 * 60_000, 'runtime-failed'), ...bootEvents(mac, start - 10 * 60_000, 'ready'));
      }
      all.push(...bootEvents(mac, start, mac === watched || mac === moving ? 'ready' : outcomeOf(rack, index)));
    }
  }
  timeline.appendAll(all);

  // The watched host's log: a few dozen lines for each of its three boots.
  logs = SqliteLogStore.open(path.join(root, 'logs.sqlite'));
  const lines: NewLogLine[] = [];
  for (let boot = 1; boot <= 3; boot += 1) {
    for (let line = 0; line < 30; line += 1) {
      lines.push({
        mac: watched,
        boot,
        receivedAt: now - (4 - boot) * 600_000 + line * 500,
        source: line % 3 === 0 ? 'netconsole' : 'syslog',
        app: line % 3 === 0 ? 'kernel' : 'rackboot-runtime',
        severity: line === 7 ? 3 : 6,
        text: line % 5 === 0 ? `e1000 0000:00:03.0 eth0: link up, 1000 Mbps, line ${line} of boot ${boot}` : `step ${line} of boot ${boot}`,
      });
    }
  }
  await logs.append(lines);

  status = createStatusRouter({
    log,
    sources: {
      server: { address: '198.18.0.1', interface: 'lo', dhcp: 'full', startedAt: new Date(now - 3600_000).toISOString(), version: '0.1.0' },
      hosts: () => hostRows.list(),
      build: async () => undefined,
      downloads: async () => [],
      load: () => undefined,
      host: async (mac) => {
        const host = hostRows.list().find((row) => row.mac === mac);
        if (host === undefined) return undefined;
        const profile = directory.lookup(mac, sightings.slotOf(mac));
        const next = await hostBuild(assets, profile, { mac });
        return {
          host,
          profile,
          lease: undefined,
          timeline: events.listByHost(mac, { limit: 1000 }),
          nextBuild: { id: next.build?.id ?? null, reason: next.reason },
        };
      },
    },
  });
  const app = express();
  app.use('/api', createAdminRouter({ token, profiles: directory, assets, log, logs }));
  app.use('/status', status.router);
  server = await new Promise((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await launchBrowser();
  await mkdir(artifacts, { recursive: true });
});

after(async () => {
  await browser?.close();
  status?.close();
  if (server) await new Promise((resolve) => server.close(resolve));
  directory?.close();
  events?.close();
  await logs?.close();
  await rm(root, { recursive: true, force: true });
});

declare global {
  interface Window {
    allShown: Promise<number>;
    seen: Promise<number>;
  }
}

test('500 hosts: the overview loads them grouped by rack, failures first, a chart of boot times, and follows a host live', { timeout: 120_000 }, async (t) => {
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  try {
    // When all 500 rows are in the table, by the page's clock (from the start of navigation).
    await page.addInitScript(() => {
      window.allShown = new Promise((resolve) => {
        document.addEventListener('DOMContentLoaded', () => {
          const body = document.querySelector('#hosts tbody')!;
          const watch = new MutationObserver(() => {
            if (body.querySelectorAll('tr[data-mac]').length >= 500) {
              watch.disconnect();
              resolve(performance.now());
            }
          });
          watch.observe(body, { childList: true });
        });
      });
    });
    await page.goto(`${base}/status`);
    const loadMs = await page.evaluate(() => window.allShown);
    await page.waitForSelector('#live.on');
    const snapshotBytes = (await (await fetch(`${base}/status/state.json`)).text()).length;
    const renderMs = await page.evaluate(() => {
      const started = performance.now();
      (window as unknown as { render(): void }).render();
      return performance.now() - started;
    });

    assert.equal(await page.locator('#hosts tbody tr[data-mac]').count(), 500);
    assert.equal(await page.locator('#host-count').textContent(), '(500)');
    assert.equal(await page.locator('#racks .tile').count(), 500);
    assert.deepEqual((await page.locator('#racks .rack').evaluateAll((list) => list.map((rack) => (rack as HTMLElement).dataset.rack))).sort(), [
      'group rack1.yaml',
      'group rack2.yaml',
      'group rack3.yaml',
      'group rack4.yaml',
      'rack "sw-rack5"',
    ]);
    assert.equal(await page.locator('#racks .rack[data-rack="rack \\"sw-rack5\\""] .tile').count(), hostsPerRack);
    assert.equal(await page.locator(`#racks .rack[data-rack="group rack1.yaml"] .tile[data-mac="${watched}"]`).count(), 1);

    // Failures stand out: red tiles, their racks first, their rows first in the table and marked.
    const failed: string[] = [];
    for (let rack = 1; rack <= racks; rack += 1)
      for (let index = 1; index <= hostsPerRack; index += 1) {
        const mac = macOf(rack, index);
        const outcome = mac === watched || mac === moving ? 'ready' : outcomeOf(rack, index);
        if (outcome === 'runtime-failed' || outcome === 'tftp-failed') failed.push(mac);
      }
    assert.ok(failed.length >= 10, `${failed.length} failed hosts`);
    assert.deepEqual(
      (await page.locator('#racks .tile.s-failing').evaluateAll((list) => list.map((tile) => (tile as HTMLElement).dataset.mac))).sort(),
      [...failed].sort(),
    );
    const rows = await page.locator('#hosts tbody tr[data-mac]').evaluateAll((list) => list.map((row) => [(row as HTMLElement).dataset.mac, row.className]));
    assert.deepEqual(
      rows
        .slice(0, failed.length)
        .map(([mac]) => mac)
        .sort(),
      [...failed].sort(),
    );
    assert.ok(rows.slice(0, failed.length).every(([, className]) => className === 'failing'));
    assert.ok(rows.slice(failed.length).every(([, className]) => className !== 'failing'));
    assert.match((await page.locator('#racks .rack').first().getAttribute('class')) ?? '', /failing/);
    assert.match((await page.locator('#stage-legend').textContent()) ?? '', new RegExp(`${failed.length} failed`));
    // The chart: a dot per host whose last boot got to ready, a red mark per failing host.
    const readyHosts = rows.length - failed.length - (await page.locator('#racks .tile:not(.s-ready):not(.s-failing)').count());
    assert.equal(await page.locator('#boot-chart .boots circle').count(), readyHosts);
    assert.equal(await page.locator('#boot-chart .failures path').count(), failed.length);

    await page.screenshot({ path: path.join(artifacts, 'status-500-hosts.png') });

    // A new event for one host: its row, its tile and the failure order follow without a reload.
    await page.evaluate((mac) => {
      window.seen = new Promise((resolve) => {
        const body = document.querySelector('#hosts tbody')!;
        const watch = new MutationObserver(() => {
          if (body.querySelector(`tr[data-mac="${mac}"] .stage`)?.textContent === 'dhcp-discover') {
            watch.disconnect();
            resolve(Date.now());
          }
        });
        watch.observe(body, { childList: true, subtree: true });
      });
    }, moving);
    const appendedAt = Date.now();
    timeline.append({ time: appendedAt, mac: moving, source: 'dhcp', stage: 'dhcp-discover' });
    const seenAt = await page.evaluate(() => window.seen);
    assert.equal(await page.locator(`#racks .tile[data-mac="${moving}"]`).getAttribute('class'), 'tile s-dhcp');
    assert.equal(await page.locator(`#hosts tbody tr[data-mac="${moving}"]`).getAttribute('class'), null);
    assert.equal(
      await page.locator('#hosts tbody tr[data-mac]').nth(failed.length).getAttribute('data-mac'),
      moving,
      'the host seen last comes first after the failures',
    );

    const figures = [
      `500 hosts: page load to all rows shown ${loadMs.toFixed(0)} ms (snapshot ${(snapshotBytes / 1024).toFixed(0)} KiB)`,
      `a full re-render ${renderMs.toFixed(1)} ms`,
      `a new event to the page showing it ${seenAt - appendedAt} ms (the server checks for changes every 1000 ms)`,
    ];
    for (const figure of figures) t.diagnostic(figure);

    // A click on a row opens the host's page.
    await page.locator(`#hosts tbody tr[data-mac="${watched}"] .hostname`).click();
    await page.waitForURL(`${base}/status/hosts/${encodeURIComponent(watched)}`);
    await page.locator('#boots .boot').first().waitFor();
    assert.equal(await page.locator('#mac').textContent(), watched);
  } finally {
    await page.close();
  }
});

test(
  "a host's page: profile without secrets, its boots drawn with each phase's time, and its log behind the admin token, searched and followed",
  { timeout: 120_000 },
  async (t) => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const requested: string[] = [];
    page.on('request', (request) => requested.push(request.url()));
    try {
      const pageStarted = Date.now();
      await page.goto(`${base}/status/hosts/${watched.replaceAll(':', '-')}`);
      await page.locator('#boots .boot').nth(2).waitFor();
      t.diagnostic(`host page with three boots drawn in ${Date.now() - pageStarted} ms`);
      assert.equal(await page.locator('#mac').textContent(), watched);
      assert.equal(await page.locator('#hostname').textContent(), 'r1n001');
      assert.equal(await page.locator('#stage').textContent(), 'ready');
      const profile = (await page.locator('#profile').textContent()) ?? '';
      assert.match(profile, /HostnameR1n001/i);
      assert.match(profile, /Networkstatic 198\.18\.1\.11\/16, gateway 198\.18\.0\.1, DNS 198\.18\.0\.1/);
      assert.match(profile, /Grouprack1\.yaml/);
      assert.match(profile, /SSHon, 1 key/);
      assert.match(profile, /Root passwordset/);
      assert.match(profile, /ChannelTesting/i);
      assert.deepEqual(await page.locator('#domains tbody tr td:first-child').allTextContents(), ['demo1', 'demo2']);
      const html = await page.content();
      assert.ok(!html.includes(rootHash) && !html.includes('$6$'), 'the root password hash is on the page');
      assert.ok(!html.includes('AAAAC3NzaC1lZDI1NTE5'), 'an SSH key is on the page');
      assert.match((await page.locator('#summary').textContent()) ?? '', /Next boot getschannel testing \(boot\.channel in rack1\.yaml\) has no build yet/);

      // The boots, newest first, each a bar of its phases with their times; the oldest failed.
      const expected = (await (await fetch(`${base}/status/hosts/${watched}.json`)).json()) as {
        boots: Array<{ outcome: string; segments: Array<{ phase: string; seconds: number; failed: boolean }> }>;
      };
      assert.deepEqual(
        expected.boots.map((boot) => boot.outcome),
        ['ready', 'ready', 'failed'],
      );
      const newest = page.locator('#boots .boot[data-index="0"]');
      const segments = await newest
        .locator('g.segment')
        .evaluateAll((list) => list.map((g) => [g.getAttribute('data-phase'), Number(g.getAttribute('data-seconds'))]));
      assert.deepEqual(
        segments,
        expected.boots[0]!.segments.map((segment) => [segment.phase, segment.seconds]),
      );
      assert.deepEqual(
        segments.map(([phase]) => phase),
        ['dhcp', 'tftp', 'files', 'kernel', 'runtime', 'domains'],
      );
      const legend = await newest.locator('.legend .phase').allTextContents();
      assert.equal(legend.length, 6);
      const seconds = (value: number) => (value < 10 ? `${value.toFixed(1)} s` : `${Math.round(value)} s`);
      assert.deepEqual(
        legend,
        expected.boots[0]!.segments.map(
          (segment, index) => `${['DHCP', 'TFTP', 'boot files', 'Xen + kernel', 'runtime setup', 'domains'][index]} ${seconds(segment.seconds)}`,
        ),
      );
      assert.match((await newest.locator('h3').textContent()) ?? '', /ready in \d+ s$/);
      assert.deepEqual(
        await newest.locator('g.domain').evaluateAll((list) => list.map((g) => [g.getAttribute('data-domain'), g.getAttribute('data-outcome')])),
        [
          ['demo1', 'ready'],
          ['demo2', 'ready'],
        ],
      );
      const oldest = page.locator('#boots .boot[data-index="2"]');
      assert.match((await oldest.locator('h3').textContent()) ?? '', /failed after \d+ s$/);
      assert.deepEqual(await oldest.locator('g.segment[data-failed="true"]').evaluateAll((list) => list.map((g) => g.getAttribute('data-phase'))), ['domains']);
      assert.deepEqual(
        await oldest.locator('g.domain').evaluateAll((list) => list.map((g) => [g.getAttribute('data-domain'), g.getAttribute('data-outcome')])),
        [['demo1', 'failed']],
      );
      assert.match((await oldest.locator('.failures').textContent()) ?? '', /domain-failed demo1: xl create: out of memory.*failed: no domain started/);

      // The log: not open data, so the page asks for the admin token first.
      assert.match((await page.locator('#log-note').textContent()) ?? '', /needs the admin token/);
      assert.equal(await page.locator('#log-view').isHidden(), true);
      await page.fill('#token', 'not-the-token');
      await page.click('#token-form button');
      await page.locator('#log-note', { hasText: 'was refused' }).waitFor();
      await page.fill('#token', adminToken);
      await page.click('#token-form button');
      await page.locator('#log-lines .line').nth(89).waitFor();
      assert.equal(await page.locator('#log-lines .line').count(), 90);
      assert.equal(await page.evaluate(() => sessionStorage.getItem('rackboot.adminToken')), adminToken);
      assert.deepEqual(await page.locator('#log-boot option').evaluateAll((list) => list.map((option) => (option as HTMLOptionElement).value)), [
        '',
        '3',
        '2',
        '1',
      ]);

      // Search: a plain substring, any case.
      await page.fill('#log-search', 'ETH0: LINK UP');
      const visible = () => page.locator('#log-lines .line:visible');
      assert.equal(await visible().count(), 18);
      assert.match((await page.locator('#log-status').textContent()) ?? '', /^18 of 90 lines/);
      // A new line comes in while the search is on: shown live, as it matches.
      const appendedAt = Date.now();
      await logs.append([
        {
          mac: watched,
          boot: 3,
          receivedAt: appendedAt,
          source: 'netconsole',
          app: 'kernel',
          text: 'e1000 0000:00:03.0 eth0: link up again <b>after</b> a flap',
        },
        { mac: watched, boot: 3, receivedAt: appendedAt, source: 'syslog', app: 'rackboot-runtime', text: 'an unrelated line' },
      ]);
      const fresh = page.locator('#log-lines .line', { hasText: 'link up again' });
      await fresh.waitFor();
      t.diagnostic(`a new log line shown ${Date.now() - appendedAt} ms after it was stored (the page asks every second)`);
      assert.equal(await fresh.locator('.text').textContent(), 'e1000 0000:00:03.0 eth0: link up again <b>after</b> a flap');
      assert.equal(await page.locator('#log-lines b').count(), 0, 'log text is text, never markup');
      assert.equal(await visible().count(), 19);
      assert.equal(await page.locator('#log-lines .line').count(), 92);
      await page.fill('#log-search', '');
      assert.equal(await visible().count(), 92);

      // One boot's lines.
      await page.selectOption('#log-boot', '1');
      await page.waitForFunction(() => {
        const lines = [...document.querySelectorAll<HTMLElement>('#log-lines .line')];
        return lines.length === 30 && lines.every((line) => line.dataset.boot === '1');
      });

      await page.fill('#log-search', 'eth0');
      await page.screenshot({ path: path.join(artifacts, 'host-page.png'), fullPage: true });

      // The token went in a header, never in a URL.
      assert.ok(requested.some((url) => url.includes('/api/hosts/')));
      assert.ok(!requested.some((url) => url.includes(adminToken)));
    } finally {
      await page.close();
    }
  },
);

test('a host page for a MAC never seen, or not a MAC, is a 404 that says so', async () => {
  for (const suffix of ['', '.json']) {
    const unseen = await fetch(`${base}/status/hosts/52:54:00:99:99:99${suffix}`);
    assert.equal(unseen.status, 404);
    assert.match(await unseen.text(), /no host 52:54:00:99:99:99 has been seen/);
    const garbage = await fetch(`${base}/status/hosts/%3Cscript%3E${suffix}`);
    assert.equal(garbage.status, 404);
    assert.equal(garbage.headers.get('content-type')?.split(';')[0], suffix === '' ? 'text/plain' : 'application/json');
    assert.match(await garbage.text(), /is not a MAC address/);
  }
  const json = (await (await fetch(`${base}/status/hosts/${watched.replaceAll(':', '')}.json`)).json()) as { mac: string; profile: { hostname: string } };
  assert.equal(json.mac, watched);
  assert.equal(json.profile.hostname, 'r1n001');
});
