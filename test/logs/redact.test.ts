import assert from 'node:assert/strict';
import { test } from 'node:test';
import { redactTokens } from '../../server/logs/redact.js';

test("tokens never reach the log store: a kernel's command line, and a bare token of any kind", () => {
  assert.equal(
    redactTokens(
      '[    0.000000] Command line: console=hvc0 rackboot.server=http://198.18.0.1:8080 rackboot.domain=demo1 rackboot.token=g.hZoXUzPCIszV.cKTHh01ihD2j_kXz_rHAzg',
    ),
    '[    0.000000] Command line: console=hvc0 rackboot.server=http://198.18.0.1:8080 rackboot.domain=demo1 rackboot.token=(not kept)',
  );
  assert.equal(
    redactTokens('Kernel command line: quiet rackboot.token=b.AAAAAAAAAAAA.0.c6120001.AAAAAAAAAAAAAAAAAAAAAA rackboot.net=dhcp'),
    'Kernel command line: quiet rackboot.token=(not kept) rackboot.net=dhcp',
  );
  assert.equal(redactTokens('someone pasted b.AAAAAAAAAAAA.0.c6120001.AAAAAAAAAAAAAAAAAAAAAA here'), 'someone pasted (not kept) here');
  assert.equal(redactTokens('image link i.abcdefghijkl.abcdefghijklmnopqrstuv'), 'image link (not kept)');
  for (const plain of ['ready hostname=node01 ip=198.18.0.50/24', 'e1000 0000:00:03.0 eth0: link up', 'build 20261206T185823.889Z-5738a5ce', 'b.short.token'])
    assert.equal(redactTokens(plain), plain);
});
