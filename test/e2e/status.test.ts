import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { cliPath, ensureTestBuild, repoRoot } from '../support/build.js';
import { bootMachine, httpPort, serverAddress, startRack, type Rack } from '../support/boot.js';
import { launchBrowser } from '../support/browser.js';
import { until } from '../support/until.js';

/**
 * A real machine on the status page: QEMU's BIOS iPXE ROM boots through
 * rackboot while headless Chromium (in the rack's namespace) watches
 * /status; the host must show up and move through its stages to ready,
 * live. Then the same boot is checked in /metrics and /api/hosts.
 */

const mac = '52:54:00:5a:00:01';
const base = `http://${serverAddress}:${httpPort}`;
let rack: Rack;
let browser: Browser;

before(async () => {
  rack = await startRack({
    'node01.yaml': [
      `mac: ${mac}`,
      'hostname: status01',
      'network:',
      '  mode: static',
      '  address: 198.18.0.61/24',
      'boot:',
      '  menuTimeout: 0',
      '  kernelArgs: "rackboot.poweroff=1"',
      // A setting the tiny runtime cannot apply: the boot goes on, and says why.
      'ssh: true',
      'domains: []',
      '',
    ].join('\n'),
  });
  browser = await launchBrowser({ netns: rack.ns.name, workDir: rack.work });
});

after(async () => {
  await browser?.close();
  await rack?.close();
});

/** curl inside the rack's namespace (the server listens only there). */
function curl(url: string, headers: string[] = []): string {
  return rack.ns.exec('curl', ['--silent', '--show-error', '--fail', ...headers.flatMap((header) => ['-H', header]), url]);
}

test('a booting host appears on the status page and moves through its stages to ready', { timeout: 420_000 }, async () => {
  const page = await browser.newPage();
  try {
    await page.goto(`${base}/status`);
    await page.waitForSelector('#live.on');
    assert.equal(await page.locator('#hosts .empty').textContent(), 'No host has asked to boot yet.');

    // Every stage the page shows for the host, in order, as the live stream delivers it.
    await page.exposeFunction('sawStage', (stage: string) => seen.push(stage));
    const seen: string[] = [];
    await page.evaluate((watched) => {
      let last = '';
      new MutationObserver(() => {
        const badge = document.querySelector(`#hosts tr[data-mac="${watched}"] .stage`);
        const stage = badge?.textContent ?? '';
        if (stage !== '' && stage !== last) {
          last = stage;
          (window as unknown as { sawStage(stage: string): void }).sawStage(stage);
        }
      }).observe(document.querySelector('#hosts tbody')!, { childList: true, subtree: true, characterData: true });
    }, mac);

    const booting = bootMachine(rack, 'bios', mac);
    // The host's own page, opened from its row as soon as the host shows up
    // (its first DHCP packet), follows its log for the rest of the boot.
    const hostPage = await browser.newPage();
    const href = await page.locator(`#hosts tr[data-mac="${mac}"] a`).first().getAttribute('href', { timeout: 120_000 });
    assert.equal(decodeURIComponent(href ?? ''), `/status/hosts/${mac}`);
    await hostPage.goto(`${base}${href ?? ''}`);
    const adminToken = (await readFile(path.join(rack.work, 'state', 'admin.token'), 'utf8')).trim();
    await hostPage.fill('#token', adminToken);
    await hostPage.click('#token-form button');
    await hostPage.locator('#log-view').waitFor({ state: 'visible' });
    // When each line reached the page.
    await hostPage.evaluate(() => {
      const seen: Array<{ text: string; at: number }> = [];
      (window as unknown as { seenLines: typeof seen }).seenLines = seen;
      new MutationObserver((changes) => {
        for (const change of changes) for (const node of change.addedNodes) seen.push({ text: node.textContent ?? '', at: Date.now() });
      }).observe(document.getElementById('log-lines')!, { childList: true });
    });
    const result = await booting;
    const offAt = Date.now();
    process.stderr.write(`BIOS boot watched on the status page: ${result.seconds.toFixed(1)} s to ready\n`);
    // The boot took its secrets with its token (runtime.env served to it), and
    // no token of any kind is in the whole server log of the boot.
    assert.ok(
      rack.events().some((event) => event.event === 'runtime-env' && event.mac === mac),
      'runtime.env went out',
    );
    assert.doesNotMatch(rack.server.transcript, /\b[bgi]\.[A-Za-z0-9_-]{12}\.[A-Za-z0-9_.-]{22,}/, 'a token in the server log');
    for (const token of result.console.matchAll(/rackboot\.token=(\S+)/g))
      assert.ok(!rack.server.transcript.includes(token[1]!), 'the boot token in the server log');
    const row = page.locator(`#hosts tr[data-mac="${mac}"]`);
    await row.locator('.stage', { hasText: /^ready$/ }).waitFor({ timeout: 15_000 });
    assert.equal(await row.locator('.hostname').textContent(), 'status01');
    assert.equal(await row.locator('.profile').textContent(), 'node01.yaml');
    assert.equal(await row.locator('.address').textContent(), '198.18.0.61');
    assert.match((await row.locator('.last-boot').textContent()) ?? '', /^\d+\.\d s$/);
    // The build its runtime reported ready with: the one the server handed it, with the Xen and kernel it ran.
    const served = (JSON.parse(await readFile(path.join(await ensureTestBuild(), 'current', 'manifest.json'), 'utf8')) as { id: string }).id;
    await row.locator('.build', { hasText: served }).waitFor({ timeout: 15_000 });
    assert.match((await row.locator('.build').getAttribute('title')) ?? '', /^Xen 4\.17\S*, kernel 6\.1\.\S+-amd64$/);

    // It moved: DHCP first, then the boot files, then the runtime's own reports.
    process.stderr.write(`stages seen live: ${seen.join(' > ')}\n`);
    assert.ok(seen.length >= 3, `expected the row to move through several stages, saw ${seen.join(', ')}`);
    assert.match(seen[0]!, /^dhcp-/);
    assert.equal(seen.at(-1), 'ready');

    const artifacts = path.join(repoRoot, 'test', '.work', 'artifacts');
    await mkdir(artifacts, { recursive: true });
    await page.setViewportSize({ width: 1280, height: 560 });
    await page.screenshot({ path: path.join(artifacts, 'status-page-boot.png'), fullPage: true });

    // The host's page: its log had iPXE's fetches, the kernel's lines and
    // the runtime's while the machine ran, the setting it could not apply
    // among them.
    const lines = () => hostPage.locator('#log-lines .line').evaluateAll((list) => list.map((line) => line.textContent ?? ''));
    const wanted: Array<[string, RegExp]> = [
      ["iPXE's boot script", /ipxe: iPXE fetched its boot script \(\d+ bytes\)/],
      ["iPXE's initrd.gz", /ipxe: iPXE fetched initrd\.gz \(\d+ bytes\)/],
      ['a kernel line', /kernel: Linux version|kernel: \S/],
      ["the runtime's failed setting", /rackboot-runtime: setting ssh failed: this runtime has no SSH server yet/],
      ["the runtime's ready line", /rackboot-runtime: ready hostname=status01 ip=198\.18\.0\.61\/24/],
    ];
    let last: string[] = [];
    const have = async () => {
      const now = await lines();
      last = now;
      return wanted.every(([, pattern]) => now.some((line) => pattern.test(line))) ? now : undefined;
    };
    const shown = await until("the boot's lines on the host page", 30_000, have, () => last.slice(-40).join('\n'));
    assert.ok(shown.filter((line) => /\bkernel: /.test(line)).length > 20, 'the kernel lines klogd sent');
    assert.ok(!shown.some((line) => /rackboot\.token=(?!\(not kept\))|\b[bgi]\.[A-Za-z0-9_-]{12}\.[A-Za-z0-9_.-]{22,}/.test(line)), 'no token on the page');
    const seenLines = (await hostPage.evaluate(() => (window as unknown as { seenLines: Array<{ text: string; at: number }> }).seenLines)) ?? [];
    const firstKernel = seenLines.find((line) => /\bkernel: /.test(line.text));
    assert.ok(firstKernel !== undefined && firstKernel.at < offAt, 'kernel lines reached the page while the machine still ran');
    // Its boot picture names the failure.
    assert.match((await hostPage.locator('#boots .failures').first().textContent()) ?? '', /setting-failed: ssh: this runtime has no SSH server yet/);
    await hostPage.setViewportSize({ width: 1280, height: 1000 });
    await hostPage.screenshot({ path: path.join(artifacts, 'host-page-boot.png'), fullPage: true });
    // The machine is off: the lines stay (the page, reloaded, reads them again).
    await hostPage.reload();
    await hostPage
      .locator('#log-lines .line')
      .nth(shown.length - 1)
      .waitFor({ timeout: 15_000 });
    assert.deepEqual(await lines(), shown);
    await hostPage.close();
    // The same failure in rackboot logs.
    const logged = rack.ns.exec(process.execPath, [cliPath, 'logs', mac, '--server', base, '--state', path.join(rack.work, 'state')]);
    assert.match(logged, /^1 \S+ syslog rackboot-runtime: setting ssh failed: this runtime has no SSH server yet$/m);
  } finally {
    await page.close();
  }

  // The same boot in the metrics...
  const metrics = curl(`${base}/metrics`);
  const value = (series: string) =>
    Number(
      metrics
        .split('\n')
        .find((line) => line.startsWith(`${series} `))
        ?.slice(series.length + 1),
    );
  assert.ok(value('rackboot_dhcp_packets_total{type="DHCPDISCOVER",result="offer"}') >= 1, metrics);
  assert.ok(value('rackboot_dhcp_packets_total{type="DHCPREQUEST",result="ack"}') >= 1);
  for (const part of ['xen', 'vmlinuz', 'initrd.gz']) assert.ok(value(`rackboot_http_bytes_total{file="${part}"}`) > 0, `no HTTP bytes for ${part}`);
  assert.equal(value('rackboot_hosts{stage="ready"}'), 1);
  assert.equal(value('rackboot_boot_duration_seconds_count'), 1);

  // ...and in the admin API, with its timeline.
  const token = (await readFile(path.join(rack.work, 'state', 'admin.token'), 'utf8')).trim();
  const host = JSON.parse(curl(`${base}/api/hosts/${mac}`, [`Authorization: Bearer ${token}`])) as {
    stage: string;
    timeline: Array<{ source: string; stage: string; detail?: string }>;
  };
  assert.equal(host.stage, 'ready');
  const stages = host.timeline.map((event) => `${event.source}:${event.stage}`);
  for (const wanted of [
    'dhcp:dhcp-discover',
    'dhcp:dhcp-offer',
    'dhcp:dhcp-request',
    'dhcp:dhcp-ack',
    'http:boot.ipxe',
    'http:boot-file',
    'http:runtime.env',
    'runtime:booted',
    'runtime:ready',
  ]) {
    assert.ok(stages.includes(wanted), `${wanted} missing from the timeline: ${stages.join(', ')}`);
  }
  assert.ok(host.timeline.some((event) => event.stage === 'boot-file' && event.detail === 'initrd.gz'));

  // ...and by the CLI, asking the running server.
  const listed = JSON.parse(rack.ns.exec(process.execPath, [cliPath, 'hosts', '--server', base, '--state', path.join(rack.work, 'state'), '--json'])) as Array<{
    mac: string;
    stage: string;
    hostname: string;
  }>;
  assert.deepEqual(
    listed.map(({ mac: listedMac, stage, hostname }) => [listedMac, stage, hostname]),
    [[mac, 'ready', 'status01']],
  );
  const table = rack.ns.exec(process.execPath, [cliPath, 'hosts', '--server', base, '--state', path.join(rack.work, 'state')]);
  assert.match(table, new RegExp(`^${mac}  status01  ready  198\\.18\\.0\\.61 `, 'm'));
});

test(
  "another client on the segment asking for the host's secrets gets 403: logged and counted, never on the host's timeline",
  { timeout: 60_000 },
  async () => {
    // The server's own namespace is another client on the boot network: not
    // the host, and without the token of the host's boot.
    const url = `${base}/hosts/${mac.replaceAll(':', '-')}/runtime.env`;
    for (const header of [[], ['-H', 'X-Rackboot-Token: b.AAAAAAAAAAAA.0.c6120001.AAAAAAAAAAAAAAAAAAAAAA']]) {
      const answer = rack.ns.exec('curl', ['--silent', '--output', '/dev/null', '--write-out', '%{http_code}', ...header, url]);
      assert.equal(answer, '403');
    }
    const domain = rack.ns.exec('curl', [
      '--silent',
      '--output',
      '/dev/null',
      '--write-out',
      '%{http_code}',
      `${base}/hosts/${mac.replaceAll(':', '-')}/domains/web.cfg`,
    ]);
    assert.equal(domain, '403');
    // A forged report is refused too, and the host stays as it was.
    const report = rack.ns.exec('curl', [
      '--silent',
      '--output',
      '/dev/null',
      '--write-out',
      '%{http_code}',
      '--data',
      'stage=failed&detail=forged',
      `${base}/hosts/${mac}/events`,
    ]);
    assert.equal(report, '403');
    const token = (await readFile(path.join(rack.work, 'state', 'admin.token'), 'utf8')).trim();
    const host = JSON.parse(curl(`${base}/api/hosts/${mac}`, [`Authorization: Bearer ${token}`])) as {
      stage: string;
      failures: number;
      timeline: Array<{ stage: string; detail?: string }>;
    };
    assert.deepEqual(
      host.timeline.filter((event) => ['refused', 'failed', 'alarm'].includes(event.stage)),
      [],
      JSON.stringify(host.timeline),
    );
    assert.equal(host.stage, 'ready', 'a refused stranger does not move the host');
    assert.equal(host.failures, 1, 'the one failure is its own (ssh), not the forged report');
    const metrics = curl(`${base}/metrics`);
    assert.match(metrics, /^rackboot_host_refusals_total\{what="runtime.env"\} 2$/m);
    assert.match(metrics, /^rackboot_host_refusals_total\{what="domain.cfg"\} 1$/m);
    assert.match(metrics, /^rackboot_host_refusals_total\{what="event"\} 1$/m);
    // Log lines reach the transcript within the logger's flush interval.
    let denied = rack.events().filter((event) => event.event === 'host-secret-refused');
    for (let waited = 0; denied.length < 3 && waited < 5000; waited += 100) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      denied = rack.events().filter((event) => event.event === 'host-secret-refused');
    }
    assert.equal(denied.length, 3);
    assert.equal(denied[0]!.remote, serverAddress);
  },
);
