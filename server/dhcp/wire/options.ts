/**
 * DHCP options: the code table (names both ways) and one codec per option
 * that rackboot reads or writes. Options without a codec are kept as raw
 * bytes by the packet codec and survive a round trip unchanged.
 *
 * Text options are read and written as latin1, so every byte survives a round
 * trip; trailing NULs are dropped when reading (RFC 2132 section 2 says options
 * are not NUL terminated, but firmware and dnsmasq send them anyway).
 */
import { DhcpDecodeError, DhcpEncodeError } from './errors.js';
import { isIpv4, readIpv4, writeIpv4 } from '../../net/ipv4.js';

export interface OptionCodec<T> {
  /** `code` is only used in error messages. */
  decode(data: Buffer, code: number): T;
  encode(value: T, code: number): Buffer;
}

function lengthError(code: number, length: number, want: string): DhcpDecodeError {
  return new DhcpDecodeError('OPTION_LENGTH', `option ${code} has length ${length}, want ${want}`);
}

function checkInteger(code: number, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new DhcpEncodeError(`option ${code}: ${value} is not an integer in 0-${max}`);
  }
}

function fixedUint(size: 1 | 2 | 4): OptionCodec<number> {
  const max = 2 ** (8 * size) - 1;
  return {
    decode(data, code) {
      if (data.length !== size) throw lengthError(code, data.length, String(size));
      return data.readUIntBE(0, size);
    },
    encode(value, code) {
      checkInteger(code, value, max);
      const buf = Buffer.alloc(size);
      buf.writeUIntBE(value, 0, size);
      return buf;
    },
  };
}

function uintList(size: 1 | 2, minCount: number): OptionCodec<number[]> {
  const max = 2 ** (8 * size) - 1;
  return {
    decode(data, code) {
      if (data.length < size * minCount) throw lengthError(code, data.length, String(size * minCount));
      if (data.length % size !== 0) throw lengthError(code, data.length, `a multiple of ${size}`);
      const values: number[] = [];
      for (let i = 0; i < data.length; i += size) values.push(data.readUIntBE(i, size));
      return values;
    },
    encode(values, code) {
      if (values.length < minCount) throw new DhcpEncodeError(`option ${code}: want at least ${minCount} values`);
      const buf = Buffer.alloc(values.length * size);
      values.forEach((value, i) => {
        checkInteger(code, value, max);
        buf.writeUIntBE(value, i * size, size);
      });
      return buf;
    },
  };
}

function checkAddress(code: number, value: string): void {
  if (!isIpv4(value)) throw new DhcpEncodeError(`option ${code}: '${value}' is not an IPv4 address`);
}

const ipv4: OptionCodec<string> = {
  decode(data, code) {
    if (data.length !== 4) throw lengthError(code, data.length, '4');
    return readIpv4(data, 0);
  },
  encode(value, code) {
    checkAddress(code, value);
    const buf = Buffer.alloc(4);
    writeIpv4(buf, 0, value);
    return buf;
  },
};

const ipv4List: OptionCodec<string[]> = {
  decode(data, code) {
    if (data.length === 0 || data.length % 4 !== 0) throw lengthError(code, data.length, 'a multiple of 4');
    const values: string[] = [];
    for (let i = 0; i < data.length; i += 4) values.push(readIpv4(data, i));
    return values;
  },
  encode(values, code) {
    if (values.length === 0) throw new DhcpEncodeError(`option ${code}: want at least one address`);
    const buf = Buffer.alloc(values.length * 4);
    values.forEach((value, i) => {
      checkAddress(code, value);
      writeIpv4(buf, i * 4, value);
    });
    return buf;
  },
};

function text(options: { nulTerminated: boolean }): OptionCodec<string> {
  return {
    decode(data) {
      let end = data.length;
      while (end > 0 && data[end - 1] === 0) end--;
      return data.toString('latin1', 0, end);
    },
    encode(value, code) {
      // latin1 would silently truncate wider characters; refuse them instead.
      if (/[^\u0000-\u00ff]/.test(value)) throw new DhcpEncodeError(`option ${code}: '${value}' has characters above U+00FF`);
      if (value.endsWith('\0')) throw new DhcpEncodeError(`option ${code}: value ends with NUL`);
      const body = Buffer.from(value, 'latin1');
      return options.nulTerminated ? Buffer.concat([body, Buffer.alloc(1)]) : body;
    },
  };
}

function bytes(minLength: number): OptionCodec<Buffer> {
  return {
    decode(data, code) {
      if (data.length < minLength) throw lengthError(code, data.length, `at least ${minLength}`);
      return Buffer.from(data);
    },
    encode(value, code) {
      if (value.length < minLength) throw new DhcpEncodeError(`option ${code}: want at least ${minLength} bytes`);
      return Buffer.from(value);
    },
  };
}

/** Option 94, RFC 4578 section 2.2: UNDI interface type and version. */
export interface NetworkInterfaceId {
  type: number;
  major: number;
  minor: number;
}

const networkInterfaceId: OptionCodec<NetworkInterfaceId> = {
  decode(data, code) {
    if (data.length !== 3) throw lengthError(code, data.length, '3');
    return { type: data[0]!, major: data[1]!, minor: data[2]! };
  },
  encode(value, code) {
    for (const part of [value.type, value.major, value.minor]) checkInteger(code, part, 255);
    return Buffer.from([value.type, value.major, value.minor]);
  },
};

/** Option 97, RFC 4578 section 2.3: a type byte (0) and a 16-byte machine UUID. */
export interface ClientMachineId {
  type: number;
  id: Buffer;
}

const clientMachineId: OptionCodec<ClientMachineId> = {
  decode(data, code) {
    if (data.length !== 17) throw lengthError(code, data.length, '17');
    return { type: data[0]!, id: Buffer.from(data.subarray(1)) };
  },
  encode(value, code) {
    checkInteger(code, value.type, 255);
    if (value.id.length !== 16) throw new DhcpEncodeError(`option ${code}: machine id has ${value.id.length} bytes, want 16`);
    return Buffer.concat([Buffer.from([value.type]), value.id]);
  },
};

/**
 * Every option with a typed value, by the name used in DhcpOptions.
 * Option 52 (overload) is not here: it is framing, handled by the packet codec.
 */
export const optionCodecs = {
  subnetMask: { code: 1, codec: ipv4 }, // RFC 2132 3.3
  routers: { code: 3, codec: ipv4List }, // RFC 2132 3.5
  dnsServers: { code: 6, codec: ipv4List }, // RFC 2132 3.8
  hostname: { code: 12, codec: text({ nulTerminated: false }) }, // RFC 2132 3.14
  domainName: { code: 15, codec: text({ nulTerminated: false }) }, // RFC 2132 3.17
  broadcastAddress: { code: 28, codec: ipv4 }, // RFC 2132 5.3
  vendorSpecific: { code: 43, codec: bytes(0) }, // RFC 2132 8.4; PXE sub-options, see pxe.ts
  requestedAddress: { code: 50, codec: ipv4 }, // RFC 2132 9.1
  leaseSeconds: { code: 51, codec: fixedUint(4) }, // RFC 2132 9.2
  messageType: { code: 53, codec: fixedUint(1) }, // RFC 2132 9.6
  serverIdentifier: { code: 54, codec: ipv4 }, // RFC 2132 9.7
  parameterRequestList: { code: 55, codec: uintList(1, 0) }, // RFC 2132 9.8
  message: { code: 56, codec: text({ nulTerminated: false }) }, // RFC 2132 9.9
  maxMessageSize: { code: 57, codec: fixedUint(2) }, // RFC 2132 9.10
  renewalSeconds: { code: 58, codec: fixedUint(4) }, // RFC 2132 9.11, T1
  rebindingSeconds: { code: 59, codec: fixedUint(4) }, // RFC 2132 9.12, T2
  vendorClass: { code: 60, codec: text({ nulTerminated: false }) }, // RFC 2132 9.13
  clientIdentifier: { code: 61, codec: bytes(2) }, // RFC 2132 9.14
  tftpServerName: { code: 66, codec: text({ nulTerminated: false }) }, // RFC 2132 9.4
  // Sent NUL terminated: that is what dnsmasq sends, and the iPXE ROM, OVMF
  // PXE and OVMF HTTP Boot in test/fixtures all booted from it.
  bootFileName: { code: 67, codec: text({ nulTerminated: true }) }, // RFC 2132 9.5
  userClass: { code: 77, codec: bytes(0) }, // RFC 3004; iPXE sends a bare "iPXE", see userClasses()
  clientArch: { code: 93, codec: uintList(2, 1) }, // RFC 4578 2.1
  networkInterfaceId: { code: 94, codec: networkInterfaceId }, // RFC 4578 2.2
  clientMachineId: { code: 97, codec: clientMachineId }, // RFC 4578 2.3
  ipxeEncapsulated: { code: 175, codec: bytes(0) }, // iPXE's feature flags, sub-options
} as const;

type OptionTable = typeof optionCodecs;
export type OptionName = keyof OptionTable;
type CodecValue<C> = C extends OptionCodec<infer T> ? T : never;

/**
 * The typed options of a packet. The packet codec writes them in the order
 * their keys were added (decoding adds them in wire order), so a reply can
 * follow the client's parameter request list.
 */
export type DhcpOptions = { [K in OptionName]?: CodecValue<OptionTable[K]['codec']> };

/** Names of options that have no typed codec, for rendering and logs. */
const rawOptionNames: Record<number, string> = {
  0: 'pad',
  2: 'timeOffset',
  4: 'timeServers',
  5: 'nameServers',
  7: 'logServers',
  13: 'bootFileSize',
  17: 'rootPath',
  18: 'extensionsPath',
  22: 'maxReassemblySize',
  23: 'defaultTtl',
  26: 'interfaceMtu',
  40: 'nisDomain',
  41: 'nisServers',
  42: 'ntpServers',
  52: 'overload',
  81: 'clientFqdn',
  119: 'domainSearch',
  121: 'classlessStaticRoutes',
  128: 'pxeVendor128',
  129: 'pxeVendor129',
  130: 'pxeVendor130',
  131: 'pxeVendor131',
  132: 'pxeVendor132',
  133: 'pxeVendor133',
  134: 'pxeVendor134',
  135: 'pxeVendor135',
  255: 'end',
};

const nameByCode = new Map<number, string>(Object.entries(rawOptionNames).map(([code, name]) => [Number(code), name]));
const codeByName = new Map<string, number>();
const typedNameByCode = new Map<number, OptionName>();
for (const [name, { code }] of Object.entries(optionCodecs) as Array<[OptionName, { code: number }]>) {
  nameByCode.set(code, name);
  typedNameByCode.set(code, name);
}
for (const [code, name] of nameByCode) codeByName.set(name, code);

export const optionCode = {
  pad: 0,
  overload: 52,
  end: 255,
} as const;

/** The option's name, or "option<N>" when it has none. */
export function optionNameOf(code: number): string {
  return nameByCode.get(code) ?? `option${code}`;
}

/** The code of a named option (typed or not), or undefined. */
export function optionCodeOf(name: string): number | undefined {
  return codeByName.get(name) ?? (/^option(\d{1,3})$/.test(name) ? Number(name.slice(6)) : undefined);
}

/** The DhcpOptions key for a code that has a typed codec. */
export function typedOptionName(code: number): OptionName | undefined {
  return typedNameByCode.get(code);
}

/** DHCP message types, option 53 (RFC 2132 section 9.6). */
export const MessageType = {
  discover: 1,
  offer: 2,
  request: 3,
  decline: 4,
  ack: 5,
  nak: 6,
  release: 7,
  inform: 8,
} as const;

const messageTypeNames = ['', 'DHCPDISCOVER', 'DHCPOFFER', 'DHCPREQUEST', 'DHCPDECLINE', 'DHCPACK', 'DHCPNAK', 'DHCPRELEASE', 'DHCPINFORM'];

/** "DHCPDISCOVER" for 1, and so on; "DHCP<n>" for types rackboot does not know. */
export function messageTypeName(type: number | undefined): string {
  if (type === undefined) return 'BOOTP';
  return messageTypeNames[type] || `DHCP${type}`;
}

/** A TLV sub-option inside an encapsulating option (43, 175). */
export interface SubOption {
  code: number;
  data: Buffer;
}

/**
 * Sub-options in the RFC 2132 section 8.4 layout (code, length, data; 0 pads,
 * 255 ends). Throws on a sub-option that overruns its parent.
 */
export function decodeSubOptions(data: Buffer, parentCode: number): SubOption[] {
  const result: SubOption[] = [];
  let i = 0;
  while (i < data.length) {
    const code = data[i]!;
    if (code === optionCode.end) break;
    if (code === optionCode.pad) {
      i++;
      continue;
    }
    const length = data[i + 1];
    if (length === undefined || i + 2 + length > data.length) {
      throw new DhcpDecodeError('OPTION_VALUE', `option ${parentCode} sub-option ${code} overruns the option`);
    }
    result.push({ code, data: Buffer.from(data.subarray(i + 2, i + 2 + length)) });
    i += 2 + length;
  }
  return result;
}

/** Encodes sub-options followed by the 255 end marker. */
export function encodeSubOptions(subOptions: SubOption[]): Buffer {
  const parts: Buffer[] = [];
  for (const { code, data } of subOptions) {
    if (data.length > 255) throw new DhcpEncodeError(`sub-option ${code} is ${data.length} bytes, max 255`);
    parts.push(Buffer.from([code, data.length]), data);
  }
  parts.push(Buffer.from([optionCode.end]));
  return Buffer.concat(parts);
}

/**
 * The user classes in option 77. RFC 3004 says each class is length-prefixed,
 * but iPXE (and most firmware) sends one bare string such as "iPXE"; a value
 * that does not parse as RFC 3004 instances is taken as one bare class.
 */
export function userClasses(data: Buffer): string[] {
  const classes: string[] = [];
  let i = 0;
  while (i < data.length) {
    const length = data[i]!;
    if (length === 0 || i + 1 + length > data.length) return [data.toString('latin1')];
    classes.push(data.toString('latin1', i + 1, i + 1 + length));
    i += 1 + length;
  }
  return classes;
}
