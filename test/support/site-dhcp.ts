import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConsoleWatcher } from '../../server/demo/qemu.js';
import { Netns } from './netns.js';

/** The site DHCP server's address on the test wire. */
export const siteDhcpAddress = '198.18.0.2';
export const sitePoolStart = '198.18.0.100';
export const sitePoolEnd = '198.18.0.150';
const dnsmasqPath = '/usr/sbin/dnsmasq';

export interface SiteDhcp {
  ns: Netns;
  dnsmasq: ConsoleWatcher;
  close(): Promise<void>;
}

/**
 * A bridge br0 at `bridgeCidr` in `wire`, holding its tap0 (which must
 * exist), both up. br0's MAC is set, as a server's NIC has one: a bridge
 * left to choose takes its ports' lowest MAC, so a port joining later can
 * change it under the hosts that cached the old one in their ARP tables.
 */
export function bridgeTap(wire: Netns, bridgeCidr: string): void {
  wire.ip('link', 'add', 'br0', 'address', '02:72:62:00:00:01', 'type', 'bridge');
  wire.ip('addr', 'add', bridgeCidr, 'dev', 'br0');
  wire.ip('link', 'set', 'br0', 'up');
  wire.ip('link', 'set', 'tap0', 'master', 'br0');
  wire.ip('link', 'set', 'tap0', 'up');
}

/**
 * A wire for proxyDHCP tests: in `wire` (the namespace that holds the
 * machines' tap0), a bridge br0 joins tap0 and a veth to a namespace of its
 * own where dnsmasq is the site's DHCP server, handing out addresses only.
 * dnsmasq and rackboot both want 0.0.0.0:67; on separate hosts (namespaces)
 * each has its own port 67, as on a real network. rackboot serves on br0
 * (at `bridgeCidr`), which returns the bridge's name.
 */
export async function startSiteDhcp(wire: Netns, bridgeCidr: string): Promise<SiteDhcp & { bridge: string }> {
  bridgeTap(wire, bridgeCidr);
  return { ...(await attachSiteDhcp(wire)), bridge: 'br0' };
}

/** dnsmasq as the site's DHCP server, in a namespace of its own on `wire`'s existing bridge br0. */
export async function attachSiteDhcp(wire: Netns): Promise<SiteDhcp> {
  try {
    await access(dnsmasqPath);
  } catch {
    throw new Error(`${dnsmasqPath} is missing: install dnsmasq-base (builder/install-deps.sh does)`);
  }
  const ns = Netns.create('rbsite');
  const work = await mkdtemp(path.join(tmpdir(), 'rackboot-site-'));
  try {
    wire.linkTo(ns, { device: 'site0' }, { device: 'site1', cidr: `${siteDhcpAddress}/24` });
    wire.ip('link', 'set', 'site0', 'master', 'br0');
    const child = ns.spawn(dnsmasqPath, [
      '--no-daemon',
      '--conf-file=/dev/null',
      '--no-resolv',
      '--no-hosts',
      '--port=0',
      '--no-ping',
      '--interface=site1',
      '--bind-interfaces',
      '--user=root',
      '--pid-file=',
      `--dhcp-range=${sitePoolStart},${sitePoolEnd},255.255.255.0,1h`,
      `--dhcp-leasefile=${path.join(work, 'leases')}`,
      '--log-dhcp',
      '--log-facility=-',
    ]);
    const dnsmasq = new ConsoleWatcher(child);
    await dnsmasq.waitFor(/DHCP, IP range/, 10_000, 'dnsmasq to start');
    return {
      ns,
      dnsmasq,
      close: async () => {
        child.kill('SIGTERM');
        ns.delete();
        await rm(work, { recursive: true, force: true });
      },
    };
  } catch (error) {
    ns.delete();
    await rm(work, { recursive: true, force: true });
    throw error;
  }
}
