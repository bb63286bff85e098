import { Opcode } from './codes.js';

/**
 * TFTP packet codec (RFC 1350 section 5, RFC 2347 for options and OACK).
 * Pure: bytes in, plain objects out, and back. No sockets, files or clock.
 *
 * Strings travel as bytes. The codec maps them one byte to one character
 * (Latin-1), so a file name with 0xFF bytes in it decodes, re-encodes to the
 * same bytes, and reaches `normaliseRequestPath`, which decides what it means.
 * RFC 2347 makes option names and values case-insensitive, and RFC 1350 the
 * mode: the decoder lower-cases all three, so later code compares plainly.
 */

/** One RFC 2347 option, in the order the sender wrote it. */
export interface TftpOption {
  /** Lower case after decoding. */
  name: string;
  /** Lower case after decoding. */
  value: string;
}

/** RRQ (opcode 1) and WRQ (opcode 2). */
export interface TransferRequest {
  kind: 'readRequest' | 'writeRequest';
  /** The requested name as sent, one character per byte; see normaliseRequestPath. */
  fileName: string;
  /** "octet", "netascii" or "mail" from a sane client; lower case after decoding. */
  mode: string;
  options: TftpOption[];
}

/** DATA (opcode 3). */
export interface DataPacket {
  kind: 'data';
  /** 16-bit block number; wraps from 65535 to 0 on long transfers. */
  block: number;
  data: Buffer;
}

/** ACK (opcode 4). */
export interface AcknowledgementPacket {
  kind: 'acknowledgement';
  block: number;
}

/** ERROR (opcode 5). */
export interface ErrorPacket {
  kind: 'error';
  /** One of ErrorCode, or whatever number the peer sent. */
  code: number;
  message: string;
}

/** OACK (opcode 6, RFC 2347). */
export interface OptionAcknowledgementPacket {
  kind: 'optionAcknowledgement';
  options: TftpOption[];
}

export type TftpPacket = TransferRequest | DataPacket | AcknowledgementPacket | ErrorPacket | OptionAcknowledgementPacket;

/** Raised by decodePacket; the message says what is wrong, with the numbers. */
export class MalformedPacketError extends Error {
  override readonly name = 'MalformedPacketError';
}

export type DecodeResult = { kind: 'packet'; packet: TftpPacket } | { kind: 'malformed'; reason: string };

const requestLabel = { readRequest: 'RRQ', writeRequest: 'WRQ' } as const;

export function decodePacket(bytes: Uint8Array): TftpPacket {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 2) {
    throw new MalformedPacketError(`packet has ${buf.length} byte${buf.length === 1 ? '' : 's'}, want at least 2 for the opcode`);
  }
  const opcode = buf.readUInt16BE(0);
  switch (opcode) {
    case Opcode.readRequest:
      return decodeRequest(buf, 'readRequest');
    case Opcode.writeRequest:
      return decodeRequest(buf, 'writeRequest');
    case Opcode.data:
      if (buf.length < 4) throw new MalformedPacketError(`DATA packet has ${buf.length} bytes, want at least 4`);
      return { kind: 'data', block: buf.readUInt16BE(2), data: buf.subarray(4) };
    case Opcode.acknowledgement:
      // Bytes after the block number are ignored, as tftp-hpa does: some
      // embedded stacks pad small datagrams.
      if (buf.length < 4) throw new MalformedPacketError(`ACK packet has ${buf.length} bytes, want 4`);
      return { kind: 'acknowledgement', block: buf.readUInt16BE(2) };
    case Opcode.error:
      return decodeError(buf);
    case Opcode.optionAcknowledgement: {
      const options = decodeOptions(buf, 2, 'OACK');
      if (options.length === 0) throw new MalformedPacketError('OACK carries no options');
      return { kind: 'optionAcknowledgement', options };
    }
    default:
      throw new MalformedPacketError(`unknown opcode ${opcode}`);
  }
}

/** decodePacket without the exception, for the server's receive path. */
export function tryDecodePacket(bytes: Uint8Array): DecodeResult {
  try {
    return { kind: 'packet', packet: decodePacket(bytes) };
  } catch (err) {
    if (err instanceof MalformedPacketError) return { kind: 'malformed', reason: err.message };
    throw err;
  }
}

function decodeRequest(buf: Buffer, kind: TransferRequest['kind']): TransferRequest {
  const label = requestLabel[kind];
  const nameEnd = buf.indexOf(0, 2);
  if (nameEnd < 0) throw new MalformedPacketError(`${label} file name is not terminated by a NUL byte`);
  if (nameEnd === 2) throw new MalformedPacketError(`${label} has an empty file name`);
  const fileName = buf.toString('latin1', 2, nameEnd);

  // Some old PXE ROMs copy the boot file name out of a fixed-size, NUL padded
  // field and send "name\0\0octet\0": more than one NUL after the name. Skip
  // the run so the mode is still found (dnsmasq and tftp-hpa accept these).
  let modeStart = nameEnd + 1;
  while (modeStart < buf.length && buf[modeStart] === 0) modeStart += 1;
  if (modeStart >= buf.length) throw new MalformedPacketError(`${label} for "${fileName}" has no transfer mode`);
  const modeEnd = buf.indexOf(0, modeStart);
  if (modeEnd < 0) throw new MalformedPacketError(`${label} transfer mode is not terminated by a NUL byte`);
  const mode = buf.toString('latin1', modeStart, modeEnd).toLowerCase();
  const options = decodeOptions(buf, modeEnd + 1, label);
  return { kind, fileName, mode, options };
}

/**
 * RFC 2347 options: "name\0value\0" pairs up to the end of the packet.
 * Trailing NUL bytes after the last pair are padding, not an empty option:
 * some firmware pads requests to a fixed length.
 */
function decodeOptions(buf: Buffer, start: number, label: string): TftpOption[] {
  const options: TftpOption[] = [];
  let offset = start;
  while (offset < buf.length) {
    if (buf[offset] === 0) {
      if (buf.subarray(offset).every((byte) => byte === 0)) break;
      throw new MalformedPacketError(`${label} option ${options.length + 1} at byte ${offset} has an empty name`);
    }
    const nameEnd = buf.indexOf(0, offset);
    if (nameEnd < 0) {
      throw new MalformedPacketError(`${label} option name at byte ${offset} is not terminated by a NUL byte`);
    }
    const name = buf.toString('latin1', offset, nameEnd).toLowerCase();
    if (nameEnd + 1 >= buf.length) throw new MalformedPacketError(`${label} option "${name}" has no value`);
    const valueEnd = buf.indexOf(0, nameEnd + 1);
    if (valueEnd < 0) {
      throw new MalformedPacketError(`${label} option "${name}" value is not terminated by a NUL byte`);
    }
    const value = buf.toString('latin1', nameEnd + 1, valueEnd).toLowerCase();
    options.push({ name, value });
    offset = valueEnd + 1;
  }
  return options;
}

function decodeError(buf: Buffer): ErrorPacket {
  if (buf.length < 4) throw new MalformedPacketError(`ERROR packet has ${buf.length} bytes, want at least 4`);
  const code = buf.readUInt16BE(2);
  // A missing terminating NUL is tolerated: the packet ends the transfer
  // either way, and what matters is that we notice the peer gave up.
  const end = buf.indexOf(0, 4);
  const message = buf.toString('latin1', 4, end < 0 ? buf.length : end);
  return { kind: 'error', code, message };
}

/** Bytes encodePacket will produce for this packet. */
export function encodingLength(packet: TftpPacket): number {
  switch (packet.kind) {
    case 'readRequest':
    case 'writeRequest':
      return 2 + packet.fileName.length + 1 + packet.mode.length + 1 + optionsLength(packet.options);
    case 'data':
      return 4 + packet.data.length;
    case 'acknowledgement':
      return 4;
    case 'error':
      return 4 + packet.message.length + 1;
    case 'optionAcknowledgement':
      return 2 + optionsLength(packet.options);
  }
}

function optionsLength(options: readonly TftpOption[]): number {
  return options.reduce((total, option) => total + option.name.length + 1 + option.value.length + 1, 0);
}

/**
 * Encode a packet. Throws RangeError for a packet that cannot be put on the
 * wire (a NUL inside a string, a character above 0xFF, a block number out of
 * 16 bits): that is a bug in the caller, not a peer's fault.
 */
export function encodePacket(packet: TftpPacket): Buffer {
  const buf = Buffer.alloc(encodingLength(packet));
  let offset = 0;
  const writeString = (text: string, what: string): void => {
    checkString(text, what);
    offset += buf.write(text, offset, 'latin1');
    buf[offset] = 0;
    offset += 1;
  };
  switch (packet.kind) {
    case 'readRequest':
    case 'writeRequest':
      buf.writeUInt16BE(packet.kind === 'readRequest' ? Opcode.readRequest : Opcode.writeRequest, 0);
      offset = 2;
      if (packet.fileName.length === 0) throw new RangeError('file name is empty');
      writeString(packet.fileName, 'file name');
      writeString(packet.mode, 'mode');
      for (const option of packet.options) {
        writeString(option.name, `option name "${option.name}"`);
        writeString(option.value, `option "${option.name}" value`);
      }
      return buf;
    case 'data':
      buf.writeUInt16BE(Opcode.data, 0);
      writeUInt16(buf, packet.block, 2, 'block number');
      buf.set(packet.data, 4);
      return buf;
    case 'acknowledgement':
      buf.writeUInt16BE(Opcode.acknowledgement, 0);
      writeUInt16(buf, packet.block, 2, 'block number');
      return buf;
    case 'error':
      buf.writeUInt16BE(Opcode.error, 0);
      writeUInt16(buf, packet.code, 2, 'error code');
      offset = 4;
      writeString(packet.message, 'error message');
      return buf;
    case 'optionAcknowledgement':
      buf.writeUInt16BE(Opcode.optionAcknowledgement, 0);
      offset = 2;
      for (const option of packet.options) {
        writeString(option.name, `option name "${option.name}"`);
        writeString(option.value, `option "${option.name}" value`);
      }
      return buf;
  }
}

/**
 * Header of a DATA packet, for senders that pass header and payload to the
 * socket separately (no copy of the block).
 */
export function encodeDataHeader(block: number): Buffer {
  if (!Number.isInteger(block) || block < 0 || block > 0xffff) throw new RangeError(`block number ${block} does not fit in 16 bits`);
  // One per DATA packet: a slice of Node's shared pool, all four bytes written.
  const header = Buffer.allocUnsafe(4);
  header[0] = 0;
  header[1] = Opcode.data;
  header[2] = block >>> 8;
  header[3] = block & 0xff;
  return header;
}

function writeUInt16(buf: Buffer, value: number, offset: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff) {
    throw new RangeError(`${what} ${value} does not fit in 16 bits`);
  }
  buf.writeUInt16BE(value, offset);
}

function checkString(text: string, what: string): void {
  for (let i = 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if (code === 0) throw new RangeError(`${what} contains a NUL byte at ${i}`);
    if (code > 0xff) throw new RangeError(`${what} has a character above 0xFF at ${i}; encode it to bytes first`);
  }
}

/** A short description of a packet for debug logs ("ACK 17", "RRQ ipxe.efi octet"). */
export function describePacket(packet: TftpPacket): string {
  switch (packet.kind) {
    case 'readRequest':
    case 'writeRequest': {
      const options = packet.options.map((option) => ` ${option.name}=${option.value}`).join('');
      return `${requestLabel[packet.kind]} ${JSON.stringify(packet.fileName)} ${packet.mode}${options}`;
    }
    case 'data':
      return `DATA ${packet.block} (${packet.data.length} bytes)`;
    case 'acknowledgement':
      return `ACK ${packet.block}`;
    case 'error':
      return `ERROR ${packet.code} ${JSON.stringify(packet.message)}`;
    case 'optionAcknowledgement':
      return `OACK${packet.options.map((option) => ` ${option.name}=${option.value}`).join('')}`;
  }
}
