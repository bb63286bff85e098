/**
 * Syslog codec for the lines booting hosts send us: RFC 5424, RFC 3164 as real
 * senders write it, and the Linux kernel's netconsole, plus RFC 6587 TCP
 * framing. Pure: bytes and the time of arrival in, plain objects out. No
 * sockets, files or clock.
 *
 * Everything that reaches a stored string is made safe to print on one line:
 * invalid UTF-8 becomes U+FFFD, and control characters become `#` and the
 * octal of each UTF-8 byte (`#012` for LF), as rsyslog's
 * EscapeControlCharactersOnReceive does, so no field can start a forged
 * second line in `rackboot logs` or a terminal.
 */

/** Longest message text kept; the rest is cut and the message marked truncated. */
export const maxTextBytes = 8192;
/** Longest RFC 5424 STRUCTURED-DATA accepted, so the header cannot outgrow the text limit unnoticed. */
export const maxStructuredDataBytes = 8192;
/** Longest TCP frame, in either framing (RFC 6587 sets no limit; a UDP datagram cannot be longer). */
export const maxFrameBytes = 65536;

export type SyslogFormat = 'rfc5424' | 'rfc3164' | 'netconsole' | 'plain';

/** One RFC 5424 SD-PARAM, in the order sent, escapes undone. */
export interface StructuredDataParam {
  name: string;
  value: string;
}

/** One RFC 5424 SD-ELEMENT: `[id name="value" ...]`. */
export interface StructuredDataElement {
  /** SD-ID, such as `timeQuality` or `origin@32473`. */
  id: string;
  params: StructuredDataParam[];
}

/**
 * What an extended netconsole header says (the /dev/kmsg record format,
 * Documentation/networking/netconsole.rst): `LEVEL,SEQ,USEC,FLAGS[,ncfrag=OFF/TOTAL];TEXT`.
 */
export interface KernelRecord {
  /** Record number in the kernel's log buffer; a gap means records were lost on the way. */
  sequence: number;
  /** When the record was made, in microseconds since boot. */
  sinceBootMicroseconds: number;
  /** `-` for a whole record; `c` or `+` mark pr_cont pieces on older kernels. */
  flags: string;
  /** netconsole splits records over 1000 bytes; each piece says which bytes of the record it carries. */
  fragment: { offset: number; total: number } | undefined;
  /** Kernel release, present when netconsole's `r` option prepends it to the header. */
  release: string | undefined;
  /** Dictionary and netconsole userdata lines (` KEY=value`) after the text. */
  dictionary: StructuredDataParam[];
}

export interface SyslogMessage {
  kind: 'message';
  format: SyslogFormat;
  /** PRI / 8 (RFC 5424 section 6.2.1); undefined for plain text. */
  facility: number | undefined;
  /** PRI % 8: 0 emergency .. 7 debug; undefined for plain text. */
  severity: number | undefined;
  /** TIMESTAMP as sent, or undefined when there was none (RFC 5424 NILVALUE included). */
  timestampText: string | undefined;
  /** TIMESTAMP as a date, when it is a real one; RFC 3164 stamps are read as UTC. */
  timestamp: Date | undefined;
  /** When rackboot received the message. */
  receivedAt: Date;
  /** HOSTNAME. */
  hostname: string | undefined;
  /** RFC 5424 APP-NAME, or the RFC 3164 TAG without `[PID]:`. */
  appName: string | undefined;
  /** RFC 5424 PROCID, or the PID in an RFC 3164 `TAG[PID]:`. */
  procId: string | undefined;
  /** RFC 5424 MSGID. */
  msgId: string | undefined;
  /** RFC 5424 STRUCTURED-DATA; empty for the other formats. */
  structuredData: StructuredDataElement[];
  /** The extended netconsole header, for format 'netconsole'. */
  kernel: KernelRecord | undefined;
  /** MSG, safe to print on one line. */
  text: string;
  /** The text was longer than maxTextBytes and has been cut. */
  truncated: boolean;
}

/** A message whose header cannot be read. The caller drops it and may log why. */
export interface SyslogProblem {
  kind: 'problem';
  /** What was wrong and where, with the numbers: "PRI 192 at byte 1 is over 191". */
  problem: string;
  /** Byte offset of the fault in the message. */
  offset: number;
  /** The whole message, made safe to print and cut to maxTextBytes, for the log line about it. */
  text: string;
}

export type SyslogResult = SyslogMessage | SyslogProblem;

const tab = 0x09;
const lineFeed = 0x0a;
const carriageReturn = 0x0d;
const space = 0x20;
const quote = 0x22;
const hyphen = 0x2d;
const equals = 0x3d;
const lessThan = 0x3c;
const greaterThan = 0x3e;
const openBracket = 0x5b;
const backslash = 0x5c;
const closeBracket = 0x5d;

/**
 * Thrown inside this module only, and always caught by parseSyslog. Not an
 * Error: there is no stack trace to build for every bad datagram of a flood.
 */
class HeaderProblem {
  constructor(
    readonly problem: string,
    readonly offset: number,
  ) {}
}

/**
 * Read one syslog message: a UDP datagram, or one frame from splitTcpFrames.
 * Never throws: a header it cannot read is a SyslogProblem.
 */
export function parseSyslog(bytes: Uint8Array, receivedAt: Date): SyslogResult {
  const input = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // busybox and glibc end a datagram with LF, some senders with NUL or CR LF;
  // none of them belong to the text.
  let end = input.length;
  while (end > 0 && (input[end - 1] === lineFeed || input[end - 1] === carriageReturn || input[end - 1] === 0)) end -= 1;
  try {
    if (end === 0) throw new HeaderProblem('empty message', 0);
    if (input[0] === lessThan) return parseWithPriority(input, end, receivedAt);
    return parseNetconsole(input, end, receivedAt) ?? messageOf('plain', undefined, receivedAt, input, 0, end);
  } catch (err) {
    if (!(err instanceof HeaderProblem)) throw err;
    const cut = cutAtCharacter(input, 0, end, maxTextBytes);
    return { kind: 'problem', problem: err.problem, offset: err.offset, text: escapeControls(input.toString('utf8', 0, cut)) };
  }
}

/** A message with every field empty but the text, which runs from `start` to `end`. */
function messageOf(format: SyslogFormat, priority: number | undefined, receivedAt: Date, input: Buffer, start: number, end: number): SyslogMessage {
  const cut = cutAtCharacter(input, start, end, maxTextBytes);
  return {
    kind: 'message',
    format,
    facility: priority === undefined ? undefined : priority >> 3,
    severity: priority === undefined ? undefined : priority & 7,
    timestampText: undefined,
    timestamp: undefined,
    receivedAt,
    hostname: undefined,
    appName: undefined,
    procId: undefined,
    msgId: undefined,
    structuredData: [],
    kernel: undefined,
    text: escapeControls(input.toString('utf8', start, cut)),
    truncated: cut < end,
  };
}

/** `<PRI>` then RFC 5424 (`1 ` after PRI) or RFC 3164 (anything else). */
function parseWithPriority(input: Buffer, end: number, receivedAt: Date): SyslogMessage {
  // RFC 5424 section 6.2.1: PRI is "<", one to three digits, ">", value 0..191.
  let position = 1;
  let priority = 0;
  while (position < end && isDigit(input[position]!)) {
    if (position === 4) throw new HeaderProblem('PRI at byte 1 has more than 3 digits', 1);
    priority = priority * 10 + input[position]! - 0x30;
    position += 1;
  }
  if (position === 1) throw new HeaderProblem(`PRI at byte 1: want a digit, found ${describeByte(input, 1, end)}`, 1);
  if (position >= end || input[position] !== greaterThan) {
    throw new HeaderProblem(`PRI at byte 1: want '>' at byte ${position}, found ${describeByte(input, position, end)}`, position);
  }
  if (priority > 191) throw new HeaderProblem(`PRI ${priority} at byte 1 is over 191`, 1);
  position += 1;

  // RFC 5424 section 6.2.2: VERSION is one to three digits without a leading
  // zero, then a space, and 1 is the only one defined. A longer number, or
  // digits that run on into a date, belong to an RFC 3164 message.
  const version = /^([1-9][0-9]{0,2})(?: |$)/.exec(input.toString('latin1', position, Math.min(end, position + 4)));
  if (version !== null) {
    if (version[1] !== '1') throw new HeaderProblem(`VERSION ${version[1]} at byte ${position} is not 1`, position);
    if (position + 1 >= end) throw new HeaderProblem(`RFC 5424 header ends at byte ${end}, before TIMESTAMP`, end);
    return parseRfc5424(input, end, priority, position + 2, receivedAt);
  }
  return parseRfc3164(input, end, priority, position, receivedAt);
}

/** RFC 5424 section 6: `TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [MSG]`, starting after `1 `. */
function parseRfc5424(input: Buffer, end: number, priority: number, start: number, receivedAt: Date): SyslogMessage {
  const timestamp = readHeaderField(input, end, start, 'TIMESTAMP', 64);
  const hostname = readHeaderField(input, end, timestamp.next, 'HOSTNAME', 255);
  const appName = readHeaderField(input, end, hostname.next, 'APP-NAME', 48);
  const procId = readHeaderField(input, end, appName.next, 'PROCID', 128);
  const msgId = readHeaderField(input, end, procId.next, 'MSGID', 32);
  const structuredData = readStructuredData(input, end, msgId.next);

  // MSG is optional; section 6.4 lets it start with a UTF-8 BOM.
  let textStart = structuredData.next;
  if (textStart < end) textStart += 1; // the space after STRUCTURED-DATA
  if (input[textStart] === 0xef && input[textStart + 1] === 0xbb && input[textStart + 2] === 0xbf && textStart + 3 <= end) textStart += 3;

  const message = messageOf('rfc5424', priority, receivedAt, input, textStart, end);
  message.timestampText = timestamp.value;
  message.timestamp = timestamp.value === undefined ? undefined : parseRfc3339(timestamp.value);
  message.hostname = hostname.value;
  message.appName = appName.value;
  message.procId = procId.value;
  message.msgId = msgId.value;
  message.structuredData = structuredData.elements;
  return message;
}

/**
 * One space-separated header field: `-` (NILVALUE) is undefined. RFC 5424
 * section 6 allows printable US-ASCII only, which also keeps control
 * characters out of them.
 */
function readHeaderField(input: Buffer, end: number, start: number, name: string, maxLength: number): { value: string | undefined; next: number } {
  if (start >= end) throw new HeaderProblem(`RFC 5424 header ends at byte ${end}, before ${name}`, end);
  let position = start;
  while (position < end && input[position] !== space) {
    const byte = input[position]!;
    if (byte < 0x21 || byte > 0x7e)
      throw new HeaderProblem(`${name} at byte ${start} has byte 0x${hex(byte)} at byte ${position}, outside printable ASCII`, position);
    position += 1;
  }
  const length = position - start;
  if (length === 0) throw new HeaderProblem(`${name} at byte ${start} is empty (two spaces in a row)`, start);
  if (length > maxLength) throw new HeaderProblem(`${name} at byte ${start} is ${length} bytes long, over the RFC 5424 limit of ${maxLength}`, start);
  const text = input.toString('latin1', start, position);
  return { value: text === '-' ? undefined : text, next: position + 1 };
}

/**
 * RFC 5424 section 6.3: `-`, or one or more `[SD-ID (SP NAME="VALUE")*]` with
 * no space between them. Inside a value `\"`, `\\` and `\]` stand for the
 * second character; any other backslash is kept as it is (section 6.3.3).
 * `next` is the offset of the byte after the last element.
 */
function readStructuredData(input: Buffer, end: number, start: number): { elements: StructuredDataElement[]; next: number } {
  if (start >= end) throw new HeaderProblem(`RFC 5424 header ends at byte ${end}, before STRUCTURED-DATA`, end);
  const elements: StructuredDataElement[] = [];
  let position = start;
  if (input[position] === hyphen) {
    position += 1;
  } else if (input[position] === openBracket) {
    while (position < end && input[position] === openBracket) {
      const element = readSdElement(input, end, position + 1);
      elements.push(element.element);
      position = element.next;
      if (position - start > maxStructuredDataBytes) {
        throw new HeaderProblem(`STRUCTURED-DATA at byte ${start} is longer than ${maxStructuredDataBytes} bytes`, start);
      }
    }
  } else {
    throw new HeaderProblem(`STRUCTURED-DATA at byte ${start}: want '-' or '[', found ${describeByte(input, start, end)}`, start);
  }
  if (position < end && input[position] !== space) {
    throw new HeaderProblem(`want a space after STRUCTURED-DATA at byte ${position}, found ${describeByte(input, position, end)}`, position);
  }
  return { elements, next: position };
}

/** One SD-ELEMENT from after its `[`; `next` is past its `]`. */
function readSdElement(input: Buffer, end: number, start: number): { element: StructuredDataElement; next: number } {
  const id = readSdName(input, end, start, 'SD-ID');
  let position = id.next;
  const params: StructuredDataParam[] = [];
  while (position < end && input[position] === space) {
    const name = readSdName(input, end, position + 1, 'PARAM-NAME');
    position = name.next;
    if (position >= end || input[position] !== equals) {
      throw new HeaderProblem(`PARAM-NAME "${name.value}": want '=' at byte ${position}, found ${describeByte(input, position, end)}`, position);
    }
    if (position + 1 >= end || input[position + 1] !== quote) {
      throw new HeaderProblem(`PARAM-VALUE at byte ${position + 1}: want '"', found ${describeByte(input, position + 1, end)}`, position + 1);
    }
    const value = readSdValue(input, end, position + 2);
    params.push({ name: name.value, value: value.value });
    position = value.next;
  }
  if (position >= end || input[position] !== closeBracket) {
    throw new HeaderProblem(`SD-ELEMENT "${id.value}": want ' ' or ']' at byte ${position}, found ${describeByte(input, position, end)}`, position);
  }
  return { element: { id: id.value, params }, next: position + 1 };
}

/** SD-NAME (section 6.3.2): 1 to 32 printable ASCII characters other than '=', ' ', ']' and '"'. */
function readSdName(input: Buffer, end: number, start: number, what: string): { value: string; next: number } {
  let position = start;
  while (position < end) {
    const byte = input[position]!;
    if (byte === equals || byte === space || byte === closeBracket || byte === quote) break;
    if (byte < 0x21 || byte > 0x7e)
      throw new HeaderProblem(`${what} at byte ${start} has byte 0x${hex(byte)} at byte ${position}, outside printable ASCII`, position);
    position += 1;
  }
  const length = position - start;
  if (length === 0) throw new HeaderProblem(`${what} at byte ${start} is empty, found ${describeByte(input, start, end)}`, start);
  if (length > 32) throw new HeaderProblem(`${what} at byte ${start} is ${length} bytes long, over the RFC 5424 limit of 32`, start);
  return { value: input.toString('latin1', start, position), next: position };
}

/** PARAM-VALUE from after its opening quote to its closing one; `next` is past the closing quote. */
function readSdValue(input: Buffer, end: number, start: number): { value: string; next: number } {
  const bytes: number[] = [];
  let position = start;
  while (position < end) {
    const byte = input[position]!;
    if (byte === quote) return { value: escapeControls(Buffer.from(bytes).toString('utf8')), next: position + 1 };
    const following = input[position + 1];
    if (byte === backslash && position + 1 < end && (following === quote || following === backslash || following === closeBracket)) {
      bytes.push(following);
      position += 2;
    } else {
      bytes.push(byte);
      position += 1;
    }
    if (position - start > maxStructuredDataBytes) {
      throw new HeaderProblem(`PARAM-VALUE at byte ${start - 1} is longer than ${maxStructuredDataBytes} bytes`, start - 1);
    }
  }
  throw new HeaderProblem(`PARAM-VALUE at byte ${start - 1} has no closing '"'`, start - 1);
}

const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * BSD syslog (RFC 3164 section 4.1) as it is really sent, after `<PRI>`:
 *
 *   Dec  6 15:24:34 vm sshd: accepted key       util-linux logger --rfc3164
 *   Dec  6 15:24:34 udhcpc[18175]: started      glibc syslog(3), relayed by busybox syslogd -R
 *   2026-12-06T15:24:34.123456+00:00 vm tag: m  rsyslog's RSYSLOG_ForwardFormat
 *   sshd[12]: text                              embedded stacks with no clock
 *
 * glibc writes no hostname to /dev/log and busybox forwards the line as it
 * came, so the first word after the stamp is a hostname only when a tag
 * (`word:` or `word[pid]:`) follows it. Otherwise the words stay in the text:
 * rackboot knows which host sent a datagram from its address anyway.
 */
function parseRfc3164(input: Buffer, end: number, priority: number, start: number, receivedAt: Date): SyslogMessage {
  let position = start;
  const window = input.toString('latin1', start, Math.min(end, start + 64));
  let timestampText: string | undefined;
  let timestamp: Date | undefined;
  const bsd = /^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) {1,2}([0-9]{1,2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?(?= |$)/.exec(window);
  const iso =
    bsd === null ? /^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})(?= |$)/.exec(window) : null;
  if (bsd !== null) {
    timestampText = bsd[0];
    const [, month, day, hour, minute, second, fraction] = bsd;
    timestamp = bsdDate(months.indexOf(month!), Number(day), Number(hour), Number(minute), Number(second), milliseconds(fraction), receivedAt);
  } else if (iso !== null) {
    timestampText = iso[0];
    timestamp = parseRfc3339(iso[0]);
  }
  if (timestampText !== undefined) position = Math.min(end, start + timestampText.length + 1);

  let hostname: string | undefined;
  let tag = readTag(input, end, position);
  if (tag === undefined && timestampText !== undefined) {
    const word = nextWord(input, end, position);
    const hostTag = readTag(input, end, word.next + 1);
    if (hostTag !== undefined && word.next < end && /^[A-Za-z0-9][A-Za-z0-9._:-]{0,254}$/.test(word.text)) {
      hostname = word.text;
      tag = hostTag;
    }
  }
  if (tag !== undefined) {
    position = tag.next;
    if (input[position] === space) position += 1;
  }

  const message = messageOf('rfc3164', priority, receivedAt, input, position, end);
  message.timestampText = timestampText;
  message.timestamp = timestamp;
  message.hostname = hostname;
  message.appName = tag === undefined ? undefined : escapeControls(tag.appName);
  message.procId = tag?.procId === undefined ? undefined : escapeControls(tag.procId);
  return message;
}

/** The word from `start` to the next space or the end, as Latin-1 for pattern matching. */
function nextWord(input: Buffer, end: number, start: number): { text: string; next: number } {
  let position = start;
  while (position < end && input[position] !== space) position += 1;
  return { text: input.toString('latin1', start, position), next: position };
}

/** `TAG:` or `TAG[PID]:` as the whole next word; `next` is the offset after the colon. */
function readTag(input: Buffer, end: number, start: number): { appName: string; procId: string | undefined; next: number } | undefined {
  if (start >= end) return undefined;
  const word = nextWord(input, end, start);
  const match = /^([^\s[\]:]+)(?:\[([^\s[\]]*)\])?:$/.exec(word.text);
  if (match === null) return undefined;
  // The word was read as Latin-1 to match ASCII punctuation; names are UTF-8.
  const appEnd = start + match[1]!.length;
  const procId = match[2] === undefined ? undefined : input.toString('utf8', appEnd + 1, word.next - 2);
  return { appName: input.toString('utf8', start, appEnd), procId, next: word.next };
}

/**
 * The year of an RFC 3164 stamp, which has none: the one of last year, this
 * year and next year that puts the stamp nearest to when it arrived. A line
 * stamped Dec 31 that arrives on Jan 1 is from last year, and one stamped
 * Jan 1 by a sender whose clock runs ahead, arriving Dec 31, is from next
 * year. The stamp is read as UTC: the hosts rackboot boots run without a time
 * zone until their own system sets one.
 */
function bsdDate(month: number, day: number, hour: number, minute: number, second: number, millisecond: number, receivedAt: Date): Date | undefined {
  const arrival = receivedAt.getTime();
  if (Number.isNaN(arrival)) return undefined;
  let best: Date | undefined;
  for (const year of [receivedAt.getUTCFullYear() - 1, receivedAt.getUTCFullYear(), receivedAt.getUTCFullYear() + 1]) {
    const candidate = utcDate(year, month, day, hour, minute, second, millisecond);
    if (candidate === undefined) continue; // Feb 29 outside a leap year
    if (best === undefined || Math.abs(candidate.getTime() - arrival) < Math.abs(best.getTime() - arrival)) best = candidate;
  }
  return best;
}

/** RFC 3339 as RFC 5424 section 6.2.3 restricts it: `2026-12-06T15:24:34.123456+00:00`, no leap second. */
function parseRfc3339(text: string): Date | undefined {
  const match = /^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))$/.exec(text);
  if (match === null) return undefined;
  const [, year, month, day, hour, minute, second, fraction, , sign, offsetHours, offsetMinutes] = match;
  const local = utcDate(Number(year), Number(month) - 1, Number(day), Number(hour), Number(minute), Number(second), milliseconds(fraction));
  if (local === undefined) return undefined;
  if (sign === undefined) return local;
  if (Number(offsetHours) > 23 || Number(offsetMinutes) > 59) return undefined;
  const offset = (Number(offsetHours) * 60 + Number(offsetMinutes)) * 60_000;
  return new Date(local.getTime() - (sign === '+' ? offset : -offset));
}

/** A UTC date, or undefined when a field is out of range (Date.UTC would silently roll it over). */
function utcDate(year: number, month: number, day: number, hour: number, minute: number, second: number, millisecond: number): Date | undefined {
  const date = new Date(Date.UTC(year, month, day, hour, minute, second, millisecond));
  // Date.UTC reads years 0..99 as 1900..1999; the check below rejects them.
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month || date.getUTCDate() !== day) return undefined;
  if (date.getUTCHours() !== hour || date.getUTCMinutes() !== minute || date.getUTCSeconds() !== second) return undefined;
  return date;
}

/** The first three digits of a fraction of a second; a Date holds no more. */
function milliseconds(fraction: string | undefined): number {
  return fraction === undefined ? 0 : Number(fraction.padEnd(3, '0').slice(0, 3));
}

/**
 * Extended netconsole (`netconsole=+...`): the /dev/kmsg record format,
 * `LEVEL,SEQ,USEC,FLAGS[,KEY=VALUE...];TEXT`, optionally with the kernel
 * release in front (netconsole's `r` option) and dictionary lines after the text.
 * LEVEL is a syslog PRI: the kernel's own records have facility 0, lines
 * written to /dev/kmsg by userspace (systemd) carry theirs. Anything else
 * without `<PRI>` is plain netconsole output, `[    1.234567] text` when the
 * kernel has printk.time, kept whole.
 */
function parseNetconsole(input: Buffer, end: number, receivedAt: Date): SyslogMessage | undefined {
  const window = input.toString('latin1', 0, Math.min(end, 200));
  const match =
    /^()([0-9]{1,3}),([0-9]{1,20}),([0-9]{1,20}),([-+c]?)((?:,[^,;\s]*)*);/.exec(window) ??
    /^([^,;\s]*[^0-9,;\s][^,;\s]*),([0-9]{1,3}),([0-9]{1,20}),([0-9]{1,20}),([-+c]?)((?:,[^,;\s]*)*);/.exec(window);
  if (match === null) return undefined;
  const [header, release, level, sequence, microseconds, flags, extra] = match;
  const priority = Number(level);
  if (priority > 191) return undefined;

  let fragment: KernelRecord['fragment'];
  for (const field of extra!.split(',')) {
    const range = /^ncfrag=([0-9]{1,10})\/([0-9]{1,10})$/.exec(field);
    if (range !== null) fragment = { offset: Number(range[1]), total: Number(range[2]) };
  }

  // The kernel escapes control characters in the text as \xNN, so the first
  // LF ends it; each later line starting with a space is ` KEY=value`.
  const textStart = header!.length;
  let textEnd = input.indexOf(lineFeed, textStart);
  if (textEnd < 0 || textEnd > end) textEnd = end;
  const dictionary: StructuredDataParam[] = [];
  const strays: string[] = [];
  if (textEnd < end) {
    for (const line of input.toString('utf8', textEnd + 1, end).split('\n')) {
      const pair = /^ ([^=]+)=(.*)$/s.exec(line);
      if (pair !== null) dictionary.push({ name: escapeControls(pair[1]!), value: escapeControls(pair[2]!) });
      else if (line !== '') strays.push(line);
    }
  }
  // Lines that are not dictionary entries (a fragment cut mid-entry) leave
  // everything after the header in the text, escaped.
  const whole = strays.length > 0;
  const message = messageOf('netconsole', priority, receivedAt, input, textStart, whole ? end : textEnd);
  message.kernel = {
    sequence: Number(sequence),
    sinceBootMicroseconds: Number(microseconds),
    flags: flags === '' ? '-' : flags!,
    fragment,
    release: release === '' ? undefined : escapeControls(release!),
    dictionary: whole ? [] : dictionary,
  };
  return message;
}

/**
 * Where to cut `start..end` so at most `limit` bytes remain, moved back to
 * the start of a UTF-8 character so none is split into a replacement mark.
 */
function cutAtCharacter(input: Buffer, start: number, end: number, limit: number): number {
  if (end - start <= limit) return end;
  let cut = start + limit;
  for (let step = 0; step < 3 && cut > start && (input[cut]! & 0xc0) === 0x80; step += 1) cut -= 1;
  return cut;
}

/**
 * Control characters as rsyslog writes them: `#` and three octal digits per
 * UTF-8 byte. Tab stays. Besides C0 and DEL this covers the C1 controls
 * (U+0085 is a line break, U+009B a terminal escape) and U+2028 / U+2029,
 * which some viewers also break lines at.
 */
export function escapeControls(text: string): string {
  let out = '';
  let copiedTo = 0;
  for (let index = 0; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    const escape = (code < 0x20 && code !== tab) || (code >= 0x7f && code <= 0x9f) || code === 0x2028 || code === 0x2029;
    if (!escape) continue;
    out += text.slice(copiedTo, index);
    for (const byte of Buffer.from(text[index]!, 'utf8')) out += `#${byte.toString(8).padStart(3, '0')}`;
    copiedTo = index + 1;
  }
  return copiedTo === 0 ? text : out + text.slice(copiedTo);
}

function isDigit(byte: number): boolean {
  return byte >= 0x30 && byte <= 0x39;
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}

/** A byte for a problem string: `'x'` when printable, `0x0a` otherwise, `the end` past the message. */
function describeByte(input: Buffer, position: number, end: number): string {
  if (position >= end) return 'the end';
  const byte = input[position]!;
  return byte >= 0x21 && byte <= 0x7e ? `'${String.fromCharCode(byte)}'` : `0x${hex(byte)}`;
}

/** What splitTcpFrames found in the bytes received so far. */
export interface TcpFrames {
  /** Whole frames, in order, without length prefix or trailing LF. They share memory with the input. */
  frames: Buffer[];
  /** The bytes of a frame still arriving: keep them and put the next chunk after them. */
  rest: Buffer;
  /** Set when the stream cannot be framed; the caller closes the connection. `rest` then starts at the fault. */
  problem?: string;
}

/**
 * RFC 6587 framing, chosen per frame as section 3.4 describes: a frame
 * starting with a digit is octet-counted (`LEN SP MSG`, section 3.4.1), one
 * starting with `<` runs to the next LF (non-transparent, section 3.4.2).
 * Bare CR and LF between frames are skipped: some octet-counting senders
 * still end each frame with LF, and CR LF senders leave a CR.
 */
export function splitTcpFrames(buffer: Buffer): TcpFrames {
  const frames: Buffer[] = [];
  let position = 0;
  const stop = (problem: string): TcpFrames => ({ frames, rest: buffer.subarray(position), problem });
  while (position < buffer.length) {
    const first = buffer[position]!;
    if (first === lineFeed || first === carriageReturn) {
      position += 1;
    } else if (first === lessThan) {
      const lineEnd = buffer.indexOf(lineFeed, position);
      const length = (lineEnd < 0 ? buffer.length : lineEnd) - position;
      if (length > maxFrameBytes) return stop(`frame at byte ${position} has no LF within ${maxFrameBytes} bytes`);
      if (lineEnd < 0) break;
      frames.push(buffer.subarray(position, lineEnd));
      position = lineEnd + 1;
    } else if (isDigit(first)) {
      // MSG-LEN is NONZERO-DIGIT *DIGIT; six digits would be over the limit already.
      if (first === 0x30) return stop(`frame length at byte ${position} starts with 0`);
      let cursor = position;
      let length = 0;
      while (cursor < buffer.length && isDigit(buffer[cursor]!)) {
        if (cursor - position === 5) return stop(`frame length at byte ${position} has more than 5 digits, over the limit of ${maxFrameBytes}`);
        length = length * 10 + buffer[cursor]! - 0x30;
        cursor += 1;
      }
      if (cursor === buffer.length) break;
      if (buffer[cursor] !== space) {
        return stop(`frame length at byte ${position} is followed by ${describeByte(buffer, cursor, buffer.length)} at byte ${cursor}, want a space`);
      }
      if (length > maxFrameBytes) return stop(`frame length ${length} at byte ${position} is over the limit of ${maxFrameBytes}`);
      const frameStart = cursor + 1;
      if (buffer.length - frameStart < length) break;
      frames.push(buffer.subarray(frameStart, frameStart + length));
      position = frameStart + length;
    } else {
      return stop(
        `frame at byte ${position} starts with ${describeByte(buffer, position, buffer.length)}: neither a length (octet counting) nor '<' (LF framing)`,
      );
    }
  }
  return { frames, rest: buffer.subarray(position) };
}

/**
 * One line for `rackboot logs`: `TIMESTAMP APP[PID]: TEXT`. The stamp is the
 * sender's when it is a real date, else the time of arrival, both as ISO 8601
 * UTC so lines from every format sort and line up. Kernel records from
 * extended netconsole show their time since boot the way dmesg does.
 */
export function formatSyslogLine(message: SyslogMessage): string {
  const date = message.timestamp ?? message.receivedAt;
  const stamp = Number.isNaN(date.getTime()) ? '-' : date.toISOString();
  const app = message.appName === undefined ? '' : `${message.appName}${message.procId === undefined ? '' : `[${message.procId}]`}: `;
  const uptime = message.kernel === undefined ? '' : `${kernelTime(message.kernel.sinceBootMicroseconds)} `;
  return `${stamp} ${app}${uptime}${message.text}`;
}

/** `[    1.234567]`, as printk.time writes it. */
function kernelTime(microseconds: number): string {
  const seconds = Math.floor(microseconds / 1_000_000);
  const fraction = String(microseconds % 1_000_000).padStart(6, '0');
  return `[${String(seconds).padStart(5, ' ')}.${fraction}]`;
}
