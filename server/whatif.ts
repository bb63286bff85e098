import { AssetStore } from './assets/builds.js';
import { ClientArch, type Platform } from './boot/facts.js';
import { renderHostScript, renderRuntimeEnv, renderXenConfig } from './boot/render.js';
import { chooseBootFile, resolveHostBoot, type ServerEndpoints } from './boot/resolve.js';
import { createLogger } from './log.js';
import { normaliseMac } from './profiles/mac.js';
import { formatProfileError } from './profiles/error.js';
import { ProfileDirectory } from './profiles/store.js';

/**
 * `rackboot whatif MAC`: the same decisions `serve` makes, printed instead
 * of served, so an admin can check a profile before a machine boots.
 */
export async function whatif(options: {
  mac: string;
  platform: Platform;
  profiles: string;
  assets: string;
  endpoints: ServerEndpoints;
}) {
  const mac = normaliseMac(options.mac);
  if (!mac) throw new Error(`"${options.mac}" is not a MAC address (want e.g. 52:54:00:12:34:56)`);
  const log = createLogger({ level: 'silent', pretty: false });
  const profiles = await ProfileDirectory.open(options.profiles, log);
  const build = await new AssetStore(options.assets).current();
  const profile = profiles.lookup(mac);
  const problems = profiles.problemsFor(mac).map(formatProfileError);
  const boot = resolveHostBoot({ mac, platform: options.platform, profile, problems, build, endpoints: options.endpoints });
  const firmwareArch = options.platform === 'bios' ? ClientArch.biosX86 : ClientArch.efiBc;
  const facts = { mac, arch: firmwareArch, platform: options.platform, isPxe: true, isHttpBoot: false, isIpxe: false };
  profiles.close();
  return {
    mac,
    platform: options.platform,
    profile: boot.kind === 'boot' ? boot.plan.profile : (profile ?? null),
    profileErrors: profiles.errors().map(formatProfileError),
    build: build ? build.id : null,
    dhcp: {
      firmware: chooseBootFile(facts, options.endpoints),
      ipxe: chooseBootFile({ ...facts, isPxe: false, isIpxe: true }, options.endpoints),
    },
    result: boot.kind,
    ...(boot.kind === 'boot'
      ? {
          xenCommandLine: boot.plan.xenCommandLine,
          kernelCommandLine: boot.plan.kernelCommandLine,
          files: boot.plan.urls,
          menu: boot.plan.menu.map((item) => item.name),
          defaultEntry: boot.plan.defaultEntry,
          domains: boot.plan.domains.map((domain) => ({ name: domain.name, mac: domain.mac, start: domain.start })),
          notes: boot.plan.notes,
          runtimeEnv: renderRuntimeEnv(boot.plan),
        }
      : {}),
    script: renderHostScript(boot, options.endpoints),
    ...(boot.kind === 'boot' && options.platform === 'efi64' ? { xenCfg: renderXenConfig(boot.plan) } : {}),
  };
}
