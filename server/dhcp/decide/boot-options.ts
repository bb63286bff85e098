/**
 * The part of a reply that tells a client what to boot. Shared by the full
 * DHCP server and proxyDHCP (proxy.ts), which differ only in whether they
 * also hand out an address.
 */
import type { BootFileChoice, ClientFacts } from '../../core/facts.js';
import { anyAddress } from '../../net/ipv4.js';
import type { DhcpOptions } from '../wire/options.js';
import type { DhcpPacket } from '../wire/packet.js';
import { pxeVendorOptions } from '../wire/pxe.js';

export interface BootReplyFields {
  /** siaddr: the TFTP server ("next server"). */
  nextServer: string;
  /** The header's file field; empty when the name does not fit. */
  bootFile: string;
  options: DhcpOptions;
}

/** 127 bytes leave room for a NUL in the 128-byte file field (firmware reads it as a C string). */
const fileFieldMax = 127;

function fitsFileField(name: string): boolean {
  return Buffer.byteLength(name, 'latin1') <= fileFieldMax;
}

/**
 * Boot fields for a reply to `request`, or undefined when there is nothing
 * to boot (the reply is then a plain DHCP reply, and a PXE ROM that gets it
 * waits for another offer and then gives up: the intended result).
 *
 * In 'proxy' mode (a ProxyDHCPOFFER or the ACK on port 4011, PXE 2.1
 * section 2.2.5) three things differ, because the reply is recognised as
 * boot information only by its markers:
 * - siaddr is always our address: iPXE uses a proxy offer without asking
 *   again only when it has both siaddr and a boot file name, and UEFI PXE
 *   sends its port-4011 request to siaddr (EDK2 PxeBcRetryBinlOffer).
 * - option 60 is always set, "PXEClient" unless the client is an HTTP Boot
 *   client: iPXE and PXE ROMs take an offer without an address as a proxy
 *   offer only with it, even an iPXE that sent no option 60 itself.
 * - option 43 goes only to BIOS PXE ROMs and iPXE. EDK2's UEFI PXE files a
 *   proxy offer with PXE discovery options as a "PXE10" offer, and the
 *   PxeBcCacheDhcp4Offer read for this caches one only when it already holds
 *   one, so drops it; without option 43 it is a "BINL" offer, and the
 *   firmware asks for the boot file again on port 4011 (pixiecore and
 *   dnsmasq's proxy mode leave option 43 out for UEFI in the same way).
 */
export function bootReplyFields(
  request: DhcpPacket,
  facts: ClientFacts,
  choice: BootFileChoice,
  serverAddress: string,
  mode: 'full' | 'proxy' = 'full',
): BootReplyFields | undefined {
  if (choice.kind === 'none') return undefined;
  const proxy = mode === 'proxy';
  const options: DhcpOptions = {};
  let nextServer = proxy ? serverAddress : anyAddress;
  let name: string;
  if (choice.kind === 'tftp') {
    name = choice.file;
    // This server, unless the choice names another TFTP server.
    nextServer = choice.server ?? serverAddress;
    // Option 66 as well as siaddr: UEFI PXE reads siaddr, some BIOS ROMs and
    // iPXE prefer option 66; both name the same server.
    options.tftpServerName = nextServer;
  } else {
    name = choice.url;
  }
  // Both the file field and option 67: old PXE ROMs read only the field,
  // UEFI HTTP Boot and iPXE read the option (and URLs can be too long for the field).
  options.bootFileName = name;

  if (facts.isHttpBoot) {
    // UEFI HTTP Boot clients drop offers without "HTTPClient" in option 60
    // (UEFI specification, HTTP Boot; seen with OVMF, see FIELD-NOTES).
    options.vendorClass = 'HTTPClient';
  } else if (facts.isPxe || proxy) {
    // PXE 2.1: a PXE ROM only takes boot information from an offer with
    // option 60 "PXEClient"; option 43 sub-option 6 = 8 makes it boot the
    // named file instead of running boot server discovery.
    options.vendorClass = 'PXEClient';
    const uefiPxe = !facts.isIpxe && facts.platform !== 'bios';
    if (!(proxy && uefiPxe)) options.vendorSpecific = pxeVendorOptions();
  }
  if ((facts.isPxe || facts.isHttpBoot || proxy) && request.options.clientMachineId !== undefined) {
    // PXE ROMs expect their machine UUID mirrored back; some ignore offers
    // that lack it (pixiecore mirrors it for the same reason).
    options.clientMachineId = request.options.clientMachineId;
  }
  return { nextServer, bootFile: fitsFileField(name) ? name : '', options };
}
