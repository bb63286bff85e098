#!/usr/bin/env node
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { BUILD_SWITCHES, switchesFromArgs } from '../builder/switches.js';
import { checkAddressFlags, checkNumberFlags, rawFlagText, serveNumberFlags, unknownFlags } from './cli-flags.js';
import { changedSettings, defaultConfigFile, loadServeConfig } from './serve-config.js';
import { folderOptions, serveOptions, stateOption } from './serve-options.js';
import { createLogger } from './log.js';

/** `rackboot build`'s switches over its settings file, each naming the setting it overrides; read back with switchesFromArgs. */
function withBuildSwitches<T>(y: Argv<T>): Argv<T> {
  for (const s of BUILD_SWITCHES) {
    y.option(s.flag, { type: s.type, describe: `${s.describe} (config: ${s.setting})`, ...(s.choices ? { choices: s.choices } : {}) });
  }
  return y;
}

const commandNames = ['serve', 'leases', 'hosts', 'build', 'builds', 'rollout', 'whatif', 'demo', 'hash-password', 'profiles', 'manpage', 'completion'];

/** --json on the admin API's listings. */
const jsonListing = { name: 'json', option: { type: 'boolean', default: false, describe: "the API's JSON instead of a table" } } as const;

/** How a command reaches a running server's admin API. */
function withAdminOptions<T>(y: Argv<T>) {
  return y
    .option('server', { type: 'string', describe: "the server's HTTP address, such as 198.18.0.1 or http://198.18.0.1:8080 (else RACKBOOT_SERVER)" })
    .option('token-file', { type: 'string', describe: 'a file holding the admin token (else RACKBOOT_TOKEN, else <state>/admin.token)' })
    .option('state', { ...stateOption, describe: "the server's state folder, for its admin.token when neither of those is given" });
}

/** An admin API listing: the API's JSON with --json, else a table of `header` with a row per item. */
async function printListing<T>(json: boolean, items: T[], header: string[], row: (item: T) => string[]): Promise<void> {
  if (json) {
    process.stdout.write(`${JSON.stringify(items, null, 2)}\n`);
    return;
  }
  const { table } = await import('./admin/client.js');
  process.stdout.write(table(header, items.map(row)));
}

/** The --database flag of the commands that read or write the database servers share. */
function databaseOption(what: string) {
  return { type: 'string', describe: `the PostgreSQL URL servers share ("serve --database"; else RACKBOOT_DATABASE): ${what}` } as const;
}

/** --database, else RACKBOOT_DATABASE, else none. */
function databaseFrom(args: { database?: string | undefined }): string | undefined {
  return args.database ?? (process.env.RACKBOOT_DATABASE || undefined);
}

/** --database, else RACKBOOT_DATABASE; one of them is needed. */
function databaseOf(args: { database?: string | undefined }): string {
  const database = databaseFrom(args);
  if (database === undefined) throw new Error('name the database: --database postgres://USER@HOST/DATABASE (or RACKBOOT_DATABASE)');
  return database;
}

async function adminClient(args: { server?: string; 'token-file'?: string; state: string }) {
  const server = args.server ?? process.env.RACKBOOT_SERVER;
  if (server === undefined || server === '') throw new Error('name the server: --server ADDRESS (or RACKBOOT_SERVER)');
  const { AdminClient } = await import('./admin/client.js');
  return AdminClient.open({ server, state: args.state, tokenFile: args['token-file'] });
}

/**
 * The one command line: `rackboot serve | leases | hosts | build | builds | whatif | demo | hash-password | profiles | manpage`. Each
 * command loads only what it needs, so `rackboot whatif` stays quick.
 */
async function main(argv: string[]): Promise<void> {
  const cli = yargs(argv);
  await cli
    .scriptName('rackboot')
    .usage('$0 <command> [options]')
    .command(
      'serve',
      'answer DHCP, TFTP and HTTP on one interface and boot machines by their profiles',
      (y) =>
        y
          .options(serveOptions)
          .config(
            'config',
            `a YAML file of serve's settings, each flag a key (default: ${defaultConfigFile} when it exists); RACKBOOT_<FLAG> variables win over it, flags over both`,
            (file: string) => loadServeConfig(file, { implicit: rawFlagText(argv, 'config') === undefined && file === defaultConfigFile }),
          )
          .default('config', defaultConfigFile)
          .option('check', {
            type: 'boolean',
            default: false,
            describe: 'check the whole configuration (flags, file, environment, interface, profiles) and exit, binding nothing',
          })
          .check((values) => checkNumberFlags(values, serveNumberFlags, argv) ?? checkAddressFlags(values) ?? true),
      async (args) => {
        const { checkServe, serve } = await import('./serve.js');
        // Whatever the server creates (state, profiles, per-host images) is its own user's only.
        process.umask(0o077);
        const rate = args['dhcp-new-clients-per-second'];
        const settings = {
          interfaceName: args.interface,
          ...(args.address ? { address: args.address } : {}),
          dhcp: args.dhcp,
          ...(args.pool ? { pool: args.pool } : {}),
          relaySubnets: args['relay-subnet'],
          ...(args.router ? { router: args.router } : {}),
          dns: args.dns,
          leaseSeconds: args['lease-time'],
          firstLeaseSeconds: args['first-lease-time'],
          dhcpKnownOnly: args['dhcp-known-only'],
          ...(rate === undefined ? {} : { dhcpNewClientsPerSecond: rate }),
          profiles: args.profiles,
          assets: args.assets,
          state: args.state,
          ...(args.database !== undefined ? { database: args.database } : {}),
          httpPort: args['http-port'],
          tftpPort: args['tftp-port'],
          syslogPort: args['syslog-port'],
          logRetention: { maxBytesPerHost: args['keep-log-mb'] * 1024 * 1024, days: args['keep-days'] },
          tftpMaxTransfers: args['tftp-max-transfers'],
          tftpMaxTransfersPerClient: args['tftp-max-per-client'],
          ...(args['tftp-server'] !== undefined ? { tftpServer: args['tftp-server'] } : {}),
          dhcpPort: args['dhcp-port'],
          eventRetention: { days: args['keep-days'], perHost: args['keep-events'] },
          ...(args.user !== undefined ? { user: args.user } : {}),
          httpLimits: { maxConnections: args['http-max-connections'], maxConnectionsPerAddress: args['http-max-per-address'] },
          hostList: { maxUnknown: args['unknown-hosts-max'], unknownRetentionMs: args['unknown-hosts-hours'] * 3600_000 },
          hostImageCacheBytes: args['host-image-cache-mb'] * 1024 * 1024,
        };
        if (args.check) {
          const report = await checkServe({ ...settings, log: createLogger({ level: 'silent', pretty: false }) });
          for (const line of report.problems) process.stderr.write(`${line}\n`);
          for (const line of report.warnings) process.stderr.write(`${line}\n`);
          if (report.problems.length > 0) {
            process.stdout.write(`configuration has ${report.problems.length} problem${report.problems.length === 1 ? '' : 's'}\n`);
            process.exitCode = 1;
          } else {
            process.stdout.write(`configuration OK: ${report.summary}\n`);
          }
          return;
        }
        const log = createLogger();
        const server = await serve({ ...settings, log });
        // SIGTERM (systemctl stop) and SIGINT: take no new work, let what is in
        // flight finish for up to --drain-seconds, exit 0; a second one cuts it short.
        let stopping = false;
        const stop = (signal: string) => {
          if (stopping) {
            log.warn({ signal }, 'stopping now: a second signal cuts the drain short');
            process.exit(0);
          }
          stopping = true;
          log.info({ signal, drainSeconds: args['drain-seconds'] }, 'stopping: finishing what is in flight');
          void server.close({ drainMs: args['drain-seconds'] * 1000 }).then(() => {
            log.info({ signal }, 'stopped');
            process.exit(0);
          });
        };
        process.on('SIGINT', () => stop('SIGINT'));
        process.on('SIGTERM', () => stop('SIGTERM'));
        // SIGHUP (systemctl reload): read the profiles and the current build
        // again, and the settings file, saying which settings changed (those
        // take effect on restart: they are bound into sockets and stores).
        const configFile = args.config as string;
        const implicitConfig = rawFlagText(argv, 'config') === undefined && configFile === defaultConfigFile;
        let settingsInEffect = loadServeConfig(configFile, { implicit: implicitConfig });
        process.on('SIGHUP', () => {
          try {
            const now = loadServeConfig(configFile, { implicit: implicitConfig });
            const changed = changedSettings(settingsInEffect, now);
            if (changed.length > 0)
              log.warn({ file: configFile, changed }, 'settings changed in the file or environment: they take effect when serve restarts');
            settingsInEffect = now;
          } catch (error) {
            log.error(
              { file: configFile, problems: (error as Error).message.split('\n') },
              'the settings file has problems; still serving with the settings it started with',
            );
          }
          server.reload().catch((error: unknown) => log.error({ err: error }, 'reload failed; still serving what was loaded before'));
        });
      },
    )
    .command(
      'leases',
      'print the DHCP lease table of a state folder; safe while the server runs (reads only); "leases release ADDR" frees one through a running server',
      (y) =>
        withAdminOptions(y)
          .command(
            'release <address>',
            "free a lease through a running server's admin API (a declined address leaves quarantine)",
            (r) =>
              r
                .positional('address', { type: 'string', demandOption: true })
                .check((values) => checkAddressFlags({ address: values.address })?.replace(/^--address /, 'leases release ') ?? true),
            async (args) => {
              const client = await adminClient(args);
              const lease = (await client.call('DELETE', `leases/${encodeURIComponent(args.address)}`)) as { mac: string; address: string; state: string };
              process.stdout.write(`released ${lease.address} (${lease.mac}); it is ${lease.state} now\n`);
            },
          )
          .option('database', databaseOption('read the leases there instead of the state folder'))
          .option('json', { type: 'boolean', default: false, describe: 'one JSON array instead of a table' }),
      async (args) => {
        const { join } = await import('node:path');
        const { readLeaseFile } = await import('./dhcp/leases/sqlite.js');
        const { readLeaseDatabase } = await import('./dhcp/leases/postgres.js');
        const { leaseRows, renderLeaseTable } = await import('./dhcp/leases/table.js');
        const database = databaseFrom(args);
        const leases = database !== undefined ? await readLeaseDatabase(database) : readLeaseFile(join(args.state, 'leases.sqlite'));
        const now = Date.now();
        process.stdout.write(args.json ? `${JSON.stringify(leaseRows(leases, now), null, 2)}\n` : renderLeaseTable(leases, now));
      },
    )
    .command(
      'hosts [mac]',
      'where each host stands: stage, address, last seen, last boot time, failures; with a MAC, that host in full: its disks and newest events (from a running server with --server, else from the state folder)',
      (y) =>
        y
          .positional('mac', { type: 'string', describe: 'one host, by MAC' })
          .option('server', {
            type: 'string',
            describe: "a running server's HTTP address, such as 198.18.0.1 or http://198.18.0.1:8080 (else RACKBOOT_SERVER)",
          })
          .option('token-file', { type: 'string', describe: 'with --server: a file holding the admin token (else RACKBOOT_TOKEN, else <state>/admin.token)' })
          .option('state', { ...stateOption, describe: 'the folder "rackboot serve --state" uses (its admin token, or its timeline)' })
          .options({ profiles: folderOptions.profiles })
          .option('database', databaseOption('read the timeline there instead of the state folder'))
          .option('json', { type: 'boolean', default: false, describe: 'one JSON array instead of a table' }),
      async (args) => {
        const { listHosts, renderHostDetail, renderHostTable, showHost } = await import('./status/hosts-command.js');
        const server = args.server ?? (process.env.RACKBOOT_SERVER || undefined);
        const database = databaseFrom(args);
        const options = {
          state: args.state,
          profiles: args.profiles,
          ...(server ? { server } : {}),
          ...(database !== undefined ? { database } : {}),
          ...(args['token-file'] !== undefined ? { tokenFile: args['token-file'] } : {}),
        };
        if (args.mac !== undefined) {
          const { normaliseMac } = await import('./profiles/mac.js');
          const mac = normaliseMac(args.mac);
          if (mac === undefined) throw new Error(`hosts: "${args.mac}" is not a MAC address`);
          const host = await showHost(mac, options);
          process.stdout.write(args.json ? `${JSON.stringify(host, null, 2)}\n` : renderHostDetail(host));
          return;
        }
        const hosts = await listHosts(options);
        process.stdout.write(args.json ? `${JSON.stringify(hosts, null, 2)}\n` : renderHostTable(hosts));
      },
    )
    .command(
      'build',
      'assemble the boot parts (Xen, dom0 kernel, runtime initrd, iPXE) from Debian packages',
      (y) =>
        withBuildSwitches(y)
          .option('assets', {
            alias: 'out',
            type: 'string',
            default: folderOptions.assets.default,
            describe: 'assets folder: builds/<id> and the "current" link (as serve --assets)',
          })
          .option('cache', { type: 'string', describe: 'download cache (default: ~/.cache/rackboot)' })
          .option('config', { type: 'string', describe: 'build settings file (default: builder/build.yaml, which documents each setting)' })
          .option('channel', {
            type: 'string',
            describe: "build for this channel of the settings file: its settings over the top-level ones, and it becomes the channel's current build",
          })
          .option('host', { type: 'string', describe: "instead of a build: one host's CD/USB image from the current build, with its profile on the boot line" })
          .option('iso-file', { type: 'string', describe: 'with --host: where to write the image (default rackboot-<mac>.iso)' })
          .option('profiles', folderOptions.profiles)
          .option('address', {
            type: 'string',
            describe: "with --host (needed): the address of the rackboot server the image's runtime fetches its secrets from",
          })
          .option('http-port', { type: 'number', default: 80, describe: "with --host: that server's HTTP port" })
          .option('state', {
            ...stateOption,
            describe:
              "the server's state folder: with --host, its host-token.key signs the image's token; with --keep, its rollout-builds.json names the builds its rollouts use",
          })
          .option('keep', {
            type: 'number',
            describe: "after the build, keep only the N newest builds, and each channel's current one, those profiles pin and those the server's rollouts use",
          })
          .option('if-changed', {
            type: 'boolean',
            default: false,
            describe:
              "build only when a build now would differ from the channel's current one (a newer Debian package, a new pin, another builder or settings); what changed goes into the manifest",
          })
          .check(
            (values) =>
              checkNumberFlags(values, { 'http-port': serveNumberFlags['http-port']!, keep: { min: 1, integer: true, unit: 'builds' } }, argv) ??
              checkAddressFlags(values.address === undefined ? {} : { address: values.address }) ??
              (values.host !== undefined && values.address === undefined
                ? "--host needs --address: the address of the rackboot server this host's image fetches its secrets from"
                : values.host !== undefined && (values.channel !== undefined || values['if-changed'] === true)
                  ? '--host makes a host image from the build its profile chooses (boot.channel, boot.build); --channel and --if-changed are for builds'
                  : true),
          ),
      async (args) => {
        // Under live progress bars, log lines on the same terminal would tear them; warnings still show.
        const bars = process.stderr.isTTY === true && process.stdout.isTTY === true && process.env.RACKBOOT_LOG_LEVEL === undefined;
        const log = createLogger(bars && args.host === undefined ? { level: 'warn' } : {});
        if (args.host !== undefined) {
          const { buildHostIsoFile } = await import('./iso/host-iso-file.js');
          const image = await buildHostIsoFile({
            mac: args.host,
            profiles: args.profiles,
            assets: args.assets,
            state: args.state,
            endpoints: { address: args.address!, httpPort: args['http-port'] },
            ...(args['iso-file'] ? { output: args['iso-file'] } : {}),
          });
          log.info({ mac: args.host, ...image }, 'host CD/USB image written');
          return;
        }
        const { runBuildCommand } = await import('../builder/command.js');
        const code = await runBuildCommand({
          out: args.assets,
          ...(args.cache ? { cacheDir: args.cache } : {}),
          ...(args.config !== undefined ? { config: args.config } : {}),
          ...(args.channel !== undefined ? { channel: args.channel } : {}),
          ...(args['if-changed'] ? { ifChanged: true } : {}),
          switches: switchesFromArgs(args as Record<string, unknown>),
          log,
        });
        if (code !== 0) {
          process.exitCode = code;
          return;
        }
        if (args.keep !== undefined) {
          const { pruneBuilds } = await import('../builder/prune.js');
          const { pinnedBuilds } = await import('./profiles/pinned-builds.js');
          const { buildsInUse, readRolloutBuilds } = await import('./rollouts/in-use.js');
          // Pinned by profiles, or handed out by the server's active rollouts (its state folder says which).
          let inUse: Set<string>;
          try {
            inUse = buildsInUse(await readRolloutBuilds(args.state));
          } catch (error) {
            process.stderr.write(`rackboot build: --keep: ${(error as Error).message}; no build pruned\n`);
            process.exitCode = 1;
            return;
          }
          await pruneBuilds(args.assets, args.keep, log, new Set([...(await pinnedBuilds(args.profiles, log)), ...inUse]));
        }
      },
    )
    .command(
      'whatif <mac>',
      'print, as JSON, the profile a MAC resolves to and what it would be served',
      (y) =>
        y
          .positional('mac', { type: 'string', demandOption: true })
          .option('arch', { choices: ['bios', 'efi64'] as const, default: 'bios' as const })
          .options(folderOptions)
          .option('address', { type: 'string', default: '127.0.0.1', describe: 'server address to put in URLs' })
          .option('http-port', { type: 'number', default: 80 })
          .option('circuit-id', { type: 'string', describe: 'as if the machine sat in this slot: option 82 circuit-id (text, or 0x... hex)' })
          .option('remote-id', { type: 'string', describe: 'and behind this relay: option 82 remote-id (text, or 0x... hex)' })
          .option('server', {
            type: 'string',
            describe:
              'ask this running server (admin API) for its rollouts, which can give the host another build (else RACKBOOT_SERVER; without either, they are not asked)',
          })
          .option('token-file', { type: 'string', describe: 'with --server: a file holding the admin token (else RACKBOOT_TOKEN, else <state>/admin.token)' })
          .option('state', { ...stateOption, describe: "with --server: the server's state folder, for its admin.token" })
          .check(
            (values) =>
              checkNumberFlags(values, { 'http-port': serveNumberFlags['http-port']! }, argv) ?? checkAddressFlags({ address: values.address }) ?? true,
          ),
      async (args) => {
        const { whatif } = await import('./whatif.js');
        const server = args.server ?? (process.env.RACKBOOT_SERVER || undefined);
        let rollouts;
        if (server !== undefined) {
          const { parseStoredRollout } = await import('./rollouts/store.js');
          const client = await adminClient({ server, 'token-file': args['token-file'], state: args.state });
          // The API's view is the stored rollout with a summary per host beside it.
          const views = (await client.call('GET', 'rollouts')) as Array<{ channel: string; hosts?: unknown }>;
          rollouts = {
            from: `the server at ${client.base.origin}`,
            rollouts: views.map(({ hosts: _hosts, ...stored }) => parseStoredRollout(JSON.stringify(stored), stored.channel)),
          };
        }
        const report = await whatif({
          ...(rollouts === undefined ? {} : { rollouts }),
          mac: args.mac,
          ...(args['circuit-id'] === undefined ? {} : { circuitId: args['circuit-id'] }),
          ...(args['remote-id'] === undefined ? {} : { remoteId: args['remote-id'] }),
          platform: args.arch,
          profiles: args.profiles,
          assets: args.assets,
          endpoints: { address: args.address, httpPort: args['http-port'] },
        });
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      },
    )
    .command(
      'demo',
      'build, then serve inside a private network namespace and network-boot a QEMU machine to the ready line',
      (y) =>
        y
          .options(folderOptions)
          .option('firmware', {
            choices: ['bios', 'efi', 'efi-http'] as const,
            default: 'bios' as const,
            describe: 'BIOS with iPXE ROM, UEFI PXE, or UEFI HTTP Boot',
          })
          .option('mac', { type: 'string', default: '52:54:00:ab:cd:01' })
          .option('keep', { type: 'boolean', default: false, describe: 'keep the machine running after it is ready' }),
      async (args) => {
        const { demo } = await import('./demo.js');
        const code = await demo({
          assets: args.assets,
          profiles: args.profiles,
          firmware: args.firmware,
          mac: args.mac,
          keep: args.keep,
          log: createLogger(),
        });
        process.exitCode = code;
      },
    )
    .command(
      'hash-password',
      'print a SHA-512 crypt hash ("$6$...") of a password for rootPasswordHash; asks without echo on a terminal, else reads a line from stdin',
      (y) => y.option('salt', { type: 'string', describe: 'salt to use (default: 16 random characters)' }),
      async (args) => {
        const { hashPassword } = await import('./admin/password.js');
        const { readPassword } = await import('./admin/prompt.js');
        const password = await readPassword();
        process.stdout.write(`${hashPassword(password, ...(args.salt === undefined ? [] : [args.salt]))}\n`);
      },
    )
    .command(
      'manpage',
      'print rackboot(8), the manual page made from this help (man -l <(rackboot manpage) shows it)',
      (y) => y,
      async () => {
        const { collectHelp, renderManPage } = await import('./man.js');
        const { rackbootVersion } = await import('./status/hosts.js');
        process.stdout.write(renderManPage(collectHelp(), rackbootVersion()));
      },
    )
    .command('builds', "a running server's builds", (y) =>
      y
        .command(
          'list',
          'the builds of a running server, the current one marked',
          (v) => withAdminOptions(v).option(jsonListing.name, jsonListing.option),
          async (args) => {
            const client = await adminClient(args);
            const builds = (await client.call('GET', 'builds')) as Array<{
              id: string;
              created: string;
              release: string;
              channel: string;
              currentFor: string[];
            }>;
            await printListing(args.json, builds, ['BUILD', 'CREATED', 'RELEASE', 'CHANNEL', 'CURRENT FOR'], (build) => [
              build.id,
              build.created,
              build.release,
              build.channel,
              build.currentFor.join(','),
            ]);
          },
        )
        .command(
          'switch <id>',
          'make a build the current one on a running server, of the default channel or of --channel (machines get it at their next boot)',
          (v) =>
            withAdminOptions(v)
              .positional('id', { type: 'string', demandOption: true })
              .option('channel', { type: 'string', describe: 'the channel whose current build it becomes (default: the default channel)' }),
          async (args) => {
            const client = await adminClient(args);
            const switched = (await client.call('PUT', 'builds/current', {
              json: { id: args.id, ...(args.channel === undefined ? {} : { channel: args.channel }) },
            })) as { id: string; channel: string };
            process.stdout.write(`current build${switched.channel === 'default' ? '' : ` of channel ${switched.channel}`}: ${switched.id}\n`);
          },
        )
        .demandCommand(1, 'name a builds command: list or switch'),
    )
    .command(
      'logs <mac>',
      "a host's log lines (its syslog and netconsole), from a running server: every boot kept, or --boot N; --follow waits for more",
      (v) =>
        withAdminOptions(v)
          .positional('mac', { type: 'string', demandOption: true })
          .option('boot', { type: 'number', describe: "only this boot's lines (boots are numbered per host, from 1)" })
          .option('since', { type: 'string', describe: 'only lines from the last 90s, 20m, 2h...' })
          .option('limit', { type: 'number', default: 1000, describe: 'at most this many lines (the newest)' })
          .option('follow', { type: 'boolean', default: false, describe: 'keep printing new lines as they come (Ctrl-C ends)' })
          .option(jsonListing.name, jsonListing.option),
      async (args) => {
        const { parseDeadline } = await import('./rollouts/rollout.js');
        const since = args.since === undefined ? undefined : parseDeadline(args.since);
        if (since !== undefined && typeof since !== 'number') throw new Error(since.problem.replace('--deadline', '--since'));
        const client = await adminClient(args);
        type Line = { id: number; boot: number; receivedAt: number; source: string; app?: string; text: string };
        const ask = async (query: Record<string, number | undefined>) => {
          const params = Object.entries(query)
            .filter((entry): entry is [string, number] => entry[1] !== undefined)
            .map(([name, value]) => `${name}=${value}`)
            .join('&');
          return (await client.call('GET', `hosts/${encodeURIComponent(args.mac)}/logs${params ? `?${params}` : ''}`)) as { lines: Line[] };
        };
        const print = (lines: Line[]) => {
          for (const line of lines) {
            if (args.json) process.stdout.write(`${JSON.stringify(line)}\n`);
            else process.stdout.write(`${line.boot} ${new Date(line.receivedAt).toISOString()} ${line.source} ${line.app ?? '-'}: ${line.text}\n`);
          }
        };
        let { lines } = await ask({ boot: args.boot, since: since === undefined ? undefined : Date.now() - since, limit: args.limit });
        print(lines);
        let last = lines.at(-1)?.id ?? 0;
        while (args.follow) {
          await new Promise((resolve) => setTimeout(resolve, 1000));
          ({ lines } = await ask({ boot: args.boot, sinceId: last, limit: 1000 }));
          print(lines);
          last = lines.at(-1)?.id ?? last;
        }
      },
    )
    .command(
      'power-cycle <mac>',
      'power-cycle a host through its BMC (bmc: in its profile) into a network boot, on a running server',
      (v) =>
        withAdminOptions(v).positional('mac', { type: 'string', demandOption: true }).option('efi', {
          type: 'boolean',
          describe: "boot from the network in UEFI mode (--no-efi: legacy BIOS); default: the platform of the host's last boot script",
        }),
      async (args) => {
        const client = await adminClient(args);
        const done = (await client.call('POST', `hosts/${encodeURIComponent(args.mac)}/power-cycle`, {
          json: args.efi === undefined ? {} : { efi: args.efi },
        })) as { mac: string; bmc: string; wasOn: boolean; nextBoot: string };
        process.stdout.write(
          `${done.mac}: ${done.wasOn ? 'power-cycled' : 'powered on (it was off)'} through its BMC ${done.bmc}; next boot: ${done.nextBoot}\n`,
        );
      },
    )
    .command('rollout', "canary rollouts of a build to a channel's hosts, on a running server", (y) => {
      type RolloutView = {
        channel: string;
        build: string;
        previous: string;
        state: string;
        reason?: string;
        deadlineMs: number;
        hosts: Array<{ mac: string; stage: string; reason?: string }>;
      };
      const channelOption = { type: 'string', describe: 'the channel (default: the default channel)', default: 'default' } as const;
      const show = (rollout: RolloutView) => {
        const counts = new Map<string, number>();
        for (const host of rollout.hosts) counts.set(host.stage, (counts.get(host.stage) ?? 0) + 1);
        const summary = [...counts].map(([stage, n]) => `${n} ${stage}`).join(', ');
        process.stdout.write(
          `channel ${rollout.channel}: ${rollout.build} (from ${rollout.previous}), ${rollout.state}${rollout.reason ? `: ${rollout.reason}` : ''}; ${summary}\n`,
        );
      };
      const actions = {
        pause: "pause a channel's rollout: no new wave starts (deadlines still count)",
        resume: "resume a channel's paused rollout",
        abort: "abort a channel's rollout: every host of the channel boots the previous build again at its next boot",
      } as const;
      let commands = y;
      for (const [action, describe] of Object.entries(actions)) {
        commands = commands.command(
          action,
          describe,
          (v) => withAdminOptions(v).option('channel', channelOption),
          async (args) => {
            const client = await adminClient(args);
            show((await client.call('POST', `rollouts/${encodeURIComponent(String(args.channel))}/${action}`)) as RolloutView);
          },
        );
      }
      return commands
        .command(
          'start',
          "move the channel's hosts to --build, the first few first; each next wave waits until every moved host reports ready with it",
          (v) =>
            withAdminOptions(v)
              .option('channel', channelOption)
              .option('build', { type: 'string', demandOption: true, describe: 'the build id to roll out (rackboot builds list)' })
              .option('first', { type: 'string', default: '1', describe: 'hosts in the first wave: a number, or a share such as 25%' })
              .option('deadline', {
                type: 'string',
                default: '30m',
                describe: 'how long a moved host has from its boot script to its ready report (90s, 20m, 1h)',
              })
              .option('reboot', {
                type: 'boolean',
                default: false,
                describe:
                  "ask moved hosts to reboot, one at a time (and failed ones to reboot back), through their runtime's heartbeat; never hosts whose profile says boot.allowReboot: false",
              }),
          async (args) => {
            const client = await adminClient(args);
            show(
              (await client.call('POST', 'rollouts', {
                json: { channel: args.channel, build: args.build, first: args.first, deadline: args.deadline, reboot: args.reboot },
              })) as RolloutView,
            );
          },
        )
        .command(
          'status',
          "each channel's newest rollout and where each of its hosts stands",
          (v) => withAdminOptions(v).option(jsonListing.name, jsonListing.option).option('channel', { type: 'string', describe: 'only this channel' }),
          async (args) => {
            const client = await adminClient(args);
            const rollouts = ((await client.call('GET', 'rollouts')) as RolloutView[]).filter(
              (rollout) => args.channel === undefined || rollout.channel === args.channel,
            );
            if (args.json) {
              process.stdout.write(`${JSON.stringify(rollouts, null, 2)}\n`);
              return;
            }
            if (rollouts.length === 0) process.stdout.write(`no rollout${args.channel === undefined ? '' : ` on channel ${args.channel}`}\n`);
            for (const rollout of rollouts) {
              show(rollout);
              await printListing(false, rollout.hosts, ['HOST', 'STAGE', 'REASON'], (host) => [host.mac, host.stage, host.reason ?? '']);
            }
          },
        )
        .demandCommand(1, 'name a rollout command: start, status, pause, resume or abort');
    })
    .command('profiles', 'work with the profile files', (y) =>
      y
        .command(
          'validate',
          'check every profile file as the server would (syntax, fields, conflicts); exit 1 on any problem',
          (v) =>
            v.options(folderOptions).option('subnet', {
              type: 'string',
              array: true,
              default: [] as string[],
              describe: 'a subnet the server serves, CIDR (repeat for more): static addresses on none of them are warned about',
            }),
          async (args) => {
            const { validateProfiles } = await import('./profiles/validate.js');
            const { parseCidr } = await import('./net/interfaces.js');
            const report = await validateProfiles(args.profiles, { subnets: args.subnet.map((text) => parseCidr(text, '--subnet')) });
            for (const line of report.problems) process.stderr.write(`${line}\n`);
            for (const line of report.warnings) process.stderr.write(`${line}\n`);
            process.stdout.write(`${report.summary}\n`);
            process.exitCode = report.problems.length > 0 ? 1 : 0;
          },
        )
        .command(
          'list',
          'the profile files of a running server, with what each serves and its problems',
          (v) => withAdminOptions(v).option(jsonListing.name, jsonListing.option),
          async (args) => {
            const client = await adminClient(args);
            const files = (await client.call('GET', 'profiles')) as Array<{
              name: string;
              served: boolean;
              mac: string | null;
              hostname: string | null;
              hosts?: number;
              problems: string[];
            }>;
            await printListing(args.json, files, ['FILE', 'SERVED', 'MAC', 'HOSTNAME', 'PROBLEMS'], (file) => [
              file.name,
              file.served ? 'yes' : 'no',
              file.hosts === undefined ? (file.mac ?? '-') : `group of ${file.hosts}`,
              file.hostname ?? '-',
              String(file.problems.length),
            ]);
          },
        )
        .command(
          'show <name>',
          'print one profile file of a running server (its problems on stderr)',
          (v) => withAdminOptions(v).positional('name', { type: 'string', demandOption: true }),
          async (args) => {
            const client = await adminClient(args);
            const file = (await client.call('GET', `profiles/${encodeURIComponent(args.name)}`)) as { text: string; problems: string[] };
            process.stdout.write(file.text);
            for (const problem of file.problems) process.stderr.write(`${problem}\n`);
            if (file.problems.length > 0) process.exitCode = 1;
          },
        )
        .command(
          'apply <file>',
          'save a profile file on a running server (created, or replaced), checked as the server checks files: a profile with problems is not saved',
          (v) =>
            withAdminOptions(v)
              .positional('file', { type: 'string', demandOption: true })
              .option('name', { type: 'string', describe: "the file's name on the server (default: this file's name)" }),
          async (args) => {
            const { basename } = await import('node:path');
            const { readFile } = await import('node:fs/promises');
            let text: string;
            try {
              text = await readFile(args.file, 'utf8');
            } catch (error) {
              throw new Error(`${args.file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
            }
            const name = (args.name ?? basename(args.file)).replace(/\.ya?ml$/, '');
            const client = await adminClient(args);
            const saved = (await client.call('PUT', `profiles/${encodeURIComponent(name)}`, { yaml: text })) as {
              name: string;
              profile: { mac: string | null; hostname?: string; hosts?: Array<{ hostname: string }> };
            };
            const { profile } = saved;
            const what =
              profile.hosts === undefined
                ? `${profile.hostname ?? ''}${profile.mac ? ` (${profile.mac})` : ''}`
                : `group of ${profile.hosts.length} (${profile.hosts.map((host) => host.hostname).join(', ')})`;
            process.stdout.write(`saved ${saved.name}: ${what}\n`);
          },
        )
        .command(
          'rm <name>',
          'delete a profile file on a running server',
          (v) => withAdminOptions(v).positional('name', { type: 'string', demandOption: true }),
          async (args) => {
            const client = await adminClient(args);
            await client.call('DELETE', `profiles/${encodeURIComponent(args.name)}`);
            process.stdout.write(`deleted ${args.name}\n`);
          },
        )
        .command(
          'import <dir>',
          'put every profile file of a folder into the database servers share ("serve --database"), checked as the server checks them: a folder with problems imports nothing; every server reads them within a second',
          (v) =>
            v.positional('dir', { type: 'string', demandOption: true }).option('database', databaseOption('a folder of profile files goes in, or comes out')),
          async (args) => {
            const { importFolderToDatabase } = await import('./profiles/postgres-profiles.js');
            const report = await importFolderToDatabase(databaseOf(args), args.dir);
            for (const line of report.problems) process.stderr.write(`${line}\n`);
            process.stdout.write(`${report.summary}\n`);
            process.exitCode = report.problems.length > 0 ? 1 : 0;
          },
        )
        .command(
          'export <dir>',
          'write every profile of the database servers share as a file of a folder (to keep in git, or to serve from a folder again)',
          (v) =>
            v.positional('dir', { type: 'string', demandOption: true }).option('database', databaseOption('a folder of profile files goes in, or comes out')),
          async (args) => {
            const { exportProfiles } = await import('./profiles/postgres-profiles.js');
            const names = await exportProfiles(databaseOf(args), args.dir);
            process.stdout.write(`${args.dir}: ${names.length} profile file${names.length === 1 ? '' : 's'} written from the database\n`);
          },
        )
        .demandCommand(1, 'name a profiles command: validate, list, show, apply, rm, import or export'),
    )
    .demandCommand(1, 'name a command: serve, leases, hosts, build, builds, rollout, whatif, demo, hash-password or profiles')
    .strict()
    .recommendCommands()
    .completion('completion', 'print a bash completion script (source it, or put it in /etc/bash_completion.d/rackboot)')
    .wrap(cli.terminalWidth())
    .fail((message, error) => {
      // A failed .check() comes with its message as `error` too (a string,
      // not an Error): a usage mistake. Both say what went wrong first, and
      // point at the help rather than print a page of it.
      if (error instanceof Error && error.name !== 'YError') {
        process.stderr.write(`rackboot: ${error.message}\n`);
        process.exit(2);
      }
      const words = argv.filter((arg) => !arg.startsWith('-'));
      const command = words[0] !== undefined && commandNames.includes(words[0]) ? words[0] : undefined;
      const known = Object.keys((cli as unknown as { getOptions(): { key: Record<string, unknown> } }).getOptions().key).filter((name) => !/[A-Z]/.test(name));
      const unknown = unknownFlags(argv, known);
      // A mistyped command first; then an unknown flag, the likelier mistake (and the
      // reason a required one it was meant to be is "missing").
      const problem = message?.startsWith('Did you mean')
        ? `unknown command ${JSON.stringify(command === undefined ? words[0] : words[1])}; did you mean${message.slice('Did you mean'.length)}`
        : unknown.length > 0
          ? unknown.map((entry) => `unknown flag ${entry.flag}${entry.suggestion ? `; did you mean ${entry.suggestion}?` : ''}`).join('\n')
          : (message ?? 'bad usage');
      process.stderr.write(`rackboot: ${problem}\n(rackboot ${command !== undefined ? `${command} ` : ''}--help lists the options)\n`);
      process.exit(2);
    })
    .help()
    .parseAsync();
}

await main(hideBin(process.argv));
