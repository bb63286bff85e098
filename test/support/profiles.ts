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
