import assert from 'node:assert/strict';
import { test } from 'node:test';
import { httpFileLabel, Metrics } from '../server/metrics.js';

const parts = new Set(['xen', 'vmlinuz', 'initrd.gz', 'ipxe.efi']);
const isPart = (name: string) => parts.has(name);

test('HTTP labels: part names from the manifest, kinds for per-host files, "other" for anything else', () => {
  assert.equal(httpFileLabel('/initrd.gz', isPart), 'initrd.gz');
  assert.equal(httpFileLabel('/builds/20261125-ab12/vmlinuz', isPart), 'vmlinuz');
  assert.equal(httpFileLabel('/b/5754a297/initrd.gz', isPart), 'initrd.gz', 'a build by its digest, as BIOS scripts name it');
  assert.equal(httpFileLabel('/b/not-a-digest/initrd.gz', isPart), 'other');
  assert.equal(httpFileLabel('/hosts/52-54-00-12-34-56/boot.ipxe?platform=pcbios', isPart), 'host:boot.ipxe');
  assert.equal(httpFileLabel('/hosts/52-54-00-12-34-56/builds/b1/xen.cfg', isPart), 'host:xen.cfg');
  assert.equal(httpFileLabel('/hosts/52-54-00-12-34-56/runtime.env', isPart), 'host:runtime.env');
  assert.equal(httpFileLabel('/hosts/52-54-00-12-34-56/domains/web.cfg', isPart), 'host:domain.cfg');
  for (const path of ['/random-name-1', '/builds/x/random-name-2', '/hosts/x/secret', '/a/b/c', '/']) {
    assert.equal(httpFileLabel(path, isPart), 'other', path);
  }
});

test('the exposition text carries every metric with its labels and values', async () => {
  const stages = new Map([
    ['ready', 3],
    ['dhcp-offer', 1],
  ]);
  const metrics = new Metrics(() => stages);
  metrics.dhcpPacket('DHCPDISCOVER', 'offer');
  metrics.dhcpPacket('DHCPDISCOVER', 'offer');
  metrics.dhcpPacket('DHCPREQUEST', 'nak');
  metrics.tftpTransfer('complete', 1_048_576);
  metrics.tftpTransfer('failed', 512);
  metrics.httpFile('initrd.gz', 2_555_837);
  metrics.bootCompleted(28.4);
  metrics.bootCompleted(41);
  const text = await metrics.text();
  const value = (series: string) => {
    const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
    assert.ok(line, `no ${series} in\n${text}`);
    return Number(line.slice(series.length + 1));
  };
  assert.equal(value('rackboot_dhcp_packets_total{type="DHCPDISCOVER",result="offer"}'), 2);
  assert.equal(value('rackboot_dhcp_packets_total{type="DHCPREQUEST",result="nak"}'), 1);
  assert.equal(value('rackboot_tftp_transfers_total{result="complete"}'), 1);
  assert.equal(value('rackboot_tftp_bytes_total'), 1_049_088);
  assert.equal(value('rackboot_http_bytes_total{file="initrd.gz"}'), 2_555_837);
  assert.equal(value('rackboot_hosts{stage="ready"}'), 3);
  assert.equal(value('rackboot_hosts{stage="dhcp-offer"}'), 1);
  assert.equal(value('rackboot_boot_duration_seconds_bucket{le="30"}'), 1);
  assert.equal(value('rackboot_boot_duration_seconds_bucket{le="45"}'), 2);
  assert.equal(value('rackboot_boot_duration_seconds_count'), 2);
  assert.ok(value('rackboot_process_resident_memory_bytes') > 0);
  // The gauge follows its source at each scrape.
  stages.delete('dhcp-offer');
  stages.set('ready', 4);
  const again = await metrics.text();
  assert.match(again, /^rackboot_hosts\{stage="ready"\} 4$/m);
  assert.doesNotMatch(again, /stage="dhcp-offer"/);
  assert.match(metrics.contentType, /^text\/plain; version=0\.0\.4/);
});
