import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeIpxeFailure, ipxeErrorText, parseIpxeFailure } from '../../server/logs/ipxe-report.js';

test("iPXE's failure report: a step and ${errno} as iPXE writes it (0x and hex) or in decimal; anything else names its field", () => {
  assert.deepEqual(parseIpxeFailure('initrd.gz', '0x3d12608e'), { ok: true, failure: { step: 'initrd.gz', errno: 0x3d12608e } });
  assert.deepEqual(parseIpxeFailure('memtest86+x64.bin', '1024'), { ok: true, failure: { step: 'memtest86+x64.bin', errno: 1024 } });
  assert.deepEqual(parseIpxeFailure('boot-script', '0x0'), { ok: true, failure: { step: 'boot-script', errno: 0 } });
  for (const [step, errno, field] of [
    ['', '0x1', 'step'],
    ['../etc', '0x1', 'step'],
    ['.hidden', '0x1', 'step'],
    ['x'.repeat(65), '0x1', 'step'],
    ['xen', '', 'errno'],
    ['xen', '0x', 'errno'],
    ['xen', '0x123456789', 'errno'],
    ['xen', '4294967296', 'errno'],
    ['xen', '-1', 'errno'],
    ['xen', '3d12608e', 'errno'],
  ] as const) {
    const parsed = parseIpxeFailure(step, errno);
    assert.equal(parsed.ok, false, `${step} ${errno}`);
    assert.equal(!parsed.ok && parsed.field, field, `${step} ${errno}`);
  }
});

test('the line a failure leaves names the step and the page that explains the error', () => {
  assert.equal(ipxeErrorText(0x2e008081), 'iPXE error 0x2e008081 (https://ipxe.org/err/2e008081)');
  assert.equal(ipxeErrorText(0x1), 'iPXE error 0x00000001 (https://ipxe.org/err/00000001)');
  assert.equal(describeIpxeFailure({ step: 'vmlinuz', errno: 0x2e008081 }), 'iPXE failed at vmlinuz: iPXE error 0x2e008081 (https://ipxe.org/err/2e008081)');
  assert.equal(describeIpxeFailure({ step: 'boot-script', errno: 1 }), 'iPXE failed at its boot script: iPXE error 0x00000001 (https://ipxe.org/err/00000001)');
  assert.equal(
    describeIpxeFailure({ step: 'boot', errno: 1 }),
    'iPXE failed at booting what it fetched: iPXE error 0x00000001 (https://ipxe.org/err/00000001)',
  );
});
