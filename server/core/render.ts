import type { BootPlan, HostBoot, MenuEntry, PlannedDomain, ServerEndpoints } from './resolve.js';
import { httpBase } from './resolve.js';
import { numberToIpv4, Subnet } from '../net/ipv4.js';
import { debianGuestImage, defaultFirstBoot } from '../profiles/domain.js';
import {
  diskRefPath,
  fileMountPoint,
  iscsiInitiatorName,
  iscsiLunPath,
  runtimeConfigSource,
  type DiskRef,
  type DomainDisk,
  type IscsiSession,
} from '../profiles/storage.js';

/**
 * Boot scripts and files rendered from a BootPlan. Pure text in, text out:
 * the HTTP and TFTP servers only carry these to the machine.
 */

/**
 * The script every iPXE client is pointed at by DHCP. It only knows the
 * machine by iPXE's own settings, so it chains to the per-host script with
 * the MAC (hyphens: no colon in the URL path) and the firmware platform
 * ("pcbios" or "efi"). If the server is unreachable it retries instead of
 * dropping the machine to a dead prompt.
 */
export function renderEntryScript(endpoints: ServerEndpoints): string {
  const base = httpBase(endpoints);
  return [
    '#!ipxe',
    '# rackboot: hand this machine over to its own boot script',
    `set rbstep boot-script && chain ${base}/hosts/\${mac:hexhyp}/boot.ipxe?platform=\${platform} || goto retry`,
    ...retryLines('retry', 'could not load the boot script for ${mac}', base),
  ].join('\n');
}

/**
 * A fetch or boot line that names its step first (iPXE's setting rbstep), so
 * the `:failed` label can report which file or step failed.
 */
function step(name: string, command: string): string {
  return `set rbstep ${name} && ${command} || goto failed`;
}

/** The file a URL names: its last path segment. */
function fileOf(url: string): string {
  const path = url.split('?')[0]!;
  return path.slice(path.lastIndexOf('/') + 1);
}

/**
 * Trying again after `label`: DHCP first, then the boot file it names.
 * When this server died mid-boot, another rackboot server on the same
 * database answers that DHCP and names itself, so the machine boots from
 * it; with one server it is the same server again. Without a boot file
 * name (iPXE started some other way) it chains to this server's script.
 */
function retryLines(label: string, what: string, base: string): string[] {
  return [
    `:${label}`,
    `echo rackboot: ${what} (at \${rbstep}: iPXE error \${errno}); asking DHCP again in 10 seconds`,
    // The server hears what failed (server/logs/ipxe-report.ts); a server that cannot be reached is no reason to stop.
    `imgfetch --name rbreport ${base}/hosts/\${mac:hexhyp}/ipxe-failed/\${rbstep}/\${errno} && imgfree rbreport || echo rackboot: the failure could not be reported`,
    'sleep 10',
    `dhcp || goto ${label}`,
    `isset \${filename} && chain \${filename} || chain ${base}/boot.ipxe || goto ${label}`,
    '',
  ];
}

/** The per-host iPXE script for one boot, or a script that says why there is none. */
export function renderHostScript(boot: HostBoot, endpoints: ServerEndpoints): string {
  const retry = `chain ${httpBase(endpoints)}/boot.ipxe`;
  switch (boot.kind) {
    case 'no-profile':
      return [
        '#!ipxe',
        `echo rackboot: no profile matches ${boot.mac} and there is no default profile`,
        `echo rackboot: add a profile with "mac: ${boot.mac}" (or a default.yaml) on the server; retrying in 30 seconds`,
        'sleep 30',
        retry,
        '',
      ].join('\n');
    case 'broken-profile':
      return [
        '#!ipxe',
        `echo rackboot: the profile for ${boot.mac} has errors; fix it on the server (retrying in 30 seconds):`,
        ...boot.problems.map((problem) => `echo ${ipxeText(problem)}`),
        'sleep 30',
        retry,
        '',
      ].join('\n');
    case 'no-build':
      return ['#!ipxe', `echo rackboot: ${ipxeText(boot.reason)}; retrying in 30 seconds`, 'sleep 30', retry, ''].join('\n');
    case 'boot':
      return renderMenuScript(boot.plan, endpoints);
  }
}

/** Text for an iPXE `echo`: iPXE expands "${...}", so "$" must not start one. */
function ipxeText(text: string): string {
  return text.replaceAll('${', '$ {').replaceAll(/[\r\n]/g, ' ');
}

/**
 * The per-host script: XenCD's boot menu as an iPXE menu, one label per
 * entry. With a timeout of 0 the default entry boots at once and no menu is
 * drawn (what tests and unattended racks want). Every entry ends in
 * `boot || goto failed`: a part that cannot be fetched or booted sends the
 * machine back to the entry script instead of leaving it at a dead prompt.
 */
function renderMenuScript(plan: BootPlan, endpoints: ServerEndpoints): string {
  const { profile, mac, build } = plan;
  const lines = ['#!ipxe', `# rackboot: ${profile.hostname} (${mac}) from ${profile.source}, build ${build.id}, entry ${plan.defaultEntry}`];
  // Why this build, on a line of its own (the line above is parsed by people's scripts and tests as it always was).
  if (plan.buildReason !== undefined) lines.push(`# rackboot: build ${build.id}: ${ipxeText(plan.buildReason)}`);
  for (const note of [...(plan.entryNote ? [plan.entryNote] : []), ...plan.notes]) lines.push(`echo rackboot: ${ipxeText(note)}`);
  if (plan.menuTimeout > 0) {
    lines.push(`menu rackboot: ${profile.hostname} (${mac}), build ${ipxeText(build.id)}`);
    for (const item of plan.menu) lines.push(`item ${item.name} ${item.title}`);
    lines.push(`choose --timeout ${plan.menuTimeout * 1000} --default ${plan.defaultEntry} entry || goto ${plan.defaultEntry}`, 'goto ${entry}');
  } else {
    lines.push(`goto ${plan.defaultEntry}`);
  }
  for (const item of plan.menu) {
    // imgfree: images left from an attempt that failed half-way (a server
    // that died mid-download) would otherwise go along as multiboot modules
    // or initrds in front of this attempt's own.
    lines.push('', `:${item.name}`, `echo rackboot: booting ${profile.hostname} (${mac}): ${item.title}`, 'imgfree');
    switch (item.kind) {
      case 'xen':
        lines.push(...(plan.platform === 'bios' ? multibootLines(plan, item) : efiXenLines(plan, item)));
        break;
      case 'linux':
        lines.push(
          step(fileOf(item.kernelUrl), `kernel ${item.kernelUrl} ${item.commandLine}`),
          step(fileOf(item.initrdUrl), `initrd ${item.initrdUrl}`),
          step('boot', 'boot'),
        );
        break;
      case 'memtest':
        // memtest86+ 6's .bin has a Linux boot header (iPXE loads it as a
        // bzImage); its .efi is an EFI application. `kernel` takes both.
        lines.push(step(fileOf(item.url), `kernel ${item.url}`), step('boot', 'boot'));
        break;
      case 'sanboot':
        lines.push(step('sanboot', `sanboot ${item.url}`));
        break;
    }
  }
  lines.push('', ...retryLines('failed', `${profile.hostname} (${mac}) did not boot`, httpBase(endpoints)));
  return lines.join('\n');
}

/**
 * BIOS: iPXE loads Xen as a multiboot kernel and passes dom0's kernel and the
 * runtime initrd as multiboot modules; Xen starts the first module as dom0
 * with the module's command line.
 */
function multibootLines(plan: BootPlan, entry: MenuEntry & { kind: 'xen' }): string[] {
  return [
    step(fileOf(plan.urls.multiboot.xen), `kernel ${plan.urls.multiboot.xen} ${entry.xenCommandLine}`),
    step(fileOf(plan.urls.multiboot.kernel), `module ${plan.urls.multiboot.kernel} ${entry.kernelCommandLine}`),
    step(fileOf(plan.urls.multiboot.initrd), `module ${plan.urls.multiboot.initrd}`),
    step('boot', 'boot'),
  ];
}

/**
 * EFI: iPXE's EFI builds have no multiboot, so iPXE fetches xen.cfg, the
 * kernel and the initrd as named images and starts xen.efi, which reads them
 * through the file system iPXE exposes. The image names are the last path
 * component of each URL and must match the names inside xen.cfg; each Xen
 * entry has a xen.cfg of its own.
 */
function efiXenLines(plan: BootPlan, entry: MenuEntry & { kind: 'xen' }): string[] {
  return [
    step(fileOf(entry.xenCfgUrl), `imgfetch ${entry.xenCfgUrl}`),
    step(fileOf(plan.urls.kernel), `imgfetch ${plan.urls.kernel}`),
    step(fileOf(plan.urls.initrd), `imgfetch ${plan.urls.initrd}`),
    step(fileOf(plan.urls.xenEfi), `chain ${plan.urls.xenEfi} -cfg=xen.cfg`),
  ];
}

/**
 * The xen.efi configuration file (Xen's docs/misc/efi.pandoc format) for one
 * host and one Xen entry of its menu (the plan's default Xen entry when none
 * is named); undefined for a name that is not a Xen entry.
 */
export function renderXenConfig(plan: BootPlan, entryName: string = plan.entry.name): string | undefined {
  const entry = plan.menu.find((item) => item.name === entryName);
  if (entry?.kind !== 'xen') return undefined;
  return [
    '[global]',
    'default=rackboot',
    '',
    '[rackboot]',
    `options=${entry.xenCommandLine}`,
    `kernel=vmlinuz ${entry.kernelCommandLine}`,
    'ramdisk=initrd.gz',
    '',
  ].join('\n');
}

/** Quote a value for a POSIX shell: single quotes, with ' written as '\''. */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/**
 * The settings the runtime fetches once it has a network: everything that
 * must not travel on a kernel command line (the root password hash), and
 * what the runtime applies after boot. Shell-sourceable, one assignment a line.
 */
export function renderRuntimeEnv(plan: BootPlan): string {
  const { profile } = plan;
  const bridges = bridgePlan(plan);
  const storage = storagePlan(plan);
  const values: Array<[string, string]> = [
    ['RACKBOOT_HOSTNAME', profile.hostname],
    // No hash, no line: root stays locked.
    ...(profile.rootPasswordHash ? [['RACKBOOT_ROOT_HASH', profile.rootPasswordHash] as [string, string]] : []),
    ['RACKBOOT_SSH', profile.ssh ? '1' : '0'],
    ['RACKBOOT_TIMEZONE', profile.timezone],
    ['RACKBOOT_PROFILE', profile.source],
    ['RACKBOOT_BUILD', plan.build.id],
    // authorized_keys for root, one key a line; no keys, no line.
    ...(profile.sshAuthorizedKeys.length > 0 ? [['RACKBOOT_SSH_KEYS', profile.sshAuthorizedKeys.join('\n')] as [string, string]] : []),
    ['RACKBOOT_APT_UPDATE', profile.aptUpdate ? '1' : '0'],
    // The guests to start, in order, and the parts they need from this build.
    [
      'RACKBOOT_DOMAINS',
      plan.domains
        .filter((domain) => domain.start)
        .map((domain) => domain.name)
        .join(' '),
    ],
    ['RACKBOOT_GUEST_PARTS', plan.guestParts.join(' ')],
    // The host's own bridges its guests need: see bridgePlan.
    ...(bridges === '' ? [] : [['RACKBOOT_BRIDGES', bridges] as [string, string]]),
    // The host's volume groups and the disks its guests need: see storagePlan.
    ...(storage === '' ? [] : [['RACKBOOT_STORAGE', storage] as [string, string]]),
  ];
  return ['# rackboot runtime settings', ...plan.notes.map((note) => `# ${note}`), ...values.map(([key, value]) => `${key}=${shellQuote(value)}`), ''].join(
    '\n',
  );
}

/**
 * A Debian guest's first stage: the image it fetches, where its root lives
 * (a disk's device, or ram), and a static address for its own fetches (the
 * address is no secret; the root hash and keys come with first-boot).
 */
function debianGuestArgs(plan: BootPlan, domain: PlannedDomain): string[] {
  const network = domain.firstBoot?.network;
  return [
    `rackboot.image=builds/${plan.build.id}/${debianGuestImage}`,
    `rackboot.root=${domain.root ?? 'ram'}`,
    ...(network?.mode === 'static'
      ? [`rackboot.ip=${network.address}/${network.prefixLength}`, ...(network.gateway ? [`rackboot.gw=${network.gateway}`] : [])]
      : []),
  ];
}

/**
 * A Debian guest's first-boot settings (GET /hosts/<mac>/domains/<name>/first-boot,
 * with the guest's own token): shell-sourceable like runtime.env. The
 * guest's first stage writes them into its root when the root is new.
 */
export function renderFirstBoot(plan: BootPlan, domain: PlannedDomain): string {
  const settings = domain.firstBoot ?? defaultFirstBoot(domain.name);
  const { network } = settings;
  const values: Array<[string, string]> = [
    ['RACKBOOT_GUEST_HOSTNAME', settings.hostname],
    ['RACKBOOT_GUEST_NET', network.mode],
    ...(network.mode === 'static'
      ? ([
          ['RACKBOOT_GUEST_IP', `${network.address}/${network.prefixLength}`],
          ['RACKBOOT_GUEST_GW', network.gateway ?? ''],
          ['RACKBOOT_GUEST_DNS', network.dns.join(' ')],
        ] as Array<[string, string]>)
      : []),
    // No hash, no line: root stays locked.
    ...(settings.rootPasswordHash ? [['RACKBOOT_GUEST_ROOT_HASH', settings.rootPasswordHash] as [string, string]] : []),
    ...(settings.sshAuthorizedKeys.length > 0 ? [['RACKBOOT_GUEST_SSH_KEYS', settings.sshAuthorizedKeys.join('\n')] as [string, string]] : []),
  ];
  return [
    `# rackboot: first-boot settings of domain ${domain.name} of ${plan.profile.hostname} (${plan.mac}) from ${plan.profile.source}`,
    ...values.map(([key, value]) => `${key}=${shellQuote(value)}`),
    '',
  ].join('\n');
}

/**
 * The bridges of the host's own that dom0 makes for the guests it starts,
 * when missing, as records joined by "; ":
 *   NAME private      a bridge with no way out: its guests reach each other only
 *   NAME private ADDRESS/N FIRST LAST ALLOW,...   one that dom0 routes: its address, the
 *                     guests' DHCP range, and the rack CIDRs they may reach (NAT)
 *   NAME vlan N       a bridge on VLAN N of the rack (xenbr0.N, tagged on the host's NIC)
 * A bridge the profile says nothing more of must be there already.
 */
export function bridgePlan(plan: BootPlan): string {
  const records = new Map<string, string>();
  for (const domain of plan.domains) {
    if (!domain.start || domain.network === undefined) continue;
    const network = domain.network;
    if (network.kind === 'vlan') records.set(domain.bridge, `${domain.bridge} vlan ${network.vlan}`);
    else if (network.routed === undefined) records.set(domain.bridge, `${domain.bridge} private`);
    else {
      const [address, prefix] = network.routed.subnet.split('/');
      const subnet = new Subnet(address!, Number(prefix));
      // dom0 is the subnet's first host; its guests get addresses from the rest (a /24: .100 to .200).
      const size = subnet.broadcast - subnet.network + 1;
      const [first, last] = size >= 256 ? [subnet.network + 100, subnet.network + 200] : [subnet.network + 2, subnet.broadcast - 1];
      records.set(
        domain.bridge,
        [
          domain.bridge,
          'private',
          `${numberToIpv4(subnet.network + 1)}/${subnet.prefixLength}`,
          numberToIpv4(first),
          numberToIpv4(last),
          network.routed.allow.join(','),
        ].join(' '),
      );
    }
  }
  return [...records.values()].join('; ');
}

/** A disk reference as the runtime reads it: serial:S or id:ID. */
function runtimeDiskRef(ref: DiskRef): string {
  return `${ref.kind}:${ref.value}`;
}

/**
 * What dom0 does with its storage before it starts guests, as records
 * joined by "; ", each a line of words (every value is checked to be one
 * word when the profile is read):
 *   initiator IQN                        this host's iSCSI initiator name
 *   iscsi NAME ADDRESS PORT TARGET USER SECRET   log in to a target (USER and SECRET "-" without CHAP)
 *   vg NAME initialize|keep DISK...      find the volume group (or create it on blank disks)
 *   volume DOMAIN DEVICE VG NAME BYTES   the guest's volume: kept when there, else created with this size
 *   disk DOMAIN DEVICE DISK              a whole disk the guest needs
 *   lun DOMAIN DEVICE SESSION LUN        a LUN of an iSCSI session the guest needs
 *   file DOMAIN DEVICE SOURCE PATH BYTES a file on a filesystem (mounted at fileMountPoint): kept, or created sparse
 *   found SOURCE                         a filesystem holding domain configurations to start
 * (DEVICE, the guest's xvda..., only names the disk in what dom0 reports)
 * DISK is serial:SERIAL or id:BY-ID-NAME. Only the domains dom0 starts.
 * It holds the CHAP secrets: it travels only in runtime.env.
 */
export function storagePlan(plan: BootPlan): string {
  const records: string[] = [];
  const sessions = plan.profile.storage?.iscsi ?? [];
  if (sessions.length > 0) records.push(`initiator ${plan.profile.storage?.initiator ?? iscsiInitiatorName(plan.mac)}`);
  for (const session of sessions) {
    records.push(
      ['iscsi', session.name, session.address, String(session.port), session.target, session.chap?.user ?? '-', session.chap?.secret ?? '-'].join(' '),
    );
  }
  for (const group of plan.profile.storage?.volumeGroups ?? []) {
    records.push(['vg', group.name, group.initialize ? 'initialize' : 'keep', ...group.disks.map(runtimeDiskRef)].join(' '));
  }
  for (const source of plan.profile.storage?.domainConfigs ?? []) records.push(`found ${runtimeConfigSource(source)}`);
  for (const domain of plan.domains) {
    if (!domain.start) continue;
    for (const disk of domain.disks ?? []) {
      if (disk.kind === 'volume') records.push(['volume', domain.name, disk.device, disk.volumeGroup, disk.volume, String(disk.size)].join(' '));
      else if (disk.kind === 'disk') records.push(['disk', domain.name, disk.device, runtimeDiskRef(disk.disk)].join(' '));
      else if (disk.kind === 'iscsi') records.push(['lun', domain.name, disk.device, disk.session, String(disk.lun)].join(' '));
      else records.push(['file', domain.name, disk.device, runtimeConfigSource(disk.filesystem), disk.path, String(disk.size)].join(' '));
    }
  }
  return records.join('; ');
}

/** The hotplug script dom0 runs for guests' disks (builder/runtime/block-rackboot), in /etc/xen/scripts. */
export const blockScript = 'block-rackboot';

/**
 * One guest disk in xl-disk-configuration(5) keyword form; for a volume
 * vg0/web1 on xvda, `phy:/dev/vg0/web1,xvda,w` in the positional form,
 * with rackboot's own hotplug script.
 */
export function xlDiskSpec(disk: DomainDisk, sessions: readonly IscsiSession[] = []): string {
  let target: string;
  if (disk.kind === 'volume') target = `/dev/${disk.volumeGroup}/${disk.volume}`;
  else if (disk.kind === 'disk') target = diskRefPath(disk.disk);
  else if (disk.kind === 'file') target = `${fileMountPoint(disk.filesystem)}/${disk.path}`;
  else {
    const session = sessions.find((candidate) => candidate.name === disk.session);
    if (session === undefined) throw new Error(`iSCSI session ${disk.session} is not in the profile`);
    target = iscsiLunPath(session, disk.lun);
  }
  return `format=raw, vdev=${disk.device}, access=${disk.readOnly ? 'ro' : 'rw'}, script=${blockScript}, target=${target}`;
}

/** Where dom0's runtime puts the parts it downloads for guests (see RACKBOOT_GUEST_PARTS). */
export const guestPartsDir = '/run/rackboot/parts';

/** A string in xl.cfg(5) syntax: double quotes, with backslash escapes as libxlu reads them. */
function xlString(value: string): string {
  return `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

/**
 * The xl domain configuration (xl.cfg(5)) of one guest, as dom0 saves it to
 * /run/rackboot/domains/<name>.cfg and starts it with `xl create`. The
 * guest's kernel learns the server, its parent host and its own token from
 * `extra`, to report "guest-ready" to /hosts/<parent>/events. restart: true makes Xen
 * restart the guest when it crashes or powers off (and dom0's watcher
 * creates it again if it is gone); otherwise it is destroyed.
 */
export function renderDomainConfig(plan: BootPlan, domain: PlannedDomain, endpoints: ServerEndpoints, guestToken?: string): string {
  const extra = [
    'console=hvc0',
    // The console shows the kernel's warnings and worse, not every line of its
    // boot: a guest writing its console faster than dom0's xenconsoled drains
    // it waits, yielding, and every line also crosses dom0's log forwarding.
    // A loglevel= in the profile's kernel arguments comes later and wins.
    'loglevel=5',
    `rackboot.server=${httpBase(endpoints)}`,
    `rackboot.parent=${plan.mac}`,
    `rackboot.domain=${domain.name}`,
    // The guest's own token (host-token.ts), for its reports and its own first-boot settings.
    guestToken ? `rackboot.token=${guestToken}` : '',
    // A Debian guest: the image its first stage fetches, and where its root lives (a disk's device, or ram).
    ...(domain.image === 'debian' ? debianGuestArgs(plan, domain) : []),
    domain.extraArgs.trim(),
  ]
    .filter(Boolean)
    .join(' ');
  const ending = domain.restart ? 'restart' : 'destroy';
  return [
    `# rackboot: domain ${domain.name} of ${plan.profile.hostname} (${plan.mac}) from ${plan.profile.source}`,
    `name = ${xlString(domain.name)}`,
    'type = "pv"',
    `memory = ${domain.memory}`,
    `vcpus = ${domain.vcpus}`,
    `kernel = ${xlString(`${guestPartsDir}/${domain.kernel}`)}`,
    `ramdisk = ${xlString(`${guestPartsDir}/${domain.ramdisk}`)}`,
    `extra = ${xlString(extra)}`,
    `vif = [ 'mac=${domain.mac},bridge=${domain.bridge}' ]`,
    ...(domain.disks === undefined || domain.disks.length === 0
      ? []
      : [`disk = [ ${domain.disks.map((disk) => `'${xlDiskSpec(disk, plan.profile.storage?.iscsi)}'`).join(', ')} ]`]),
    `on_poweroff = "${ending}"`,
    'on_reboot = "restart"',
    `on_crash = "${ending}"`,
    '',
  ].join('\n');
}
