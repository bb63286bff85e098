/**
 * Reports already taken, by their sender's report id, so that a retry is
 * taken once. A guest posts its report until an answer comes back within
 * its 5 s timeout; when the server's answer was only late, the same report
 * arrives again, and the timeline would show the guest ready twice.
 *
 * Bounded twice: an id is kept for `keepMs`, and at most `capacity` ids are
 * kept (the oldest go first), so a host that sends a new id with every
 * report costs a fixed amount of memory.
 */
export class RepeatedReports {
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly keepMs = 15 * 60_000,
    private readonly capacity = 4096,
  ) {}

  /**
   * Whether this report was taken within `keepMs` before `now`; when not,
   * it is remembered as taken now. The key names the host, so one host's
   * ids never hide another's reports.
   */
  repeated(mac: string, reportId: string, now: number): boolean {
    const key = `${mac} ${reportId}`;
    const taken = this.seen.get(key);
    if (taken !== undefined && now - taken < this.keepMs) return true;
    this.seen.delete(key);
    this.seen.set(key, now);
    for (const [oldest, time] of this.seen) {
      if (this.seen.size <= this.capacity && now - time < this.keepMs) break;
      this.seen.delete(oldest);
    }
    return false;
  }

  get size(): number {
    return this.seen.size;
  }
}
