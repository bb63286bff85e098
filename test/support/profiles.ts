import assert from 'node:assert/strict';
import { formatProfileError } from '../../server/profiles/error.js';
import { parseProfile, parseProfileFile } from '../../server/profiles/parse.js';
import type { Profile } from '../../server/profiles/profile.js';

/** A fully spelled-out profile for tests of code downstream of the parser. */
export function makeProfile(overrides: Partial<Profile> = {}): Profile {
  return {
    source: 'profiles/node01.yaml',
    mac: '52:54:00:12:34:56',
    hostname: 'node01',
    network: { mode: 'static', address: '198.18.0.50', prefixLength: 24, gateway: '198.18.0.1', dns: ['198.18.0.1'] },
    rootPasswordHash: "$6$salt$abc'def",
    ssh: true,
    timezone: 'Etc/UTC',
    boot: { entry: 'standard', xenArgs: 'dom0_mem=512M', kernelArgs: '', menuTimeout: 5 },
    sshAuthorizedKeys: [],
    aptUpdate: false,
    domains: [],
    ...overrides,
  };
}

/** The first lines of the host file the line-based profile tests write: its MAC and hostname. */
export const hostHead = ['mac: 52:54:00:12:34:56', 'hostname: xen01'];

/** profiles/xen01.yaml made of hostHead and `lines`, parsed; fails the test with every error when it does not parse. */
export function parsedHost(lines: string[]): Profile {
  const result = parseProfile([...hostHead, ...lines, ''].join('\n'), 'profiles/xen01.yaml');
  assert.ok(result.ok, result.ok ? '' : result.errors.map(formatProfileError).join('\n'));
  return result.profile;
}

/** The errors of a file made of `lines` (after hostHead unless withHead is false), as the user sees them; fails the test when it parses. */
export function hostErrors(lines: string[], source = 'profiles/xen01.yaml', withHead = true): string[] {
  const result = parseProfileFile([...(withHead ? hostHead : []), ...lines, ''].join('\n'), source);
  assert.equal(result.ok, false, 'expected errors');
  return result.ok ? [] : result.errors.map(formatProfileError);
}
