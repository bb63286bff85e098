/**
 * PXE vendor options (option 43 when option 60 is "PXEClient"), from the
 * Intel PXE specification 2.1, section 2.4.
 */
import { encodeSubOptions } from './options.js';

/** PXE sub-option codes inside option 43. */
export const PxeSubOption = {
  discoveryControl: 6, // PXE_DISCOVERY_CONTROL
  bootServers: 8, // PXE_BOOT_SERVERS
  bootMenu: 9, // PXE_BOOT_MENU
  menuPrompt: 10, // PXE_MENU_PROMPT
} as const;

/** Bits of PXE_DISCOVERY_CONTROL. */
export const PxeDiscoveryControl = {
  noBroadcastDiscovery: 1,
  noMulticastDiscovery: 2,
  onlyListedServers: 4,
  /** Boot the file named in this offer, without boot server discovery or a menu. */
  useBootFile: 8,
} as const;

/**
 * Option 43 for a full DHCP server that names the boot file itself: with
 * discovery control 8 the PXE ROM downloads the file at once instead of
 * running boot server discovery (multicast/port 4011) or showing a menu.
 * pixiecore and dnsmasq send the same.
 */
export function pxeVendorOptions(): Buffer {
  return encodeSubOptions([{ code: PxeSubOption.discoveryControl, data: Buffer.from([PxeDiscoveryControl.useBootFile]) }]);
}
