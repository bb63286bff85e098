import { isMap, isScalar, isSeq, LineCounter, parseDocument, visit, type Node, type Pair, type YAMLMap, type YAMLSeq } from 'yaml';
import { compareProfileErrors, formatProfileError, type ProfileError } from '../server/profiles/error.js';
import { CHANNEL_NAME, DEFAULT_CHANNEL, RELEASE, RUNTIME_VARIANTS, type RuntimeVariant } from '../server/assets/manifest.js';

export { DEFAULT_CHANNEL };

/**
 * The settings of `rackboot build`: builder/build.yaml documents the
 * defaults, `--config FILE` replaces that file, and each setting has a
 * command-line switch that wins over the file (switch > file > default).
 * Parsing is pure and reports every problem with its file, line, column and
 * field, the way profiles are checked; unknown fields are refused.
 */

/** The parts whose Debian package version can be pinned, and the package each one names. */
export const PINNED_PACKAGES = {
  xen: 'xen-hypervisor-4.17-amd64',
  /** The meta package; the kernel package it depends on, at the version it names, gives vmlinuz and the modules. */
  kernel: 'linux-image-amd64',
  ipxe: 'ipxe',
  memtest: 'memtest86+',
  busybox: 'busybox-static',
} as const;
export type PinnedPart = keyof typeof PINNED_PACKAGES;
export const PINNED_PARTS = Object.keys(PINNED_PACKAGES) as PinnedPart[];

/**
 * Releases the build knows: the package names above (Xen 4.17, the 6.1
 * kernel's ABI names) and the manifest are bookworm's, so another release
 * needs more than a different word in a file.
 */
export const SUPPORTED_RELEASES = [RELEASE] as const;

/** Parts that can be left out of a build; the required ones (xen, vmlinuz, initrd, iPXE) cannot. */
export const OPTIONAL_PARTS = ['memtest', 'guest', 'debianGuest', 'iso'] as const;
export type OptionalPart = (typeof OPTIONAL_PARTS)[number];

/**
 * A channel: a name for a line of builds with settings of its own, laid
 * over the file's top-level ones by `rackboot build --channel NAME` (a
 * `testing` that pins a newer Xen, say). Each channel has its own current
 * build (server/assets/builds.ts); builds made without --channel are the
 * default channel's, with the top-level settings as they are.
 */
export interface ChannelSettings {
  versions?: Partial<Record<PinnedPart, string>>;
  variant?: RuntimeVariant;
  parts?: Partial<Record<OptionalPart, boolean>>;
  /** Replaces the top level's list (a channel lists every extra package it wants). */
  packages?: string[];
}

/** A channel's name: a lower-case word (it names a link in the assets folder and appears in URLs). */
export function channelNameProblem(name: string): string | undefined {
  if (name === DEFAULT_CHANNEL) return `"${DEFAULT_CHANNEL}" is the channel of builds made without --channel; its settings are the top-level ones`;
  if (CHANNEL_NAME.test(name)) return undefined;
  return `${JSON.stringify(name)} is not a channel name (want a lower-case letter, then up to 31 of a-z, 0-9 and -)`;
}

export interface BuildSettings {
  release: (typeof SUPPORTED_RELEASES)[number];
  /** Debian version per pinned part; '' takes the newest the machine's apt sources offer. */
  versions: Record<PinnedPart, string>;
  variant: RuntimeVariant;
  parts: Record<OptionalPart, boolean>;
  /**
   * Debian packages the Debian runtime carries beyond its own (XenCD's "fat"
   * build: more tools for the admin), with what they depend on.
   */
  packages: string[];
  iso: {
    /** Every date in the image; undefined: SOURCE_DATE_EPOCH from the environment, else bookworm's release day. */
    sourceDateEpoch: number | undefined;
    /** ISO 9660 volume identifier. */
    volumeLabel: string;
  };
  /** Channels by name; empty unless the file names some. */
  channels: Record<string, ChannelSettings>;
}

export const DEFAULT_BUILD_SETTINGS: BuildSettings = {
  release: RELEASE,
  versions: { xen: '', kernel: '', ipxe: '', memtest: '', busybox: '' },
  variant: 'debian',
  parts: { memtest: true, guest: true, debianGuest: false, iso: true },
  packages: [],
  iso: { sourceDateEpoch: undefined, volumeLabel: 'RACKBOOT' },
  channels: {},
};

/** What the command line sets; anything left out comes from the file. */
export interface BuildSwitches {
  release?: string;
  versions?: Partial<Record<PinnedPart, string>>;
  variant?: string;
  parts?: Partial<Record<OptionalPart, boolean>>;
  iso?: { sourceDateEpoch?: number | string; volumeLabel?: string };
}

export type BuildConfigResult = { ok: true; settings: BuildSettings } | { ok: false; errors: ProfileError[] };

/** Thrown by loadBuildConfig and applySwitches: one compiler-style line per problem. */
export class BuildConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join('\n'));
    this.name = 'BuildConfigError';
    this.problems = problems;
  }
}

// Each check returns undefined when the value is good, else what is wrong with it.

/** Debian policy 5.6.12: [epoch:]upstream[-revision], upstream starting with a digit. */
export function debianVersionProblem(value: string): string | undefined {
  if (value === '') return undefined;
  if (/^(\d+:)?\d[A-Za-z0-9.+~:-]*$/.test(value) && !/-$/.test(value)) return undefined;
  return `${JSON.stringify(value)} is not a Debian version (want e.g. 4.17.5+72-g01140da4e8-1 or 1:1.35.0-4, or "" for the newest)`;
}

function releaseProblem(value: string): string | undefined {
  return (SUPPORTED_RELEASES as readonly string[]).includes(value)
    ? undefined
    : `${JSON.stringify(value)} is not a release this build knows (want ${SUPPORTED_RELEASES.join(' or ')}: the package names are bookworm's)`;
}

function variantProblem(value: string): string | undefined {
  return (RUNTIME_VARIANTS as readonly string[]).includes(value)
    ? undefined
    : `${JSON.stringify(value)} is not a variant (want ${RUNTIME_VARIANTS.join(' or ')})`;
}

/** ECMA-119 7.5.1: a volume identifier is up to 32 d-characters (A-Z, 0-9, _). */
export function volumeLabelProblem(value: string): string | undefined {
  if (/^[A-Z0-9_]{1,32}$/.test(value)) return undefined;
  return `${JSON.stringify(value)} is not an ISO 9660 volume label (want 1 to 32 of A-Z, 0-9 and _)`;
}

/** Seconds since 1970 up to the end of 9999, where the ISO 9660 date fields end. */
export function epochProblem(value: number | string): string | undefined {
  const text = String(value);
  if (/^\d+$/.test(text) && Number(text) <= 253_402_300_799) return undefined;
  return `${JSON.stringify(value)} is not a whole number of seconds since 1970 (want e.g. 1686355200)`;
}

const topLevelFields = ['release', 'versions', 'variant', 'parts', 'packages', 'iso', 'channels'] as const;
const channelFields = ['versions', 'variant', 'parts', 'packages'] as const;

/** Debian policy 5.6.1: lower-case letters, digits, + - and ., at least two, starting with a letter or digit. */
export function packageNameProblem(value: string): string | undefined {
  if (/^[a-z0-9][a-z0-9+.-]+$/.test(value)) return undefined;
  return `${JSON.stringify(value)} is not a Debian package name (want lower-case letters, digits, +, - and ., such as htop or tcpdump; no version)`;
}

/** Extra packages go into the Debian runtime's tree: the tiny runtime has no package manager to install them with. */
export function packagesVariantProblem(settings: Pick<BuildSettings, 'variant' | 'packages'>): string | undefined {
  if (settings.packages.length === 0 || settings.variant === 'debian') return undefined;
  return `extra packages (${settings.packages.join(', ')}) go into the Debian runtime; variant ${settings.variant} has no package manager (use variant debian)`;
}
const isoFields = ['sourceDateEpoch', 'volumeLabel'] as const;

interface Entry {
  path: string;
  key: Node | null;
  value: Node | null;
}

/** Read a build configuration file's text. Never throws; `source` is only used in messages. */
export function parseBuildConfig(text: string, source: string): BuildConfigResult {
  const lines = new LineCounter();
  lines.addNewLine(0);
  for (let offset = text.indexOf('\n'); offset >= 0; offset = text.indexOf('\n', offset + 1)) lines.addNewLine(offset + 1);
  const errors: ProfileError[] = [];
  const at = (node: Node | null | undefined, field: string, message: string, fallback = 0): void => {
    const offset = Math.min(Math.max(0, node?.range?.[0] ?? fallback), text.length);
    const { line, col } = lines.linePos(offset);
    errors.push({ file: source, line, column: col, field, message });
  };
  const failure = (): BuildConfigResult => ({ ok: false, errors: errors.sort(compareProfileErrors) });

  const document = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  for (const problem of [...document.errors, ...document.warnings]) {
    const { line, col } = lines.linePos(Math.min(problem.pos[0], text.length));
    errors.push({ file: source, line, column: col, field: '', message: problem.message });
  }
  if (errors.length > 0) return failure();
  visit(document, {
    Alias(_key, alias) {
      at(alias, '', `aliases (*${alias.source}) are not supported here; write the value out`);
    },
  });
  if (errors.length > 0) return failure();

  const settings: BuildSettings = structuredClone(DEFAULT_BUILD_SETTINGS);
  const root = document.contents;
  // An empty file (or one of comments only) keeps every default.
  if (root === null || (isScalar(root) && root.value === null)) return { ok: true, settings };

  const mapping = (entry: Entry, known: readonly string[]): Map<string, Entry> | undefined => {
    // A section whose settings are all commented out is empty, not wrong.
    if (entry.value === null || (isScalar(entry.value) && entry.value.value === null)) return new Map();
    if (!isMap(entry.value)) {
      at(entry.value ?? entry.key, entry.path, `want a mapping of ${known.join(', ')}`);
      return undefined;
    }
    const fields = new Map<string, Entry>();
    for (const pair of (entry.value as YAMLMap<unknown, unknown>).items as Array<Pair<Node | null, Node | null>>) {
      const name = isScalar(pair.key) && typeof pair.key.value === 'string' ? pair.key.value : undefined;
      if (name === undefined) {
        at(pair.key, entry.path, `field names are plain words; known fields here: ${known.join(', ')}`);
        continue;
      }
      const path = entry.path === '' ? name : `${entry.path}.${name}`;
      if (!known.includes(name)) {
        at(pair.key, path, `unknown field; known fields here: ${known.join(', ')}`);
        continue;
      }
      fields.set(name, { path, key: pair.key, value: pair.value });
    }
    return fields;
  };
  /** Scalars as text: a version such as 6.10 or a number of seconds reads as a YAML number; empty (or null) is "". */
  const scalarText = (entry: Entry): string | undefined => {
    if (entry.value === null || (isScalar(entry.value) && entry.value.value === null)) return '';
    if (isScalar(entry.value) && (typeof entry.value.value === 'string' || typeof entry.value.value === 'number')) {
      return typeof entry.value.value === 'number' ? (entry.value.source ?? String(entry.value.value)) : entry.value.value;
    }
    at(entry.value, entry.path, 'want a single value');
    return undefined;
  };
  const checked = (entry: Entry, problem: (value: string) => string | undefined): string | undefined => {
    const value = scalarText(entry);
    if (value === undefined) return undefined;
    const why = problem(value);
    if (why === undefined) return value;
    at(entry.value ?? entry.key, entry.path, why);
    return undefined;
  };

  const top = mapping({ path: '', key: null, value: root }, topLevelFields);
  if (top === undefined) return failure();
  const release = top.get('release');
  if (release !== undefined) {
    const value = checked(release, (v) => (v === '' ? 'empty; want bookworm' : releaseProblem(v)));
    if (value !== undefined) settings.release = value as BuildSettings['release'];
  }
  // variant, versions and parts: at the top level and in each channel alike.
  const readOverrides = (fields: Map<string, Entry>, into: ChannelSettings): void => {
    const variant = fields.get('variant');
    if (variant !== undefined) {
      const value = checked(variant, (v) => (v === '' ? `empty; want ${RUNTIME_VARIANTS.join(' or ')}` : variantProblem(v)));
      if (value !== undefined) into.variant = value as RuntimeVariant;
    }
    const versions = fields.get('versions');
    if (versions !== undefined) {
      into.versions ??= {};
      for (const [name, entry] of mapping(versions, PINNED_PARTS) ?? []) {
        const value = checked(entry, debianVersionProblem);
        if (value !== undefined) into.versions[name as PinnedPart] = value;
      }
    }
    const packages = fields.get('packages');
    if (packages !== undefined) {
      if (packages.value === null || (isScalar(packages.value) && packages.value.value === null)) into.packages = [];
      else if (!isSeq(packages.value)) at(packages.value, packages.path, 'want a list of Debian package names, such as [htop, tcpdump]');
      else {
        into.packages = [];
        (packages.value as YAMLSeq<Node | null>).items.forEach((item, index) => {
          const name = checked({ path: `${packages.path}[${index}]`, key: null, value: item }, (v) =>
            v === '' ? 'empty; want a Debian package name' : into.packages!.includes(v) ? `${JSON.stringify(v)} is listed twice` : packageNameProblem(v),
          );
          if (name !== undefined) into.packages!.push(name);
        });
      }
    }
    const parts = fields.get('parts');
    if (parts !== undefined) {
      into.parts ??= {};
      for (const [name, entry] of mapping(parts, OPTIONAL_PARTS) ?? []) {
        if (isScalar(entry.value) && typeof entry.value.value === 'boolean') into.parts[name as OptionalPart] = entry.value.value;
        else at(entry.value ?? entry.key, entry.path, 'want true or false');
      }
    }
  };
  const topLevel: ChannelSettings = {};
  readOverrides(top, topLevel);
  Object.assign(settings, overlay(settings, topLevel));
  const channels = top.get('channels');
  if (channels !== undefined) {
    if (channels.value !== null && !(isScalar(channels.value) && channels.value.value === null) && !isMap(channels.value)) {
      at(channels.value, 'channels', 'want a mapping of channel names to their settings (versions, variant, parts, packages)');
    } else if (isMap(channels.value)) {
      for (const pair of (channels.value as YAMLMap<unknown, unknown>).items as Array<Pair<Node | null, Node | null>>) {
        const name = isScalar(pair.key) && typeof pair.key.value === 'string' ? pair.key.value : undefined;
        const why = name === undefined ? 'a channel name is a plain word' : channelNameProblem(name);
        if (why !== undefined) {
          at(pair.key, name === undefined ? 'channels' : `channels.${name}`, why);
          continue;
        }
        const fields = mapping({ path: `channels.${name}`, key: pair.key, value: pair.value }, channelFields);
        const channel: ChannelSettings = {};
        if (fields !== undefined) readOverrides(fields, channel);
        settings.channels[name!] = channel;
      }
    }
  }
  const iso = top.get('iso');
  if (iso !== undefined) {
    const fields = mapping(iso, isoFields);
    const epoch = fields?.get('sourceDateEpoch');
    if (epoch !== undefined) {
      const value = checked(epoch, (v) => (v === '' ? undefined : epochProblem(v)));
      if (value !== undefined) settings.iso.sourceDateEpoch = value === '' ? undefined : Number(value);
    }
    const label = fields?.get('volumeLabel');
    if (label !== undefined) {
      const value = checked(label, volumeLabelProblem);
      if (value !== undefined) settings.iso.volumeLabel = value;
    }
  }
  if (errors.length > 0) return failure();
  return { ok: true, settings };
}

/**
 * Lay the command line's switches over settings from a file, checking each
 * value as the file's would be; a problem names the switch.
 */
export function applySwitches(base: BuildSettings, switches: BuildSwitches): BuildSettings {
  const settings: BuildSettings = structuredClone(base);
  const problems: string[] = [];
  const check = (flag: string, problem: string | undefined): boolean => {
    if (problem !== undefined) problems.push(`${flag}: ${problem}`);
    return problem === undefined;
  };
  if (switches.release !== undefined && check('--release', releaseProblem(switches.release))) {
    settings.release = switches.release as BuildSettings['release'];
  }
  if (switches.variant !== undefined && check('--variant', variantProblem(switches.variant))) settings.variant = switches.variant as RuntimeVariant;
  for (const part of PINNED_PARTS) {
    const value = switches.versions?.[part];
    if (value !== undefined && check(`--${part}-version`, debianVersionProblem(value))) settings.versions[part] = value;
  }
  for (const part of OPTIONAL_PARTS) {
    const value = switches.parts?.[part];
    if (value !== undefined) settings.parts[part] = value;
  }
  const epoch = switches.iso?.sourceDateEpoch;
  if (epoch !== undefined && check('--source-date-epoch', epochProblem(epoch))) settings.iso.sourceDateEpoch = Number(epoch);
  const label = switches.iso?.volumeLabel;
  if (label !== undefined && check('--volume-label', volumeLabelProblem(label))) settings.iso.volumeLabel = label;
  check('packages', packagesVariantProblem(settings));
  if (problems.length > 0) throw new BuildConfigError(problems);
  return settings;
}

/** Settings with a channel's (or the top level's) variant, versions and parts laid over them. */
function overlay(settings: BuildSettings, over: ChannelSettings): BuildSettings {
  return {
    ...settings,
    variant: over.variant ?? settings.variant,
    versions: { ...settings.versions, ...over.versions },
    parts: { ...settings.parts, ...over.parts },
    packages: over.packages ?? settings.packages,
  };
}

/**
 * The settings a build of `channel` uses: the channel's own laid over the
 * top-level ones (the default channel, or none named, takes those as they
 * are). An unknown channel is an error naming the file and the channels it has.
 */
export function settingsForChannel(settings: BuildSettings, channel: string | undefined, source: string): BuildSettings {
  if (channel === undefined || channel === DEFAULT_CHANNEL) return settings;
  const own = Object.hasOwn(settings.channels, channel) ? settings.channels[channel] : undefined;
  if (own === undefined) {
    const known = Object.keys(settings.channels);
    const why = channelNameProblem(channel);
    throw new BuildConfigError([
      `--channel ${channel}: ${why ?? `no channel of that name in ${source} (${known.length === 0 ? 'it names none' : `it has ${known.join(', ')}`})`}`,
    ]);
  }
  return overlay(settings, own);
}

/** parseBuildConfig, throwing a BuildConfigError with every problem in compiler style. */
export function settingsFromText(text: string, source: string): BuildSettings {
  const result = parseBuildConfig(text, source);
  if (!result.ok) throw new BuildConfigError(result.errors.map(formatProfileError));
  return result.settings;
}
