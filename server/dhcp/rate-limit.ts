/**
 * A token bucket: up to `perSecond` takes a second on average, and a burst
 * of as many at once after a quiet second. The clock is passed in.
 */
export class TokenBucket {
  private tokens: number;
  private filledAt: number | undefined;

  constructor(private readonly perSecond: number) {
    if (!(perSecond > 0) || !Number.isFinite(perSecond)) throw new RangeError(`rate ${perSecond} is not a positive number`);
    this.tokens = perSecond;
  }

  /** Takes a token at `now` (milliseconds) if there is one. */
  take(now: number): boolean {
    if (this.filledAt !== undefined && now > this.filledAt) {
      this.tokens = Math.min(this.perSecond, this.tokens + ((now - this.filledAt) / 1000) * this.perSecond);
    }
    this.filledAt = Math.max(now, this.filledAt ?? now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
