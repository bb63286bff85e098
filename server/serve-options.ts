import { defaultFirstLeaseSeconds } from './dhcp/decide/types.js';
import { defaultRetention } from './events/retention.js';
import { folderDefaults } from './folder-layout.js';

/**
 * Where profiles and builds live: the same options and defaults for every
 * command. The defaults are the installation's (server/folder-layout.ts): relative
 * folders in a clone, absolute ones in the Debian package.
 */
export const folderOptions = {
  profiles: { type: 'string', default: folderDefaults.profiles, describe: 'folder of host profiles (YAML)' },
  assets: { type: 'string', default: folderDefaults.assets, describe: 'folder of builds made by "rackboot build"' },
} as const;

/** The state folder's option, for serve and for the commands that read a server's state. */
export const stateOption = { type: 'string', default: folderDefaults.state, describe: 'folder for leases and other state' } as const;

/**
 * `rackboot serve`'s settings: each is a command-line flag, a key of the
 * configuration file (server/serve-config.ts) and a RACKBOOT_* variable
 * (RACKBOOT_HTTP_PORT for --http-port). Flags win over the environment, the
 * environment over the file, the file over these defaults.
 */
export const serveOptions = {
  interface: { type: 'string', demandOption: true, describe: 'network interface to serve on' },
  address: { type: 'string', describe: "this server's IPv4 address on that interface (default: its first)" },
  dhcp: { choices: ['full', 'proxy', 'off'] as const, default: 'full' as const, describe: 'DHCP mode' },
  pool: { type: 'string', describe: 'addresses to hand out, START-END (needed in full mode)' },
  'relay-subnet': {
    type: 'string',
    array: true,
    default: [] as string[],
    describe: 'a subnet behind a DHCP relay: CIDR,START-END[,ROUTER[,DNS...]] in full mode, CIDR in proxy mode (repeat for more)',
  },
  router: { type: 'string', describe: 'router (option 3) to hand out in full mode' },
  dns: { type: 'string', array: true, default: [] as string[], describe: 'DNS servers (option 6) to hand out' },
  'lease-time': { type: 'number', default: 3600, describe: 'lease time in seconds' },
  'first-lease-time': {
    type: 'number',
    default: defaultFirstLeaseSeconds,
    describe: 'lease time in seconds until a client renews from its address (full mode); made-up MACs cannot hold the pool longer',
  },
  'dhcp-known-only': { type: 'boolean', default: false, describe: 'answer only MACs and relay slots that have a profile of their own (not default.yaml)' },
  'dhcp-new-clients-per-second': {
    type: 'number',
    describe: 'at most this many clients without a lease or profile get an address per second (full mode; default: no limit)',
  },
  ...folderOptions,
  state: stateOption,
  database: {
    type: 'string',
    describe:
      'PostgreSQL URL (postgres://USER@HOST[:PORT]/DATABASE) for what several servers share: leases, the boot timeline, slot sightings, the host-token key and the admin token; the password from a pgpass file (PGPASSFILE), not the command line',
  },
  'http-port': { type: 'number', default: 80, describe: 'HTTP port (boot scripts, boot files, the status page and the admin API)' },
  'tftp-port': { type: 'number', default: 69, describe: 'TFTP port' },
  'syslog-port': {
    type: 'number',
    default: 514,
    describe: "UDP port the hosts' syslog and netconsole lines come to (kept per host and boot: rackboot logs MAC)",
  },
  'keep-log-mb': { type: 'number', default: 16, describe: "hosts' logs: at most this many MiB of lines per host (the oldest go first)" },
  'tftp-max-transfers': { type: 'number', default: 64, describe: 'TFTP transfers at once; past it requests wait unanswered for the client to repeat them' },
  'tftp-max-per-client': { type: 'number', default: 8, describe: 'TFTP transfers at once from one client address, and from one MAC' },
  'tftp-server': { type: 'string', describe: 'TFTP server to name in DHCP replies (siaddr, option 66) when another host serves TFTP (full mode)' },
  'dhcp-port': { type: 'number', default: 67, describe: 'DHCP server port' },
  user: { type: 'string', describe: 'started as root: become this user, with no capabilities, once every socket is bound' },
  'keep-days': { type: 'number', default: defaultRetention.days, describe: 'boot timeline: forget events older than this (each host keeps its newest)' },
  'keep-events': { type: 'number', default: defaultRetention.perHost, describe: 'boot timeline: at most this many events per host' },
  'http-max-connections': { type: 'number', default: 1024, describe: 'HTTP connections at once; past it new ones are closed at once' },
  'http-max-per-address': { type: 'number', default: 64, describe: 'HTTP connections at once from one client address' },
  'unknown-hosts-max': {
    type: 'number',
    default: 1000,
    describe: 'status: hosts with no profile of their own and no lease listed at most (the most recently seen)',
  },
  'unknown-hosts-hours': { type: 'number', default: 24, describe: 'status: such hosts leave the list this long after their last event' },
  'host-image-cache-mb': { type: 'number', default: 2048, describe: 'disk budget of the per-host image cache; least recently used images go first' },
  'drain-seconds': {
    type: 'number',
    default: 10,
    describe: 'on SIGTERM: how long downloads and TFTP transfers in flight may take to finish before they are cut',
  },
} as const;
