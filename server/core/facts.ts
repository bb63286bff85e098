/**
 * What rackboot knows about a booting machine, extracted once from its first
 * packet or request (the smee "NewInfo" idea). Every later decision reads
 * these facts, never the raw packet.
 */

/** Platforms rackboot renders boot scripts for. */
export type Platform = 'bios' | 'efi64';

/**
 * Client system architecture, DHCP option 93 (RFC 4578 section 2.1, IANA
 * "Processor Architecture Types"). Only the values rackboot acts on are named.
 */
export const ClientArch = {
  biosX86: 0,
  efiIa32: 6,
  efiBc: 7, // EFI byte code; x64 firmware (OVMF, most PCs) sends 7, not 9
  efiX64: 9,
  efiX64Http: 16, // UEFI HTTP Boot, x64
} as const;

export interface ClientFacts {
  /** Normalised MAC: lower case, colon separated. */
  mac: string;
  /** Option 93; undefined when the client sent none (plain DHCP clients). */
  arch: number | undefined;
  platform: Platform;
  /** The firmware is a PXE client: option 60 starts with "PXEClient". */
  isPxe: boolean;
  /** UEFI HTTP Boot client: option 60 starts with "HTTPClient". */
  isHttpBoot: boolean;
  /** Already running iPXE: user class (77) "iPXE" or option 175 present. */
  isIpxe: boolean;
}

/** What a DHCP reply tells the client to load next. */
export type BootFileChoice =
  /**
   * next-server + file name (siaddr/option 66, file/option 67). `server`:
   * the TFTP server to name when it is not this one (`--tftp-server`).
   */
  | { kind: 'tftp'; file: string; server?: string }
  | { kind: 'http'; url: string } // iPXE and UEFI HTTP Boot clients
  | { kind: 'none'; reason: string }; // not a network-boot client, or nothing to boot

/** Derive the platform from option 93. Unknown EFI values count as efi64. */
export function platformOf(arch: number | undefined): Platform {
  if (arch === undefined || arch === ClientArch.biosX86) return 'bios';
  return 'efi64';
}
