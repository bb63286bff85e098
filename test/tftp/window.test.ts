import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { interpretAck, wireBlockNumber } from '../../server/tftp/sender/window.js';
import { maxBackoffMs, retransmissionDelay } from '../../server/tftp/sender/sender.js';

describe('block window arithmetic', () => {
  test('block numbers wrap from 65535 to 0', () => {
    assert.equal(wireBlockNumber(1), 1);
    assert.equal(wireBlockNumber(65535), 65535);
    assert.equal(wireBlockNumber(65536), 0);
    assert.equal(wireBlockNumber(65537), 1);
    assert.equal(wireBlockNumber(2 * 65536 + 5), 5);
  });

  test('an ACK for the last block sent advances the window', () => {
    assert.deepEqual(interpretAck(4, 0, 4), { kind: 'advance', index: 4 });
    assert.deepEqual(interpretAck(1, 0, 1), { kind: 'advance', index: 1 });
  });

  test('an ACK inside the window advances to that block (the rest was lost)', () => {
    assert.deepEqual(interpretAck(6, 4, 8), { kind: 'advance', index: 6 });
  });

  test('repeating the last ACK is a duplicate, never a reason to resend', () => {
    assert.deepEqual(interpretAck(4, 4, 8), { kind: 'duplicate' });
    assert.deepEqual(interpretAck(0, 0, 4), { kind: 'duplicate' });
  });

  test('ACKs for blocks not sent yet or acknowledged long ago are out of window', () => {
    assert.deepEqual(interpretAck(9, 4, 8), { kind: 'outOfWindow' });
    assert.deepEqual(interpretAck(3, 4, 8), { kind: 'outOfWindow' });
  });

  test('ACKs are read across the 65535 to 0 rollover', () => {
    // Blocks 65534..65541 (wire 65534, 65535, 0, 1, ..., 5) are in flight.
    assert.deepEqual(interpretAck(65535, 65533, 65541), { kind: 'advance', index: 65535 });
    assert.deepEqual(interpretAck(0, 65533, 65541), { kind: 'advance', index: 65536 });
    assert.deepEqual(interpretAck(5, 65533, 65541), { kind: 'advance', index: 65541 });
    assert.deepEqual(interpretAck(0, 65536, 65540), { kind: 'duplicate' });
    assert.deepEqual(interpretAck(65535, 65536, 65540), { kind: 'outOfWindow' });
    // Second lap.
    assert.deepEqual(interpretAck(3, 131_072, 131_075), { kind: 'advance', index: 131_075 });
  });
});

test('retransmissions back off: the timeout doubles per try, up to 8 s or the asked timeout', () => {
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6].map((tries) => retransmissionDelay(200, tries)),
    [200, 400, 800, 1600, 3200, 6400, 8000],
  );
  assert.deepEqual(
    [0, 1, 2, 3, 4].map((tries) => retransmissionDelay(1000, tries)),
    [1000, 2000, 4000, 8000, 8000],
  );
  assert.equal(retransmissionDelay(20_000, 3), 20_000, 'a client that asked for 20 s gets 20 s, not less');
  assert.equal(retransmissionDelay(1000, 1000), maxBackoffMs);
});
