import type { FolderLayout } from '../../server/folder-layout.js';

/**
 * The commented settings file the package installs as
 * /etc/rackboot/rackboot.yaml: every key of `rackboot serve` (each a flag,
 * server/serve-options.ts) with what it does and its default, commented out
 * so that the defaults apply until a line is opened. Made from the options
 * themselves, so a new flag is in the next package's file. Pure.
 */

interface OptionSpec {
  type?: string;
  array?: boolean;
  choices?: readonly string[];
  default?: unknown;
  describe?: string;
}

/** A value to show for keys without a default (addresses from 198.18.0.0/15, as in the README). */
const examples: Record<string, unknown> = {
  interface: 'eth1',
  address: '198.18.0.1',
  pool: '198.18.0.100-198.18.0.199',
  router: '198.18.0.1',
  dns: ['198.18.0.1'],
  'relay-subnet': ['198.18.2.0/24,198.18.2.100-198.18.2.199,198.18.2.1'],
  'dhcp-new-clients-per-second': 20,
  'tftp-server': '198.18.0.2',
  user: 'rackboot',
  database: 'postgres://rackboot@198.18.0.5/rackboot',
};

/** Keys an administrator must fill in before the first start. */
const toFill = ['interface', 'pool'];

/** What the service makes of a key, beyond its flag's description. */
const notes: Record<string, string> = {
  interface: 'Fill in: the interface the machines boot on.',
  pool: 'Fill in (full DHCP mode): the addresses to hand out.',
  user: 'Not needed under the service: systemd starts serve as the rackboot user.',
  'drain-seconds': "Keep it below the unit's TimeoutStopSec (90 s), or systemd kills serve mid-drain.",
  'http-port': 'Open TCP 80 (or this port) in the firewall.',
  'tftp-port': 'Open UDP 69 (or this port) and the ephemeral ports TFTP transfers answer from.',
  'dhcp-port': 'Open UDP 67 (and 4011 in proxy mode).',
  database:
    'Several servers on one PostgreSQL: the password goes in a pgpass file (a drop-in with Environment=PGPASSFILE=/etc/rackboot/pgpass, that file owned by rackboot, mode 0600), not in this URL.',
};

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}

function yamlValue(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(yamlValue).join(', ')}]`;
  if (typeof value === 'string') return /^[\w./-]+$/.test(value) && !/^(true|false|null|yes|no|on|off|~|[\d.]+)$/i.test(value) ? value : JSON.stringify(value);
  return String(value);
}

export function renderSampleConfig(options: Readonly<Record<string, OptionSpec>>, layout: FolderLayout): string {
  const out = [
    '# rackboot serve\'s settings: each key is a flag of "rackboot serve" (see',
    '# rackboot(8)). The service reads this file at start; "systemctl reload',
    '# rackboot" reads the profiles and the current build again and logs the',
    '# settings changed here, which take effect at "systemctl restart rackboot".',
    '# RACKBOOT_<KEY> environment variables (RACKBOOT_HTTP_PORT) win over this file.',
    '# "rackboot serve --check" checks it, with the interface and the profiles.',
    '#',
    '# Every key is shown with its default, commented out: remove the "#" in front',
    "# of a key to set it. Folders named relatively are relative to this file's folder.",
    '# Fill in at least: ' + toFill.join(' and ') + '.',
    '',
  ];
  const ordered = [...toFill, ...Object.keys(options).filter((key) => !toFill.includes(key))];
  for (const key of ordered) {
    const spec = options[key]!;
    const folder = (layout as unknown as Record<string, string>)[key];
    const value = folder ?? (spec.default !== undefined && !(Array.isArray(spec.default) && spec.default.length === 0) ? spec.default : examples[key]);
    const text = [spec.describe ?? '', spec.choices ? `(${spec.choices.join(', ')})` : '', notes[key] ?? ''].filter(Boolean).join('. ').replace(/\.\. /g, '. ');
    for (const line of wrap(text, 76)) out.push(`# ${line}`);
    out.push(`#${key}: ${value === undefined ? '' : yamlValue(value)}`.trimEnd(), '');
  }
  return out.join('\n');
}
