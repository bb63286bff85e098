import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { negotiateOptions } from '../../server/tftp/wire/options.js';

const option = (name: string, value: string) => ({ name, value });

describe('negotiateOptions', () => {
  test('no options: RFC 1350 defaults and no OACK', () => {
    assert.deepEqual(negotiateOptions([], 1000), {
      blockSize: 512,
      windowSize: 1,
      timeoutMs: undefined,
      acknowledged: [],
      ignored: [],
    });
  });

  test('OVMF UEFI PXE: tsize 0 blksize 1468 windowsize 4, answered in the order asked', () => {
    const result = negotiateOptions([option('tsize', '0'), option('blksize', '1468'), option('windowsize', '4')], 1_234_567);
    assert.deepEqual(result.acknowledged, [option('tsize', '1234567'), option('blksize', '1468'), option('windowsize', '4')]);
    assert.equal(result.blockSize, 1468);
    assert.equal(result.windowSize, 4);
  });

  test('blksize is clamped to 65464 and ignored below 8 (RFC 2348)', () => {
    assert.deepEqual(negotiateOptions([option('blksize', '70000')], 1).acknowledged, [option('blksize', '65464')]);
    assert.equal(negotiateOptions([option('blksize', '65464')], 1).blockSize, 65464);
    assert.equal(negotiateOptions([option('blksize', '8')], 1).blockSize, 8);
    const tooSmall = negotiateOptions([option('blksize', '7')], 1);
    assert.equal(tooSmall.blockSize, 512);
    assert.deepEqual(tooSmall.acknowledged, []);
    assert.deepEqual(tooSmall.ignored, [{ ...option('blksize', '7'), reason: 'below the RFC 2348 minimum of 8' }]);
  });

  test('windowsize is clamped to 64 and ignored outside 1..65535 (RFC 7440)', () => {
    assert.deepEqual(negotiateOptions([option('windowsize', '65535')], 1).acknowledged, [option('windowsize', '64')]);
    assert.equal(negotiateOptions([option('windowsize', '8')], 1).windowSize, 8);
    assert.deepEqual(negotiateOptions([option('windowsize', '0')], 1).acknowledged, []);
    assert.deepEqual(negotiateOptions([option('windowsize', '65536')], 1).acknowledged, []);
  });

  test('timeout 1..255 seconds is echoed and used (RFC 2349)', () => {
    const result = negotiateOptions([option('timeout', '3')], 1);
    assert.equal(result.timeoutMs, 3000);
    assert.deepEqual(result.acknowledged, [option('timeout', '3')]);
    assert.deepEqual(negotiateOptions([option('timeout', '0')], 1).acknowledged, []);
    assert.deepEqual(negotiateOptions([option('timeout', '256')], 1).acknowledged, []);
  });

  test('tsize answers the real size, but not in netascii where the size is unknown', () => {
    assert.deepEqual(negotiateOptions([option('tsize', '0')], 0).acknowledged, [option('tsize', '0')]);
    assert.deepEqual(negotiateOptions([option('tsize', '0')], 41_943_040).acknowledged, [option('tsize', '41943040')]);
    const netascii = negotiateOptions([option('tsize', '0')], undefined);
    assert.deepEqual(netascii.acknowledged, []);
    assert.equal(netascii.ignored[0]?.reason, 'size unknown before sending (netascii)');
  });

  test('non-numbers, unknown options and repeats are left out of the OACK', () => {
    const result = negotiateOptions(
      [option('blksize', '1k'), option('blksize', '1024'), option('rollover', '0'), option('tsize', '-1'), option('blksize', '0x10')],
      1,
    );
    assert.equal(result.blockSize, 512);
    assert.deepEqual(result.acknowledged, []);
    assert.deepEqual(
      result.ignored.map((ignored) => ignored.reason),
      ['not a decimal number', 'repeated; the first one counts', 'not supported', 'not a decimal number', 'repeated; the first one counts'],
    );
  });

  test('limits can be lowered by the caller', () => {
    const result = negotiateOptions([option('blksize', '9000'), option('windowsize', '16')], 1, { maxBlockSize: 1468, maxWindowSize: 8 });
    assert.deepEqual(result.acknowledged, [option('blksize', '1468'), option('windowsize', '8')]);
  });
});
