/**
 * The DHCP packet codec (RFC 2131 section 2, RFC 2132, RFC 3396): pure
 * functions on buffers, no I/O. decodePacket throws DhcpDecodeError with the
 * reason; encodePacket writes what it is given, in the given option order.
 */
import { DhcpDecodeError, DhcpEncodeError } from './errors.js';
import { isIpv4, readIpv4, writeIpv4 } from '../../net/ipv4.js';
import { optionCode, optionCodecs, typedOptionName, type DhcpOptions, type OptionCodec, type OptionName } from './options.js';

/** op, RFC 2131 section 2. */
export const BootOp = { request: 1, reply: 2 } as const;
export type BootOp = (typeof BootOp)[keyof typeof BootOp];

/** htype for Ethernet (RFC 1700 "Hardware Type"). */
export const hardwareTypeEthernet = 1;

export interface DhcpPacket {
  op: BootOp; // op
  hardwareType: number; // htype
  /** chaddr, the first hlen bytes (hlen is its length). */
  hardwareAddress: Buffer;
  hops: number; // hops
  transactionId: number; // xid
  secondsElapsed: number; // secs
  /** The broadcast bit of flags (RFC 2131 figure 2); the other bits must be zero and are dropped. */
  broadcast: boolean;
  clientAddress: string; // ciaddr
  yourAddress: string; // yiaddr
  /** siaddr: the "next server" a client loads its boot file from. */
  serverAddress: string;
  relayAddress: string; // giaddr
  serverName: string; // sname
  bootFile: string; // file
  options: DhcpOptions;
  /** Options with no typed codec, by code; the value is every instance concatenated (RFC 3396). */
  rawOptions?: Map<number, Buffer>;
}

/** A client's request (BOOTREQUEST, Ethernet): every field empty but those given. */
export function clientPacket(fields: Partial<DhcpPacket> & Pick<DhcpPacket, 'hardwareAddress'>): DhcpPacket {
  return {
    op: 1,
    hardwareType: hardwareTypeEthernet,
    hops: 0,
    transactionId: 0,
    secondsElapsed: 0,
    broadcast: false,
    clientAddress: '0.0.0.0',
    yourAddress: '0.0.0.0',
    serverAddress: '0.0.0.0',
    relayAddress: '0.0.0.0',
    serverName: '',
    bootFile: '',
    options: {},
    ...fields,
  };
}

export const magicCookie = 0x63825363;
const headerLength = 236;
const optionsStart = headerLength + 4;
/** RFC 1542 section 3.1.1 (BOOTP's 64-byte vendor field); some PXE ROMs drop shorter replies. */
export const minimumPacketLength = 300;

const field = {
  chaddr: { offset: 28, length: 16 },
  sname: { offset: 44, length: 64 },
  file: { offset: 108, length: 128 },
} as const;

type OptionField = 'options' | 'file' | 'sname';

interface OptionInstance {
  code: number;
  data: Buffer;
}

/**
 * Reads the code/length/value instances of one field. PAD bytes are skipped;
 * END or the end of the field stops the scan (a missing END is tolerated, as
 * most servers do, since the field's end is known anyway).
 */
function scanOptions(buf: Buffer, start: number, end: number, where: OptionField, into: OptionInstance[]): void {
  let i = start;
  while (i < end) {
    const code = buf[i]!;
    if (code === optionCode.end) return;
    if (code === optionCode.pad) {
      i++;
      continue;
    }
    if (i + 1 >= end) {
      throw new DhcpDecodeError('OPTION_NO_LENGTH', `option ${code} at offset ${i} has no length byte in the ${where} field`);
    }
    const length = buf[i + 1]!;
    const left = end - (i + 2);
    if (length > left) {
      throw new DhcpDecodeError('OPTION_OVERRUN', `option ${code} at offset ${i} has length ${length} but only ${left} bytes are left in the ${where} field`);
    }
    if (code === optionCode.overload && where !== 'options') {
      throw new DhcpDecodeError('BAD_OVERLOAD', `option 52 at offset ${i} is inside the ${where} field`);
    }
    into.push({ code, data: buf.subarray(i + 2, i + 2 + length) });
    i += 2 + length;
  }
}

function readText(buf: Buffer, offset: number, length: number): string {
  const bytes = buf.subarray(offset, offset + length);
  const nul = bytes.indexOf(0);
  return bytes.toString('latin1', 0, nul === -1 ? length : nul);
}

export function decodePacket(buf: Buffer): DhcpPacket {
  if (buf.length < optionsStart) {
    throw new DhcpDecodeError('TRUNCATED_HEADER', `truncated header: ${buf.length} bytes, want at least ${optionsStart}`);
  }
  const op = buf[0]!;
  if (op !== BootOp.request && op !== BootOp.reply) {
    throw new DhcpDecodeError('BAD_OP', `op ${op} is neither 1 (BOOTREQUEST) nor 2 (BOOTREPLY)`);
  }
  const hlen = buf[2]!;
  if (hlen > field.chaddr.length) {
    throw new DhcpDecodeError('BAD_HLEN', `hlen ${hlen} is larger than the 16-byte chaddr field`);
  }
  const cookie = buf.readUInt32BE(headerLength);
  if (cookie !== magicCookie) {
    throw new DhcpDecodeError('BAD_MAGIC_COOKIE', `bad magic cookie 0x${cookie.toString(16).padStart(8, '0')}, want 0x${magicCookie.toString(16)}`);
  }

  const instances: OptionInstance[] = [];
  scanOptions(buf, optionsStart, buf.length, 'options', instances);

  // Option overload (RFC 2132 section 9.3): the file and/or sname fields hold
  // more options. RFC 3396 section 7 fixes the order: options, file, sname.
  let overload = 0;
  const overloadInstances = instances.filter((o) => o.code === optionCode.overload);
  if (overloadInstances.length > 0) {
    const total = overloadInstances.reduce((n, o) => n + o.data.length, 0);
    if (total !== 1) throw new DhcpDecodeError('BAD_OVERLOAD', `option 52 has length ${total}, want 1`);
    overload = overloadInstances[0]!.data[0]!;
    if (overload < 1 || overload > 3) {
      throw new DhcpDecodeError('BAD_OVERLOAD', `option 52 has value ${overload}, want 1 (file), 2 (sname) or 3 (both)`);
    }
    if (overload & 1) scanOptions(buf, field.file.offset, field.file.offset + field.file.length, 'file', instances);
    if (overload & 2) scanOptions(buf, field.sname.offset, field.sname.offset + field.sname.length, 'sname', instances);
  }

  // Long options arrive as several instances of one code, concatenated in order (RFC 3396).
  const byCode = new Map<number, Buffer[]>();
  for (const { code, data } of instances) {
    if (code === optionCode.overload) continue;
    const parts = byCode.get(code);
    if (parts) parts.push(data);
    else byCode.set(code, [data]);
  }

  const options: DhcpOptions = {};
  const rawOptions = new Map<number, Buffer>();
  for (const [code, parts] of byCode) {
    const data = Buffer.concat(parts);
    const name = typedOptionName(code);
    if (name === undefined) rawOptions.set(code, data);
    else setOption(options, name, (optionCodecs[name].codec as OptionCodec<unknown>).decode(data, code));
  }

  const packet: DhcpPacket = {
    op,
    hardwareType: buf[1]!,
    hardwareAddress: Buffer.from(buf.subarray(field.chaddr.offset, field.chaddr.offset + hlen)),
    hops: buf[3]!,
    transactionId: buf.readUInt32BE(4),
    secondsElapsed: buf.readUInt16BE(8),
    broadcast: (buf.readUInt16BE(10) & 0x8000) !== 0,
    clientAddress: readIpv4(buf, 12),
    yourAddress: readIpv4(buf, 16),
    serverAddress: readIpv4(buf, 20),
    relayAddress: readIpv4(buf, 24),
    serverName: overload & 2 ? '' : readText(buf, field.sname.offset, field.sname.length),
    bootFile: overload & 1 ? '' : readText(buf, field.file.offset, field.file.length),
    options,
  };
  if (rawOptions.size > 0) packet.rawOptions = rawOptions;
  return packet;
}

function setOption(options: DhcpOptions, name: OptionName, value: unknown): void {
  (options as Record<string, unknown>)[name] = value;
}

/** One option's value, encoded by its codec (or raw), before it is split into instances. */
interface EncodedOption {
  code: number;
  data: Buffer;
}

/**
 * The packet's options, encoded, in the order the options object holds
 * them, then the raw ones. Written into the packet by writeOptions, which
 * adds each instance's code and length in place (no buffer per instance).
 */
function encodeOptions(packet: DhcpPacket): EncodedOption[] {
  const encoded: EncodedOption[] = [];
  const options = packet.options as Record<string, unknown>;
  for (const name in options) {
    const value = options[name];
    if (value === undefined) continue;
    const entry = optionCodecs[name as OptionName];
    if (entry === undefined) throw new DhcpEncodeError(`unknown option name '${name}'`);
    encoded.push({ code: entry.code, data: (entry.codec as OptionCodec<unknown>).encode(value, entry.code) });
  }
  for (const [code, data] of packet.rawOptions ?? []) {
    if (!Number.isInteger(code) || code < 1 || code > 254 || code === optionCode.overload) {
      throw new DhcpEncodeError(`raw option code ${code} cannot be encoded`);
    }
    if (typedOptionName(code) !== undefined) throw new DhcpEncodeError(`raw option ${code} has a typed codec; set it in options`);
    encoded.push({ code, data });
  }
  return encoded;
}

/** Bytes the options take on the wire: code/length/value instances of at most 255 bytes each (RFC 3396), then END. */
function optionsLength(options: readonly EncodedOption[]): number {
  let length = 1;
  for (const { data } of options) length += data.length === 0 ? 2 : data.length + 2 * Math.ceil(data.length / 255);
  return length;
}

/** Writes the options' instances and END at `offset`. */
function writeOptions(buf: Buffer, offset: number, options: readonly EncodedOption[]): void {
  let at = offset;
  for (const { code, data } of options) {
    if (data.length === 0) {
      buf[at++] = code;
      buf[at++] = 0;
      continue;
    }
    for (let i = 0; i < data.length; i += 255) {
      const piece = Math.min(255, data.length - i);
      buf[at++] = code;
      buf[at++] = piece;
      data.copy(buf, at, i, i + piece);
      at += piece;
    }
  }
  buf[at] = optionCode.end;
}

/** Bytes encodePacket will produce for this packet. */
export function encodingLength(packet: DhcpPacket): number {
  return Math.max(minimumPacketLength, optionsStart + optionsLength(encodeOptions(packet)));
}

function checkField(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) throw new DhcpEncodeError(`${name} ${value} is not an integer in 0-${max}`);
}

function checkAddress(name: string, value: string): void {
  if (!isIpv4(value)) throw new DhcpEncodeError(`${name} '${value}' is not an IPv4 address`);
}

function writeText(buf: Buffer, name: string, value: string, offset: number, length: number): void {
  const bytes = Buffer.from(value, 'latin1');
  // A value filling the whole field has no terminating NUL; decodePacket reads
  // it back the same, so it is allowed (replies keep a NUL, see decide/boot-options.ts).
  if (bytes.length > length || /[^\u0000-\u00ff]/.test(value) || bytes.includes(0)) {
    throw new DhcpEncodeError(`${name} must be latin1 without NUL and at most ${length} bytes: '${value}'`);
  }
  bytes.copy(buf, offset);
}

/** The packet on the wire, padded with PAD to at least 300 bytes. Options are never overloaded. */
export function encodePacket(packet: DhcpPacket): Buffer {
  if (packet.op !== BootOp.request && packet.op !== BootOp.reply) throw new DhcpEncodeError(`op ${String(packet.op)} is not 1 or 2`);
  checkField('htype', packet.hardwareType, 0xff);
  checkField('hops', packet.hops, 0xff);
  checkField('xid', packet.transactionId, 0xffffffff);
  checkField('secs', packet.secondsElapsed, 0xffff);
  if (packet.hardwareAddress.length > field.chaddr.length) {
    throw new DhcpEncodeError(`chaddr is ${packet.hardwareAddress.length} bytes, max ${field.chaddr.length}`);
  }
  const addresses = [
    ['ciaddr', packet.clientAddress, 12],
    ['yiaddr', packet.yourAddress, 16],
    ['siaddr', packet.serverAddress, 20],
    ['giaddr', packet.relayAddress, 24],
  ] as const;
  for (const [name, value] of addresses) checkAddress(name, value);

  const options = encodeOptions(packet);
  const buf = Buffer.alloc(Math.max(minimumPacketLength, optionsStart + optionsLength(options)));
  buf[0] = packet.op;
  buf[1] = packet.hardwareType;
  buf[2] = packet.hardwareAddress.length;
  buf[3] = packet.hops;
  buf.writeUInt32BE(packet.transactionId, 4);
  buf.writeUInt16BE(packet.secondsElapsed, 8);
  buf.writeUInt16BE(packet.broadcast ? 0x8000 : 0, 10);
  for (const [, value, offset] of addresses) writeIpv4(buf, offset, value);
  packet.hardwareAddress.copy(buf, field.chaddr.offset);
  writeText(buf, 'sname', packet.serverName, field.sname.offset, field.sname.length);
  writeText(buf, 'file', packet.bootFile, field.file.offset, field.file.length);
  buf.writeUInt32BE(magicCookie, headerLength);
  writeOptions(buf, optionsStart, options);
  return buf;
}
