/**
 * Group commit: how the lease changes of requests that arrive together are
 * kept, and when their replies may go. No sockets, timers or clock of its
 * own: the server says when to flush, reads the clock and carries out what
 * this module lets go.
 *
 * Every request of a batch (the server's: those that arrive within its
 * commit window, a millisecond after the first) is decided inside one
 * lease transaction, each in a nested one, so a later request sees the
 * leases an earlier one was given and no address is promised twice; a
 * request whose deciding or changes throw is undone alone, and the batch
 * goes on. The batch commits once, and its outcomes are carried out, in
 * the order the requests came, only once the commit is on stable storage
 * when the batch may hold an ACK. That fsync runs in the background
 * (transactionSyncedLater): the next batches are decided meanwhile, and
 * every batch that committed while one fsync ran shares the next one.
 *
 * A store several servers share may keep the batch but refuse some
 * requests' changes, which another server's conflict with (the database
 * decides, request by request): only those requests go unanswered.
 *
 * When the commit or its fsync fails, no request of the batch is answered,
 * ACK or not: a reply may promise nothing the store does not hold. Silence
 * rather than a NAK because a NAK makes a renewing client drop an address
 * it may keep using (RFC 2131 section 4.4.5); a silent server only makes
 * clients retransmit, and a later batch tries again. Ignored requests
 * changed nothing and are still carried out (logged as ignored).
 */
import type { DhcpDecision } from '../decide/types.js';
import { applyLeaseChanges, PartialCommitError, type LeaseStore } from './leases.js';

/** What deciding one request gives: its decision, and whatever else the server carries out with it. */
export interface Decided {
  decision: DhcpDecision;
}

/** Why a request gets no reply: it could not be decided, or its batch was not kept. */
export type CommitFailure = 'decide' | 'commit';

/** The server's part of group commit. */
export interface GroupCommitSteps<Request, Outcome extends Decided> {
  /** Runs `flush` once the requests that arrive together are queued (the server: after its commit window). */
  schedule(flush: () => void): void;
  /** A batch begins: the time its requests are decided at. */
  beginBatch(): number;
  /** Decides one request; throwing undoes only this request's changes. */
  decide(request: Request, now: number): Outcome;
  /** An outcome's lease changes are applied (still inside the batch's transaction). */
  applied(outcome: Outcome): void;
  /** Whether answering the request may bind a lease, so its batch must commit durably. */
  mayBind(request: Request): boolean;
  /** The outcome may go: its batch is kept (on stable storage, when it had to be). */
  carryOut(outcome: Outcome): void;
  /** The request gets no reply. */
  failed(request: Request, error: unknown, failure: CommitFailure): void;
}

export class GroupCommit<Request, Outcome extends Decided> {
  /** Requests queued for the next flush. */
  private queue: Request[] = [];
  /** Batches committed, waiting for their fsync before their outcomes are carried out. */
  private readonly syncing = new Set<Promise<void>>();

  constructor(
    private readonly store: LeaseStore,
    private readonly steps: GroupCommitSteps<Request, Outcome>,
  ) {}

  /** Queues a request; the first of a batch schedules the flush. */
  add(request: Request): void {
    this.queue.push(request);
    if (this.queue.length === 1) this.steps.schedule(this.flush);
  }

  /**
   * Drops the requests not decided yet (the lease store may be closed
   * next) and waits for the committed batches to be carried out.
   */
  async close(): Promise<void> {
    this.queue = [];
    await Promise.all([...this.syncing]);
  }

  /** Decides and commits the queued requests as one batch. */
  readonly flush = (): void => {
    const batch = this.queue;
    if (batch.length === 0) return; // close() dropped it
    this.queue = [];
    const now = this.steps.beginBatch();
    // unit: the order of the request's nested transaction in the batch (the first is 1), as PartialCommitError names them.
    const decided: Array<{ request: Request; outcome: Outcome; unit: number }> = [];
    let reached = 0;
    const decideAll = () => {
      for (const request of batch) {
        reached++;
        try {
          decided.push({ request, outcome: this.store.transaction(() => this.decideOne(request, now)), unit: reached });
        } catch (error) {
          this.steps.failed(request, error, 'decide');
        }
      }
    };
    let synced: Promise<void> | undefined;
    try {
      if (this.store.commitsRemotely === true || batch.some((request) => this.steps.mayBind(request)))
        synced = this.store.transactionSyncedLater(decideAll).synced;
      else this.store.transaction(decideAll);
    } catch (error) {
      this.batchFailed(decided, batch.slice(reached), error);
      return;
    }
    if (synced === undefined) {
      for (const { outcome } of decided) this.steps.carryOut(outcome);
      return;
    }
    const waiting = synced.then(
      () => {
        for (const { outcome } of decided) this.steps.carryOut(outcome);
      },
      (error: unknown) => (error instanceof PartialCommitError ? this.partlyKept(decided, error) : this.batchFailed(decided, [], error)),
    );
    this.syncing.add(waiting);
    void waiting.finally(() => this.syncing.delete(waiting));
  };

  private decideOne(request: Request, now: number): Outcome {
    const outcome = this.steps.decide(request, now);
    const { decision } = outcome;
    if (decision.kind !== 'ignore') applyLeaseChanges(this.store, decision.leaseChanges, now);
    this.steps.applied(outcome);
    return outcome;
  }

  /**
   * The store kept the batch but for some requests' changes (another
   * server's change conflicted with them): those requests get no reply, as
   * a request whose own changes failed while deciding; the rest go.
   */
  private partlyKept(decided: ReadonlyArray<{ request: Request; outcome: Outcome; unit: number }>, error: PartialCommitError): void {
    for (const { request, outcome, unit } of decided) {
      const refused = error.refused.get(unit);
      if (refused === undefined) this.steps.carryOut(outcome);
      else this.steps.failed(request, refused, 'decide');
    }
  }

  /**
   * Nothing of the batch was kept, or it cannot be known to be on disk.
   * Ignored requests changed nothing and are carried out as such; the
   * others, and any the failure kept from being decided at all, fail.
   */
  private batchFailed(decided: ReadonlyArray<{ request: Request; outcome: Outcome }>, undecided: readonly Request[], error: unknown): void {
    for (const { request, outcome } of decided) {
      if (outcome.decision.kind === 'ignore') this.steps.carryOut(outcome);
      else this.steps.failed(request, error, 'commit');
    }
    for (const request of undecided) this.steps.failed(request, error, 'commit');
  }
}
