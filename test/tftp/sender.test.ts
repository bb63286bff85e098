import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Sender, type OpenedFile, type PumpStop, type SenderAction, type SenderOptions } from '../../server/tftp/sender/sender.js';

/**
 * The sender's rules without a socket, a file or a clock: each case feeds
 * events with their times and compares what the sender answers, rendered
 * as one line per event. A sendBlocks answer is carried out as the
 * transfer would (every block handed to the socket at that time, then the
 * wait armed), so its line shows the blocks and the wait together.
 */

const defaults: SenderOptions = {
  blockSize: 512,
  windowSize: 1,
  timeoutMs: 1000,
  minTimeoutMs: 1,
  retries: 5,
  silentTimeoutMs: 60_000,
  adaptive: false,
  optionAck: false,
  optionAckHasSize: false,
};

/** A file of 10 blocks, the last one 100 bytes. */
const tenBlocks: OpenedFile = { finalIndex: 10, finalLength: 100, pumpable: false };

type Step =
  | { at: number; start: true }
  | { at: number; open: OpenedFile }
  | { at: number; ack: number }
  /** The timer fires; an expiry it reports is handled at once. */
  | { at: number; timer: true }
  | { at: number; error: string }
  | { at: number; pumpStarted: true }
  | { at: number; pumpWouldBlock: true }
  | { at: number; pumpStopped: Omit<PumpStop, 'roundTrip' | 'polledAcks' | 'pollMisses' | 'sinceSentMs'> & Partial<PumpStop> };

/** What an action comes to, carried out at `now` as ReadTransfer would. */
function render(sender: Sender, action: SenderAction, now: number): string {
  switch (action.kind) {
    case 'none':
      return 'none';
    case 'openFile':
      return 'open file';
    case 'sendOptionAck':
      return `send OACK, wait until ${action.until}`;
    case 'sendBlocks': {
      const { from, to } = action;
      if (to >= from) sender.blocksSent(from, to - from + 1, 0, now);
      const { until } = sender.windowSent(now);
      return `${to >= from ? `send ${from}..${to}` : 'send nothing'}, wait until ${until}`;
    }
    case 'startPump':
      return `pump from ${action.request.from} to ${action.request.finalIndex}, timeout ${action.request.timeoutMs}`;
    case 'wait':
      return `wait until ${action.until}`;
    case 'expire':
      return render(sender, sender.expire(action.generation, now), now);
    case 'waitAndExpire':
      return `wait until ${action.until}, then ${render(sender, sender.expire(action.generation, now), now)}`;
    case 'resume':
      return `resume: ${render(sender, sender.resume(), now)}`;
    case 'finish':
      return `finish ${action.outcome}${action.detail !== undefined ? `: ${action.detail}` : ''}${
        action.errorMessage !== undefined ? ` (ERROR "${action.errorMessage}")` : ''
      }`;
  }
}

function step(sender: Sender, event: Step): string {
  const now = event.at;
  if ('start' in event) return render(sender, sender.start(now), now);
  if ('open' in event) return render(sender, sender.fileOpened(event.open), now);
  if ('ack' in event) return render(sender, sender.acknowledge(event.ack, now), now);
  if ('timer' in event) return render(sender, sender.timerFired(now), now);
  if ('error' in event) return render(sender, sender.clientError(0, event.error), now);
  if ('pumpStarted' in event) {
    sender.pumpStarted(now);
    return 'pumping';
  }
  if ('pumpWouldBlock' in event) return render(sender, sender.pumpWouldBlock(), now);
  const stop: PumpStop = { roundTrip: undefined, polledAcks: 0, pollMisses: 0, sinceSentMs: 0, ...event.pumpStopped };
  return render(sender, sender.pumpStopped(stop, now), now);
}

interface Case {
  name: string;
  options?: Partial<SenderOptions>;
  steps: Step[];
  /** One line per step. */
  expected: string[];
  /** Counts at the end, those given. */
  counts?: Partial<ReturnType<Sender['counts']>>;
}

function run(cases: Case[]): void {
  for (const { name, options, steps, expected, counts } of cases) {
    test(name, () => {
      const sender = new Sender({ ...defaults, ...options });
      const lines = steps.map((event) => step(sender, event));
      assert.deepEqual(lines, expected);
      if (counts !== undefined) {
        const all = sender.counts();
        const picked = Object.fromEntries(Object.keys(counts).map((key) => [key, all[key as keyof typeof all]]));
        assert.deepEqual(picked, counts);
      }
    });
  }
}

describe('ACKs move the window', () => {
  run([
    {
      name: 'windowsize 1: each ACK of the block in flight sends the next',
      steps: [
        { at: 0, start: true },
        { at: 0, open: tenBlocks },
        { at: 10, ack: 1 },
        { at: 20, ack: 2 },
      ],
      expected: ['open file', 'send 1..1, wait until 1000', 'send 2..2, wait until 1010', 'send 3..3, wait until 1020'],
      counts: { blocks: 2, bytes: 1024, retransmits: 0 },
    },
    {
      name: 'windowsize 4: the ACK of the last block of a window sends the next window, the last one short of the end',
      options: { windowSize: 4 },
      steps: [
        { at: 0, start: true },
        { at: 0, open: tenBlocks },
        { at: 10, ack: 4 },
        { at: 20, ack: 8 },
      ],
      expected: ['open file', 'send 1..4, wait until 1000', 'send 5..8, wait until 1010', 'send 9..10, wait until 1020'],
      counts: { blocks: 8, bytes: 8 * 512 },
    },
    {
      name: 'windowsize 4: an ACK inside the window a round trip late says the rest was lost: the window restarts after it',
      options: { windowSize: 4 },
      steps: [
        { at: 0, start: true },
        { at: 0, open: tenBlocks },
        { at: 10, ack: 4 },
        { at: 40, ack: 6 },
      ],
      expected: ['open file', 'send 1..4, wait until 1000', 'send 5..8, wait until 1010', 'send 7..10, wait until 1040'],
      counts: { blocks: 6, retransmits: 2, earlyAcks: 0 },
    },
    {
      name: "a duplicate ACK is counted and never answered (Sorcerer's Apprentice, RFC 1123 section 4.2.3.1)",
      options: { windowSize: 4 },
      steps: [
        { at: 0, start: true },
        { at: 0, open: tenBlocks },
        { at: 10, ack: 4 },
        { at: 11, ack: 4 },
        { at: 12, ack: 4 },
      ],
      expected: ['open file', 'send 1..4, wait until 1000', 'send 5..8, wait until 1010', 'none', 'none'],
      counts: { blocks: 4, duplicateAcks: 2, retransmits: 0 },
    },
    {
      name: 'an ACK of a block never sent, or of one long acknowledged, changes nothing',
      options: { windowSize: 4 },
      steps: [
        { at: 0, start: true },
        { at: 0, open: tenBlocks },
        { at: 10, ack: 4 },
        { at: 11, ack: 9 },
        { at: 12, ack: 2 },
        { at: 13, ack: 8 },
      ],
      expected: ['open file', 'send 1..4, wait until 1000', 'send 5..8, wait until 1010', 'none', 'none', 'send 9..10, wait until 1013'],
      counts: { blocks: 8, duplicateAcks: 0 },
    },
    {
      name: "the final block's ACK finishes, counting its short length",
      options: { windowSize: 8 },
      steps: [
        { at: 0, start: true },
        { at: 0, open: tenBlocks },
        { at: 10, ack: 8 },
        { at: 20, ack: 10 },
        { at: 21, ack: 10 },
      ],
      expected: ['open file', 'send 1..8, wait until 1000', 'send 9..10, wait until 1010', 'finish complete', 'none'],
      counts: { blocks: 10, bytes: 9 * 512 + 100 },
    },
    {
      name: 'ACKs read across the 65535 to 0 rollover',
      options: { windowSize: 4 },
      steps: [{ at: 0, start: true }, { at: 0, open: { finalIndex: 65540, finalLength: 0, pumpable: false } }, ...ackEvery(4, 65532), { at: 1, ack: 0 }],
      expected: [
        'open file',
        'send 1..4, wait until 1000',
        ...Array.from({ length: 65532 / 4 - 1 }, (_, k) => `send ${4 * k + 5}..${4 * k + 8}, wait until 1001`),
        'send 65533..65536, wait until 1001',
        'send 65537..65540, wait until 1001',
      ],
      counts: { blocks: 65536 },
    },
  ]);
});

/** ACKs of blocks `every`, 2 x `every`, ... up to `through`, at 1 ms. */
function ackEvery(every: number, through: number): Step[] {
  const steps: Step[] = [];
  for (let block = every; block <= through; block += every) steps.push({ at: 1, ack: block % 0x10000 });
  return steps;
}

describe('the option acknowledgement (RFC 2347)', () => {
  run([
    {
      name: 'ACK 0 accepts the OACK: the file is opened and the first window sent',
      options: { optionAck: true, windowSize: 2 },
      steps: [
        { at: 0, start: true },
        { at: 5, ack: 3 },
        { at: 10, ack: 0 },
        { at: 10, open: tenBlocks },
      ],
      expected: ['send OACK, wait until 1000', 'none', 'open file', 'send 1..2, wait until 1010'],
    },
    {
      name: 'an ERROR in reply to an OACK with tsize is a size probe',
      options: { optionAck: true, optionAckHasSize: true },
      steps: [
        { at: 0, start: true },
        { at: 5, error: 'size probe' },
        { at: 6, ack: 0 },
      ],
      expected: ['send OACK, wait until 1000', 'finish probe: client sent error 0: size probe', 'none'],
    },
    {
      name: 'an ERROR in the data phase is the client giving up',
      options: { optionAck: true, optionAckHasSize: true },
      steps: [
        { at: 0, start: true },
        { at: 5, ack: 0 },
        { at: 5, open: tenBlocks },
        { at: 6, error: 'disk full' },
      ],
      expected: ['send OACK, wait until 1000', 'open file', 'send 1..1, wait until 1005', 'finish clientError: client sent error 0: disk full'],
    },
    {
      name: 'an OACK without answer is sent again with backoff',
      options: { optionAck: true, retries: 1 },
      steps: [
        { at: 0, start: true },
        { at: 1000, timer: true },
        { at: 3000, timer: true },
      ],
      expected: ['send OACK, wait until 1000', 'send OACK, wait until 3000', 'finish timeout: no acknowledgement after 1 retransmissions (ERROR "timed out")'],
      counts: { retransmits: 1 },
    },
  ]);
});

describe('timeouts', () => {
  run([
    {
      name: 'no ACK: the window is sent again, the wait doubling each time up to 8 s, then the transfer gives up',
      options: { windowSize: 2, retries: 5 },
      steps: [
        { at: 0, start: true },
        { at: 0, open: tenBlocks },
        { at: 1000, timer: true },
        { at: 3000, timer: true },
        { at: 7000, timer: true },
        { at: 15_000, timer: true },
        { at: 23_000, timer: true },
        { at: 31_000, timer: true },
      ],
      expected: [
        'open file',
        'send 1..2, wait until 1000',
        'send 1..2, wait until 3000',
        'send 1..2, wait until 7000',
        'send 1..2, wait until 15000',
        'send 1..2, wait until 23000',
        'send 1..2, wait until 31000',
        'finish timeout: no acknowledgement after 5 retransmissions (ERROR "timed out")',
      ],
      counts: { retransmits: 10, blocks: 0 },
    },
    {
      name: 'an ACK starts the backoff over',
      steps: [
        { at: 0, start: true },
        { at: 0, open: tenBlocks },
        { at: 1000, timer: true },
        { at: 1500, ack: 1 },
        { at: 2500, timer: true },
      ],
      expected: ['open file', 'send 1..1, wait until 1000', 'send 1..1, wait until 3000', 'send 2..2, wait until 2500', 'send 2..2, wait until 4500'],
      counts: { retransmits: 2 },
    },
    {
      name: 'a timer that fires before the deadline an ACK moved waits on, without a retransmission',
      steps: [
        { at: 0, start: true },
        { at: 0, open: tenBlocks },
        { at: 500, ack: 1 },
        { at: 1000, timer: true },
        { at: 1500, timer: true },
      ],
      expected: ['open file', 'send 1..1, wait until 1000', 'send 2..2, wait until 1500', 'wait until 1500', 'send 2..2, wait until 3500'],
      counts: { retransmits: 1 },
    },
    {
      name: 'a client that never ACKs is given up on after the silent timeout, however many retries are left',
      options: { silentTimeoutMs: 2500, retries: 10 },
      steps: [
        { at: 0, start: true },
        { at: 0, open: tenBlocks },
        { at: 1000, timer: true },
        { at: 2500, timer: true },
      ],
      expected: [
        'open file',
        'send 1..1, wait until 1000',
        'send 1..1, wait until 2500',
        'finish timeout: no acknowledgement at all within 2500 ms (1 retransmissions) (ERROR "timed out")',
      ],
    },
    {
      name: 'with a short measured timeout, the transfer is still as patient as the configured schedule',
      options: { adaptive: true, minTimeoutMs: 10, retries: 1 },
      steps: [
        { at: 0, start: true },
        { at: 0, open: tenBlocks },
        { at: 4, ack: 1 },
        // Measured 4 ms: timeout 4 + 4 x 2 = 12 ms; patience stays 1000 + 2000.
        { at: 16, timer: true },
        { at: 40, timer: true },
        { at: 88, timer: true },
      ],
      expected: [
        'open file',
        'send 1..1, wait until 1000',
        'send 2..2, wait until 16',
        'send 2..2, wait until 40',
        'send 2..2, wait until 88',
        'send 2..2, wait until 184',
      ],
    },
  ]);

  test('an expiry overtaken by an ACK is stale and does nothing', () => {
    const sender = new Sender(defaults);
    assert.equal(sender.start(0).kind, 'openFile');
    assert.equal(step(sender, { at: 0, open: tenBlocks }), 'send 1..1, wait until 1000');
    const fired = sender.timerFired(1000);
    assert.equal(fired.kind, 'expire');
    const generation = fired.kind === 'expire' ? fired.generation : -1;
    // The ACK is handled before the expiry queued behind it.
    assert.equal(step(sender, { at: 1001, ack: 1 }), 'send 2..2, wait until 2001');
    assert.equal(sender.expire(generation, 1001).kind, 'none');
    assert.equal(sender.counts().retransmits, 0);
  });
});

describe('round-trip estimate (RFC 6298) and Karn', () => {
  test('only blocks sent once are measured: the ACK of a resent block leaves the timeout alone', () => {
    const sender = new Sender({ ...defaults, adaptive: true });
    step(sender, { at: 0, start: true });
    assert.equal(step(sender, { at: 0, open: tenBlocks }), 'send 1..1, wait until 1000');
    assert.equal(sender.retransmissionTimeout, 1000, 'the configured timeout until measured');
    // 100 ms: smoothed 100, variation 50, timeout 300.
    assert.equal(step(sender, { at: 100, ack: 1 }), 'send 2..2, wait until 400');
    assert.equal(sender.retransmissionTimeout, 300);
    assert.equal(step(sender, { at: 400, timer: true }), 'send 2..2, wait until 1000');
    // Block 2 went out twice: its ACK is no sample, however long it took.
    assert.equal(step(sender, { at: 1000, ack: 2 }), 'send 3..3, wait until 1300');
    assert.equal(sender.retransmissionTimeout, 300);
    // 50 ms: smoothed 93.75, variation 50, timeout 293.
    assert.equal(step(sender, { at: 1050, ack: 3 }), 'send 4..4, wait until 1343');
    assert.equal(sender.retransmissionTimeout, 293);
  });

  test('a resent OACK is not measured either; a first one is', () => {
    const resent = new Sender({ ...defaults, adaptive: true, optionAck: true });
    step(resent, { at: 0, start: true });
    step(resent, { at: 1000, timer: true });
    step(resent, { at: 1020, ack: 0 });
    assert.equal(resent.retransmissionTimeout, 1000);
    const once = new Sender({ ...defaults, adaptive: true, optionAck: true });
    step(once, { at: 0, start: true });
    step(once, { at: 20, ack: 0 });
    assert.equal(once.retransmissionTimeout, 60);
  });

  test('the timeout a client asked for (RFC 2349) does not adapt', () => {
    const sender = new Sender({ ...defaults, adaptive: false, timeoutMs: 2000 });
    step(sender, { at: 0, start: true });
    step(sender, { at: 0, open: tenBlocks });
    assert.equal(step(sender, { at: 5, ack: 1 }), 'send 2..2, wait until 2005');
    assert.equal(sender.retransmissionTimeout, 2000);
  });
});

describe('early ACKs (windows)', () => {
  /** OACK answered in 10 ms (the shortest round trip so far), then the first window, answered in 10 ms too. */
  const opening: Step[] = [
    { at: 0, start: true },
    { at: 10, ack: 0 },
    { at: 10, open: tenBlocks },
    { at: 20, ack: 4 },
  ];
  const openingLines = ['send OACK, wait until 1000', 'open file', 'send 1..4, wait until 1010', 'send 5..8, wait until 1020'];

  run([
    {
      name: 'an ACK inside the window sooner than a round trip after the next block is progress: only new blocks go out',
      options: { windowSize: 4, optionAck: true },
      steps: [...opening, { at: 21, ack: 6 }, { at: 30, ack: 10 }],
      expected: [...openingLines, 'send 9..10, wait until 1021', 'finish complete'],
      counts: { earlyAcks: 1, retransmits: 0, blocks: 10 },
    },
    {
      name: 'the early ACK repeated does report a loss: the window is resent from there, once',
      options: { windowSize: 4, optionAck: true },
      steps: [...opening, { at: 21, ack: 6 }, { at: 40, ack: 6 }, { at: 41, ack: 6 }],
      expected: [...openingLines, 'send 9..10, wait until 1021', 'send 7..10, wait until 1040', 'none'],
      counts: { earlyAcks: 1, duplicateAcks: 2, retransmits: 4 },
    },
    {
      name: 'an ACK of an old block that opened a resent burst, with the next block in the same burst, is early',
      options: { windowSize: 4, optionAck: true },
      steps: [...opening, { at: 1020, timer: true }, { at: 1100, ack: 5 }],
      expected: [...openingLines, 'send 5..8, wait until 3020', 'send 9..9, wait until 2100'],
      counts: { earlyAcks: 1, retransmits: 4 },
    },
    {
      name: 'at windowsize 1 nothing is early',
      options: { optionAck: true },
      steps: [
        { at: 0, start: true },
        { at: 10, ack: 0 },
        { at: 10, open: tenBlocks },
        { at: 11, ack: 1 },
      ],
      expected: ['send OACK, wait until 1000', 'open file', 'send 1..1, wait until 1010', 'send 2..2, wait until 1011'],
      counts: { earlyAcks: 0 },
    },
  ]);
});

describe('the socket pump (windowsize 1, from a file)', () => {
  const pumpable: OpenedFile = { ...tenBlocks, pumpable: true };
  run([
    {
      name: 'the first block goes to the pump; it finishes the transfer',
      steps: [
        { at: 0, start: true },
        { at: 0, open: pumpable },
        { at: 0, pumpStarted: true },
        { at: 90, pumpStopped: { reason: 'complete', lastAcked: 10, highestSent: 10, polledAcks: 3, pollMisses: 1 } },
      ],
      expected: ['open file', 'pump from 1 to 10, timeout 1000', 'pumping', 'finish complete'],
      counts: { pumpedBlocks: 10, polledAcks: 3, pollMisses: 1, blocks: 10, bytes: 9 * 512 + 100 },
    },
    {
      name: 'a block not in memory is sent the usual way, and the next goes to the pump again',
      steps: [
        { at: 0, start: true },
        { at: 0, open: pumpable },
        { at: 0, pumpWouldBlock: true },
        { at: 10, ack: 1 },
      ],
      expected: ['open file', 'pump from 1 to 10, timeout 1000', 'send 1..1, wait until 1000', 'pump from 2 to 10, timeout 1000'],
    },
    {
      name: "the pump's timeout is the sender's first expiry: the block in flight is resent here, with backoff",
      steps: [
        { at: 0, start: true },
        { at: 0, open: pumpable },
        { at: 0, pumpStarted: true },
        { at: 1500, pumpStopped: { reason: 'timeout', lastAcked: 4, highestSent: 5, sinceSentMs: 1000 } },
        { at: 1700, ack: 5 },
      ],
      expected: [
        'open file',
        'pump from 1 to 10, timeout 1000',
        'pumping',
        'wait until 2500, then send 5..5, wait until 3500',
        'pump from 6 to 10, timeout 1000',
      ],
      counts: { pumpedBlocks: 5, retransmits: 1, blocks: 5 },
    },
    {
      name: 'a stranger packet stops the pump: the block in flight waits for its ACK as any other',
      steps: [
        { at: 0, start: true },
        { at: 0, open: pumpable },
        { at: 0, pumpStarted: true },
        { at: 300, pumpStopped: { reason: 'packet', lastAcked: 2, highestSent: 3, sinceSentMs: 10 } },
        { at: 305, ack: 3 },
      ],
      expected: ['open file', 'pump from 1 to 10, timeout 1000', 'pumping', 'wait until 1300', 'pump from 4 to 10, timeout 1000'],
    },
    {
      name: 'the pump running into a block not in memory: the sender resumes from the block after the last acknowledged',
      steps: [
        { at: 0, start: true },
        { at: 0, open: pumpable },
        { at: 0, pumpStarted: true },
        { at: 300, pumpStopped: { reason: 'wouldBlock', lastAcked: 6, highestSent: 6 } },
      ],
      expected: ['open file', 'pump from 1 to 10, timeout 1000', 'pumping', 'resume: pump from 7 to 10, timeout 1000'],
    },
    {
      name: 'a read error in the pump ends the transfer with an ERROR',
      steps: [
        { at: 0, start: true },
        { at: 0, open: pumpable },
        { at: 0, pumpStarted: true },
        { at: 300, pumpStopped: { reason: 'readError', lastAcked: 2, highestSent: 2, detail: 'EIO' } },
      ],
      expected: ['open file', 'pump from 1 to 10, timeout 1000', 'pumping', 'finish readError: EIO (ERROR "could not read the file")'],
    },
    {
      name: 'windows are never pumped',
      options: { windowSize: 2 },
      steps: [
        { at: 0, start: true },
        { at: 0, open: pumpable },
      ],
      expected: ['open file', 'send 1..2, wait until 1000'],
    },
  ]);

  test('an adaptive pump carries on the estimate, within the floor and the configured timeout', () => {
    const sender = new Sender({ ...defaults, adaptive: true, minTimeoutMs: 50, timeoutMs: 1000 });
    step(sender, { at: 0, start: true });
    const action = sender.fileOpened({ ...tenBlocks, pumpable: true });
    assert.deepEqual(action, {
      kind: 'startPump',
      request: { from: 1, finalIndex: 10, timeoutMs: 1000, adaptive: { estimate: undefined, minMs: 50, maxMs: 1000 } },
    });
    sender.pumpStarted(0);
    const stopped = step(sender, { at: 100, pumpStopped: { reason: 'packet', lastAcked: 3, highestSent: 4, roundTrip: { smoothedMs: 20, variationMs: 5 } } });
    // 20 + 4 x 5 = 40, below the floor of 50.
    assert.equal(stopped, 'wait until 150');
    assert.equal(sender.retransmissionTimeout, 50);
  });
});

describe('ending', () => {
  test('a stream learns its last block when it reads it: the window stops there and the bytes count its length', () => {
    const sender = new Sender({ ...defaults, windowSize: 4 });
    step(sender, { at: 0, start: true });
    const first = sender.fileOpened({ pumpable: false });
    assert.deepEqual({ ...first }, { kind: 'sendBlocks', from: 1, to: 4 });
    sender.blocksSent(1, 2, 0, 0);
    sender.lastBlock(3, 7);
    assert.equal(sender.finalIndex, 3);
    sender.blocksSent(3, 1, 0, 0);
    assert.equal(sender.windowSent(0).until, 1000);
    assert.equal(step(sender, { at: 5, ack: 3 }), 'finish complete');
    assert.deepEqual(sender.counts(), {
      bytes: 2 * 512 + 7,
      blocks: 3,
      retransmits: 0,
      duplicateAcks: 0,
      earlyAcks: 0,
      pumpedBlocks: 0,
      segmentedBlocks: 0,
      polledAcks: 0,
      pollMisses: 0,
    });
  });

  test('ending from outside sends the ERROR given, once; afterwards every event is ignored', () => {
    const sender = new Sender(defaults);
    step(sender, { at: 0, start: true });
    step(sender, { at: 0, open: tenBlocks });
    assert.deepEqual(sender.end('serverClosed', 'server shutting down', 'server shutting down'), {
      kind: 'finish',
      outcome: 'serverClosed',
      detail: 'server shutting down',
      errorMessage: 'server shutting down',
    });
    assert.equal(sender.phase, 'done');
    assert.equal(sender.end('readError', 'late').kind, 'none');
    assert.equal(sender.acknowledge(1, 10).kind, 'none');
    assert.equal(sender.timerFired(1000).kind, 'none');
    assert.equal(sender.clientError(0, 'late').kind, 'none');
    assert.equal(sender.counts().blocks, 0);
  });

  test('segmented sends are counted as the socket reports them', () => {
    const sender = new Sender({ ...defaults, windowSize: 8 });
    step(sender, { at: 0, start: true });
    sender.fileOpened(tenBlocks);
    sender.blocksSent(1, 8, 8, 0);
    assert.equal(sender.counts().segmentedBlocks, 8);
  });
});
