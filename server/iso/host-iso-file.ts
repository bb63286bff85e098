import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadOrCreateSecret } from '../admin/token.js';
import { AssetStore } from '../assets/builds.js';
import { HostTokens } from '../tokens/host-token.js';
import type { ServerEndpoints } from '../core/resolve.js';
import { createLogger } from '../log.js';
import { formatProfileError } from '../profiles/error.js';
import { ProfileDirectory } from '../profiles/store.js';
import { planHostIso, writeHostIso } from './host-iso.js';

/**
 * `rackboot build --host MAC`: one host's CD/USB image from the current
 * build, written to a file; the same image GET /hosts/<mac>/rackboot.iso
 * serves. Its boot line carries a host token signed with the key in
 * `state` (host-token.key, which must be there: made by the server), the
 * key `rackboot serve --state` with the same folder signs and checks with: the image's runtime
 * then fetches the host's secrets (root hash, SSH keys, domain configs)
 * from that server, as a network boot does.
 */
export async function buildHostIsoFile(options: {
  mac: string;
  profiles: string;
  assets: string;
  state: string;
  endpoints: ServerEndpoints;
  output?: string;
}): Promise<{ path: string; size: number; sha256: string; build: string; hostname: string; tokenKey: string }> {
  // The token must be one a server can check: signed with the key of the
  // server's own state folder, never with one made up here.
  const keyFile = join(options.state, 'host-token.key');
  if (!existsSync(keyFile)) {
    throw new Error(
      `--state ${options.state} has no host-token.key: name the state folder of the rackboot serve that will hand this host its secrets (serve makes the key when it first starts)`,
    );
  }
  const profiles = await ProfileDirectory.open(options.profiles, createLogger({ level: 'silent', pretty: false }));
  try {
    const key = await loadOrCreateSecret(options.state, 'host-token.key');
    const tokens = new HostTokens(Buffer.from(key.value));
    const planned = await planHostIso(
      {
        secrets: { tokens },
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
    return { path: made.path, size: made.size, sha256: made.sha256, build: planned.plan.build.id, hostname: planned.plan.profile.hostname, tokenKey: key.file };
  } finally {
    profiles.close();
  }
}
