import { AssetStore } from '../assets/builds.js';
import type { ServerEndpoints } from '../boot/resolve.js';
import { createLogger } from '../log.js';
import { formatProfileError } from '../profiles/error.js';
import { ProfileDirectory } from '../profiles/store.js';
import { planHostIso, writeHostIso } from './host-iso.js';

/**
 * `rackboot build --host MAC`: one host's CD/USB image from the current
 * build, written to a file; the same image GET /hosts/<mac>/rackboot.iso
 * serves.
 */
export async function buildHostIsoFile(options: {
  mac: string;
  profiles: string;
  assets: string;
  endpoints: ServerEndpoints;
  output?: string;
}): Promise<{ path: string; size: number; sha256: string; build: string; hostname: string }> {
  const profiles = await ProfileDirectory.open(options.profiles, createLogger({ level: 'silent', pretty: false }));
  try {
    const planned = await planHostIso(
      {
        assets: new AssetStore(options.assets),
        lookupProfile: (mac) => profiles.lookup(mac),
        profileProblems: (mac) => profiles.problemsFor(mac).map(formatProfileError),
        endpoints: options.endpoints,
      },
      options.mac,
    );
    if (planned.kind !== 'plan') {
      const problems = profiles.problemsFor(options.mac).map(formatProfileError);
      throw new Error([`no image for ${options.mac}: ${planned.message}`, ...problems].join('\n'));
    }
    const output = options.output ?? `rackboot-${planned.mac.replaceAll(':', '')}.iso`;
    const made = await writeHostIso(planned, output);
    return { path: made.path, size: made.size, sha256: made.sha256, build: planned.plan.build.id, hostname: planned.plan.profile.hostname };
  } finally {
    profiles.close();
  }
}
