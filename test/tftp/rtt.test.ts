import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nativeBinding } from '../../server/net/native.js';
import { retransmissionTimeout, sampleRoundTrip, type RoundTripEstimate } from '../../server/tftp/sender/rtt.js';

/**
 * One specification of RFC 6298's estimator, run against both
 * implementations: server/tftp/sender/rtt.ts (windows, and transfers the pump
 * hands back) and the native pump's rtt_sample (server/native/tftp_endpoint.c).
 * Each vector is a start, bounds and samples, with the estimate and timeout
 * after each sample worked out by hand from RFC 6298 section 2.
 */

interface Vector {
  name: string;
  start?: RoundTripEstimate;
  minMs: number;
  maxMs: number;
  samples: number[];
  /** After each sample: smoothed, variation, timeout. */
  expected: Array<[number, number, number]>;
}

const vectors: Vector[] = [
  {
    name: 'first sample: smoothed = R, variation = R/2, timeout = R + 4 x R/2',
    minMs: 1,
    maxMs: 10_000,
    samples: [100],
    expected: [[100, 50, 300]],
  },
  {
    name: 'steady samples: variation decays by 3/4 a sample',
    minMs: 1,
    maxMs: 10_000,
    samples: [100, 100, 100],
    expected: [
      [100, 50, 300],
      [100, 37.5, 250],
      [100, 28.125, 212],
    ],
  },
  {
    name: 'a slower sample: smoothed moves by 1/8 of the difference, variation by 1/4 of it',
    start: { smoothedMs: 10, variationMs: 2 },
    minMs: 1,
    maxMs: 10_000,
    samples: [50],
    expected: [[15, 11.5, 61]],
  },
  {
    name: 'fast samples stop at the floor',
    minMs: 200,
    maxMs: 1000,
    samples: [0.5, 0.25],
    expected: [
      [0.5, 0.25, 200],
      [0.46875, 0.25, 200],
    ],
  },
  {
    name: 'slow samples stop at the ceiling',
    minMs: 200,
    maxMs: 1000,
    samples: [900],
    expected: [[900, 450, 1000]],
  },
  {
    name: 'whole ms, rounded down, never under 1',
    minMs: 1,
    maxMs: 1000,
    samples: [0.1, 0.3],
    expected: [
      [0.1, 0.05, 1],
      [0.125, 0.0875, 1],
    ],
  },
];

for (const vector of vectors) {
  test(`rtt: ${vector.name}`, () => {
    let estimate = vector.start;
    const script = vector.samples.map((sample) => {
      estimate = sampleRoundTrip(estimate, sample);
      return [estimate.smoothedMs, estimate.variationMs, retransmissionTimeout(estimate, vector.minMs, vector.maxMs)];
    });
    assert.deepEqual(script, vector.expected, 'server/tftp/sender/rtt.ts');

    const native = nativeBinding().roundTripTimeouts(vector.samples, {
      smoothedMs: vector.start?.smoothedMs ?? -1,
      variationMs: vector.start?.variationMs ?? 0,
      minMs: vector.minMs,
      maxMs: vector.maxMs,
    });
    assert.deepEqual(
      native.map((step) => [step.smoothedMs, step.variationMs, step.timeoutMs]),
      vector.expected,
      'server/native/tftp_endpoint.c',
    );
  });
}

test('rtt: the native estimator refuses a malformed state rather than guess', () => {
  assert.throws(() => nativeBinding().roundTripTimeouts([1], { smoothedMs: -1, variationMs: 0, minMs: 0, maxMs: 10 }), /roundTripTimeouts\(samples/);
  assert.throws(() => nativeBinding().roundTripTimeouts([1], { smoothedMs: -1, variationMs: 0, minMs: 20, maxMs: 10 }), /roundTripTimeouts\(samples/);
});
