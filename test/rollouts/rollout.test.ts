import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  advance,
  command,
  isActive,
  newlySilent,
  observe,
  parseFirstWave,
  rebootWanted,
  rolloutBuildFor,
  startRollout,
  type Rollout,
} from '../../server/rollouts/rollout.js';

const hosts = ['52:54:00:00:00:05', '52:54:00:00:00:01', '52:54:00:00:00:03', '52:54:00:00:00:02', '52:54:00:00:00:04'];
const [h1, h2, h3, h4, h5] = [...hosts].sort() as [string, string, string, string, string];
const minute = 60_000;

function started(first = { count: 1 } as { count: number } | { percent: number }, reboot = false): Rollout {
  const result = startRollout({ channel: 'stable', build: 'new', previous: 'old', members: hosts, first, deadlineMs: 20 * minute, reboot, now: 0 });
  assert.ok(result.ok, result.ok ? '' : result.problem);
  return result.rollout;
}

/** A moved host boots the new build and reports ready with all its domains. */
function healthy(rollout: Rollout, mac: string, now: number): Rollout {
  const booted = observe(rollout, { kind: 'boot-script', mac, build: 'new' }, now);
  return observe(booted, { kind: 'ready', mac, build: 'new', domains: 2, wantDomains: 2 }, now + minute);
}

test('--first: a number of hosts or a share of them', () => {
  assert.deepEqual(parseFirstWave('2'), { count: 2 });
  assert.deepEqual(parseFirstWave('25%'), { percent: 25 });
  assert.deepEqual(parseFirstWave('0'), { problem: '--first 0: want a number of hosts (such as 1) or a share of them (such as 25%)' });
  assert.deepEqual(parseFirstWave('150%'), { problem: '--first 150%: a share of the hosts is 1% to 100%' });
  assert.ok('problem' in parseFirstWave('two'));
  // A share is rounded up, so 25% of 5 hosts is 2, and 1% still moves one.
  assert.deepEqual(
    started({ percent: 25 }).moved.map((host) => host.mac),
    [h1, h2],
  );
  assert.equal(started({ percent: 1 }).moved.length, 1);
  assert.equal(started({ count: 99 }).moved.length, 5);
});

test('a rollout cannot start without a previous build, with the same build, or without hosts on the channel', () => {
  const base = { channel: 'stable', build: 'new', members: hosts, first: { count: 1 }, deadlineMs: minute, now: 0 };
  assert.deepEqual(startRollout({ ...base, previous: undefined }), {
    ok: false,
    problem: 'channel stable has no current build to roll out from; make new its current build instead (rackboot builds switch)',
  });
  assert.deepEqual(startRollout({ ...base, previous: 'new' }), { ok: false, problem: "new is already channel stable's current build" });
  assert.deepEqual(startRollout({ ...base, previous: 'old', members: [] }), {
    ok: false,
    problem: "no host's profile is on channel stable (boot.channel), so there is no one to roll out to",
  });
});

test('waves widen only when every moved host is healthy: 1, 1, 2, then the last, then done', () => {
  let rollout = started();
  assert.deepEqual(rollout.order, [h1, h2, h3, h4, h5], 'hosts move in the order of their MACs');
  assert.deepEqual(rolloutBuildFor(rollout, h1)?.build, 'new');
  assert.deepEqual(rolloutBuildFor(rollout, h2)?.build, 'old');
  // Booted but not yet ready: no widening.
  rollout = observe(rollout, { kind: 'boot-script', mac: h1, build: 'new' }, minute);
  assert.equal(advance(rollout, 2 * minute), rollout, 'nothing changes');
  rollout = advance(healthy(rollout, h1, minute), 3 * minute);
  assert.deepEqual(
    rollout.moved.map((host) => host.mac),
    [h1, h2],
  );
  rollout = advance(healthy(rollout, h2, 4 * minute), 6 * minute);
  assert.deepEqual(
    rollout.moved.map((host) => host.mac),
    [h1, h2, h3, h4],
  );
  rollout = healthy(rollout, h3, 7 * minute);
  assert.equal(advance(rollout, 9 * minute).moved.length, 4, 'h4 is not healthy yet');
  rollout = advance(healthy(rollout, h4, 8 * minute), 10 * minute);
  assert.equal(rollout.moved.length, 5);
  rollout = advance(healthy(rollout, h5, 11 * minute), 13 * minute);
  assert.equal(rollout.state, 'done');
  assert.equal(rollout.reason, 'every host (5) healthy on new');
  assert.equal(isActive(rollout), false);
  assert.equal(rolloutBuildFor(rollout, h1), undefined, "done: the channel's current build decides");
});

test('a ready report short of domains stops it: the failed host and the hosts not moved boot the previous build, healthy ones keep the new one', () => {
  let rollout = advance(healthy(started(), h1, 0), 2 * minute);
  rollout = observe(rollout, { kind: 'boot-script', mac: h2, build: 'new' }, 3 * minute);
  rollout = observe(rollout, { kind: 'ready', mac: h2, build: 'new', domains: 1, wantDomains: 2 }, 4 * minute);
  assert.equal(rollout.state, 'failed');
  assert.equal(rollout.reason, `${h2}: reported ready with 1 of the 2 domains its profile starts`);
  assert.equal(rolloutBuildFor(rollout, h1)?.build, 'new');
  assert.equal(rolloutBuildFor(rollout, h2)?.build, 'old');
  assert.match(rolloutBuildFor(rollout, h2)!.reason, /failed on it \(reported ready with 1 of the 2 domains/);
  assert.equal(rolloutBuildFor(rollout, h3)?.build, 'old');
  assert.equal(advance(rollout, 60 * minute), rollout, 'a stopped rollout does not widen');
  assert.equal(isActive(rollout), true, 'it still decides its hosts until aborted');
  const aborted = command(rollout, 'abort', 61 * minute);
  assert.ok(aborted.ok);
  assert.equal(rolloutBuildFor(aborted.rollout, h1)?.build, 'old', 'aborted: everyone back on the previous build');
  assert.deepEqual(command(aborted.rollout, 'abort', 62 * minute), { ok: false, problem: 'the rollout is aborted; there is nothing to abort' });
});

test('the deadline counts from the boot script: a host that never boots waits, one that boots and goes quiet fails', () => {
  let rollout = started({ count: 2 });
  assert.equal(advance(rollout, 600 * minute), rollout, 'moved but not booted: waiting for a reboot, not failed');
  rollout = observe(rollout, { kind: 'boot-script', mac: h1, build: 'new' }, 600 * minute);
  assert.equal(advance(rollout, 620 * minute).state, 'running', 'at the deadline, not past it');
  rollout = advance(rollout, 620 * minute + 1);
  assert.equal(rollout.state, 'failed');
  assert.equal(rollout.reason, `${h1}: no ready report with new within 20 min of its boot script`);
});

test('a failure report fails the host; reports of other builds, other hosts and earlier boots are not counted', () => {
  let rollout = started();
  assert.equal(observe(rollout, { kind: 'ready', mac: h1, build: 'new', domains: 2, wantDomains: 2 }, 1), rollout, 'no boot script of the new build yet');
  rollout = observe(rollout, { kind: 'boot-script', mac: h1, build: 'new' }, 2);
  assert.equal(observe(rollout, { kind: 'ready', mac: h1, build: 'old', domains: 2, wantDomains: 2 }, 3), rollout, 'ready with another build');
  assert.equal(observe(rollout, { kind: 'ready', mac: h2, build: 'new', domains: 2, wantDomains: 2 }, 3), rollout, 'not moved');
  assert.equal(observe(rollout, { kind: 'boot-script', mac: h1, build: 'old' }, 3), rollout, 'a script of another build');
  const failed = observe(rollout, { kind: 'failed', mac: h1, detail: 'timezone: Mars/Olympus is not a zone' }, 4);
  assert.equal(failed.state, 'failed');
  assert.equal(failed.reason, `${h1}: reported a failure: timezone: Mars/Olympus is not a zone`);
});

test('pause holds the waves (deadlines still count), resume goes on; commands out of turn are refused', () => {
  let rollout = healthy(started(), h1, 0);
  const paused = command(rollout, 'pause', minute);
  assert.ok(paused.ok);
  rollout = advance(paused.rollout, 2 * minute);
  assert.equal(rollout.moved.length, 1, 'no new wave while paused');
  assert.deepEqual(command(rollout, 'pause', 3 * minute), { ok: false, problem: 'the rollout is paused, not running' });
  const resumed = command(rollout, 'resume', 3 * minute);
  assert.ok(resumed.ok);
  assert.equal(advance(resumed.rollout, 4 * minute).moved.length, 2);
  assert.deepEqual(command(resumed.rollout, 'resume', 5 * minute), { ok: false, problem: 'the rollout is running, not paused' });
});

test('--reboot: moved hosts on another build are asked one at a time; failed ones on the new build are asked back; without --reboot none', () => {
  let rollout = started({ count: 2 }, true);
  assert.equal(rebootWanted(rollout, h1, 'old'), true);
  assert.equal(rebootWanted(rollout, h1, undefined), false, 'what it runs is unknown (a server restart): not asked');
  assert.equal(rebootWanted(rollout, h3, 'old'), false, 'not moved');
  rollout = observe(rollout, { kind: 'reboot-asked', mac: h1 }, minute);
  assert.equal(rollout.moved[0]!.rebootAskedAt, minute);
  assert.equal(rebootWanted(rollout, h2, 'old'), false, 'h1 is between its reboot and its health');
  assert.equal(rebootWanted(rollout, h1, 'old'), true, 'asked again until it goes');
  rollout = healthy(rollout, h1, 2 * minute);
  assert.equal(rebootWanted(rollout, h1, 'new'), false);
  assert.equal(rebootWanted(rollout, h2, 'old'), true, 'h1 healthy: h2 goes next');
  rollout = observe(rollout, { kind: 'reboot-asked', mac: h2 }, 4 * minute);
  // Asked, and no boot script within the deadline: it fails, and once failed a host on the old build is not asked again.
  rollout = advance(rollout, 25 * minute);
  assert.equal(rollout.reason, `${h2}: asked to reboot, and no boot script of new within 20 min`);
  assert.equal(rebootWanted(rollout, h2, 'old'), false);
  assert.equal(rebootWanted(rollout, h1, 'new'), false, 'a healthy host keeps the new build');

  // A failed host still on the new build goes back.
  const booted = observe(started({ count: 1 }, true), { kind: 'boot-script', mac: h1, build: 'new' }, minute);
  const failed = observe(booted, { kind: 'ready', mac: h1, build: 'new', domains: 0, wantDomains: 1 }, 2 * minute);
  assert.equal(rebootWanted(failed, h1, 'new'), true);
  assert.equal(rebootWanted(failed, h1, 'old'), false);
  assert.equal(rebootWanted(started(), h1, 'old'), false, 'without --reboot no host is asked');
});

test('the deadline counts from the first boot of the new build: a host reset by its watchdog again and again still fails in time', () => {
  let rollout = observe(started(), { kind: 'boot-script', mac: h1, build: 'new' }, 0);
  rollout = observe(rollout, { kind: 'boot-script', mac: h1, build: 'new' }, 15 * minute);
  assert.equal(rollout.moved[0]!.bootedAt, 0);
  assert.equal(advance(rollout, 20 * minute + 1).state, 'failed');
});

test('a host that fails by silence is marked so (its BMC may reset it), once; a host that reported its failure is not', () => {
  let rollout = observe(started({ count: 2 }, true), { kind: 'boot-script', mac: h1, build: 'new' }, 0);
  rollout = observe(rollout, { kind: 'reboot-asked', mac: h2 }, 0);
  const silent = advance(rollout, 20 * minute + 1);
  assert.deepEqual(
    silent.moved.map((host) => [host.mac, host.silent]),
    [
      [h1, true],
      [h2, true],
    ],
  );
  assert.equal(silent.moved[1]!.reason, 'asked to reboot, and no boot script of new within 20 min');
  assert.deepEqual(newlySilent(rollout, silent), [h1, h2]);
  assert.deepEqual(newlySilent(silent, advance(silent, 40 * minute)), [], 'only when it goes silent, not at every later tick');
  const reported = observe(rollout, { kind: 'failed', mac: h1, detail: 'domain web did not start' }, minute);
  assert.equal(reported.moved[0]!.silent, undefined);
  assert.deepEqual(newlySilent(rollout, reported), []);
});
