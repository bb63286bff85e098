import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { packageRoot } from '../../builder/recipe.js';

/**
 * rackboot.heartbeat=SECONDS in both runtimes' /init: the function that
 * reads it, taken from each script and run by busybox's sh, the shell the
 * runtimes run under. That a heartbeat of 5 s carries a rollout's reboot
 * request is proved by the rollout test (test/e2e/rollout.test.ts, the tiny
 * runtime), and the Debian runtime's console line by the hostile neighbour
 * test (test/e2e/hostile.test.ts).
 */

const scripts = ['init', 'init-debian'];

/** The shell function heartbeat_seconds, as the script defines it. */
function heartbeatFunction(script: string): string {
  const text = readFileSync(join(packageRoot(), 'builder', 'runtime', script), 'utf8');
  const match = /^heartbeat_seconds\(\) \{\n[\s\S]*?\n\}\n/m.exec(text);
  assert.ok(match, `builder/runtime/${script} defines heartbeat_seconds`);
  return match[0];
}

/** The heartbeat the function settles on for `given`, and what it says on the console. */
function settle(script: string, given: string): { seconds: string; said: string } {
  const program = `say() { echo "rackboot-runtime: $*"; }\n${heartbeatFunction(script)}heartbeat="$1"\nheartbeat_seconds\necho "heartbeat=$heartbeat"\n`;
  const result = spawnSync('busybox', ['sh', '-c', program, 'sh', given], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  const lines = result.stdout.trim().split('\n');
  const seconds = /^heartbeat=(.*)$/.exec(lines.pop() ?? '')?.[1];
  assert.ok(seconds !== undefined, result.stdout);
  return { seconds, said: lines.join('\n') };
}

for (const script of scripts) {
  test(`${script}: rackboot.heartbeat takes whole seconds from 5 to 3600, and says so when not the default`, () => {
    assert.deepEqual(settle(script, '30'), { seconds: '30', said: '' });
    assert.deepEqual(settle(script, '5'), { seconds: '5', said: 'rackboot-runtime: heartbeat every 5 s' });
    assert.deepEqual(settle(script, '3600'), { seconds: '3600', said: 'rackboot-runtime: heartbeat every 3600 s' });
    // Leading zeros are decimal, not octal ($((60 / heartbeat)) in the Debian runtime would read 010 as 8).
    assert.deepEqual(settle(script, '010'), { seconds: '10', said: 'rackboot-runtime: heartbeat every 10 s' });
  });

  test(`${script}: a rackboot.heartbeat out of range or not a number is named on the console, and the heartbeat stays at 30 s`, () => {
    for (const given of ['4', '0', '000', '3601', '99999999', '', 'abc', '10s', '-5', '1e3', '5 ']) {
      assert.deepEqual(
        settle(script, given),
        { seconds: '30', said: `rackboot-runtime: heartbeat: rackboot.heartbeat=${given} is not a whole number of seconds from 5 to 3600; every 30 s` },
        JSON.stringify(given),
      );
    }
  });
}
