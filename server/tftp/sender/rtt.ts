/**
 * RFC 6298's round-trip estimator (section 2), in ms: what a transfer's
 * retransmission timeout adapts by. The native pump
 * (server/native/tftp_endpoint.c, rtt_sample) runs the same estimator on
 * the transfers it carries, and test/tftp/rtt.test.ts checks the two with
 * the same vectors. Pure.
 */

export interface RoundTripEstimate {
  smoothedMs: number;
  variationMs: number;
}

/** The estimate after one more sample; the first sample starts it (variation half the sample). */
export function sampleRoundTrip(estimate: RoundTripEstimate | undefined, sampleMs: number): RoundTripEstimate {
  if (estimate === undefined) return { smoothedMs: sampleMs, variationMs: sampleMs / 2 };
  return {
    smoothedMs: 0.875 * estimate.smoothedMs + 0.125 * sampleMs,
    variationMs: 0.75 * estimate.variationMs + 0.25 * Math.abs(estimate.smoothedMs - sampleMs),
  };
}

/** The retransmission timeout: smoothed + 4 x variation, within minMs..maxMs, in whole ms, at least 1. */
export function retransmissionTimeout(estimate: RoundTripEstimate, minMs: number, maxMs: number): number {
  const timeout = Math.min(maxMs, Math.max(minMs, estimate.smoothedMs + 4 * estimate.variationMs));
  return Math.max(1, Math.floor(timeout));
}
