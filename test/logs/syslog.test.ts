import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  escapeControls,
  formatSyslogLine,
  maxFrameBytes,
  maxTextBytes,
  parseSyslog,
  splitTcpFrames,
  type SyslogMessage,
  type SyslogProblem,
  type SyslogResult,
} from '../../server/logs/syslog.js';
import { seededRandom } from '../support/random.js';

/** Bytes written as a JS string, one character per byte, so `\xff` is the byte 0xff. */
function bytes(text: string): Buffer {
  return Buffer.from(text, 'latin1');
}

const receivedAt = new Date('2026-12-06T15:24:40Z');

function message(input: string | Buffer, at: Date = receivedAt): SyslogMessage {
  const result = parseSyslog(typeof input === 'string' ? bytes(input) : input, at);
  assert.equal(result.kind, 'message', `want a message, got ${JSON.stringify(result)}`);
  return result as SyslogMessage;
}

function problem(input: string | Buffer): SyslogProblem {
  const result = parseSyslog(typeof input === 'string' ? bytes(input) : input, receivedAt);
  assert.equal(result.kind, 'problem', `want a problem, got ${JSON.stringify(result)}`);
  return result as SyslogProblem;
}

/** Compare only the fields a case names; the rest are checked by the cases about them. */
function assertFields(actual: SyslogMessage, expected: Partial<SyslogMessage>): void {
  const picked = Object.fromEntries(Object.keys(expected).map((key) => [key, actual[key as keyof SyslogMessage]]));
  assert.deepEqual(picked, expected);
}

/** Characters that could end a line or drive a terminal, which no decoded string may hold. */
const unsafe = /[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]/u;

function assertPrintable(result: SyslogResult): void {
  const walk = (value: unknown, path: string): void => {
    if (typeof value === 'string') assert.doesNotMatch(value, unsafe, `${path} holds a control character: ${JSON.stringify(value)}`);
    else if (Array.isArray(value)) value.forEach((item, index) => walk(item, `${path}[${index}]`));
    else if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
      for (const [key, item] of Object.entries(value)) walk(item, `${path}.${key}`);
    }
  };
  walk(result, 'result');
}

const date = (iso: string): Date => new Date(iso);

/** Feed a stream to splitTcpFrames in chunks, as a socket would, keeping `rest` between them. */
function feed(chunks: Buffer[]): { frames: string[]; rest: string; problem: string | undefined } {
  const frames: string[] = [];
  let pending: Buffer = Buffer.alloc(0);
  for (const chunk of chunks) {
    const result = splitTcpFrames(Buffer.concat([pending, chunk]));
    frames.push(...result.frames.map((frame) => frame.toString('latin1')));
    pending = result.rest;
    if (result.problem !== undefined) return { frames, rest: pending.toString('latin1'), problem: result.problem };
  }
  return { frames, rest: pending.toString('latin1'), problem: undefined };
}

describe('busybox syslogd -R', () => {
  /**
   * Captured on Debian 12 (busybox 1.35.0-4+deb12u1, glibc 2.36): `busybox
   * syslogd -n -R 127.0.0.1:PORT` in a private mount namespace with its own
   * /dev/log, fed by `busybox logger` and, for the LOG_PID line, Python's
   * syslog module (glibc syslog(3)); a Node UDP socket on loopback recorded
   * the datagrams. syslogd forwards what the client wrote to /dev/log as it
   * is, with one LF added: glibc sends no hostname, pads the day with a space,
   * and neither escapes control characters nor checks UTF-8.
   */
  const captures: Array<{ command: string; datagram: string; expected: Partial<SyslogMessage>; line: string }> = [
    {
      command: "busybox logger -t dhcp 'udhcpc: lease of 198.18.0.15 obtained'",
      datagram: '<13>Dec  6 15:24:34 dhcp: udhcpc: lease of 198.18.0.15 obtained\n',
      expected: {
        format: 'rfc3164',
        facility: 1,
        severity: 5,
        timestampText: 'Dec  6 15:24:34',
        timestamp: date('2026-12-06T15:24:34Z'),
        hostname: undefined,
        appName: 'dhcp',
        procId: undefined,
        text: 'udhcpc: lease of 198.18.0.15 obtained',
      },
      line: '2026-12-06T15:24:34.000Z dhcp: udhcpc: lease of 198.18.0.15 obtained',
    },
    {
      command: "busybox logger -p local3.err -t kernel-ish 'disk sda: I/O error'",
      datagram: '<155>Dec  6 15:24:34 kernel-ish: disk sda: I/O error\n',
      expected: { facility: 19, severity: 3, appName: 'kernel-ish', text: 'disk sda: I/O error' },
      line: '2026-12-06T15:24:34.000Z kernel-ish: disk sda: I/O error',
    },
    {
      command: "busybox logger 'no tag given' (the tag defaults to the user name)",
      datagram: '<13>Dec  6 15:24:34 root: no tag given\n',
      expected: { appName: 'root', text: 'no tag given' },
      line: '2026-12-06T15:24:34.000Z root: no tag given',
    },
    {
      command: `busybox logger -p daemon.notice "$(printf 'two\\nlines')"`,
      datagram: '<29>Dec  6 15:24:34 root: two\nlines\n',
      expected: { facility: 3, severity: 5, appName: 'root', text: 'two#012lines' },
      line: '2026-12-06T15:24:34.000Z root: two#012lines',
    },
    {
      command: `busybox logger -t esc "$(printf 'tab\\there bell\\a end')"`,
      datagram: '<13>Dec  6 15:24:34 esc: tab\there bell\x07 end\n',
      expected: { appName: 'esc', text: 'tab\there bell#007 end' },
      line: '2026-12-06T15:24:34.000Z esc: tab\there bell#007 end',
    },
    {
      command: "printf 'stdin line one\\nstdin line two\\n' | busybox logger -t fromstdin (one datagram per line)",
      datagram: '<13>Dec  6 15:24:34 fromstdin: stdin line one\n',
      expected: { appName: 'fromstdin', text: 'stdin line one' },
      line: '2026-12-06T15:24:34.000Z fromstdin: stdin line one',
    },
    {
      command: `busybox logger -t utf8 "$(printf 'caf\\303\\251 bad\\377 byte')"`,
      datagram: '<13>Dec  6 15:24:41 utf8: caf\xc3\xa9 bad\xff byte\n',
      expected: { appName: 'utf8', text: 'caf\u00e9 bad\ufffd byte' },
      line: '2026-12-06T15:24:41.000Z utf8: caf\u00e9 bad\ufffd byte',
    },
    {
      command: "python3: syslog.openlog('udhcpc', syslog.LOG_PID, syslog.LOG_DAEMON); syslog.syslog(syslog.LOG_INFO, ...)",
      datagram: '<30>Dec  6 15:24:41 udhcpc[18175]: started, v1.35.0\n',
      expected: { facility: 3, severity: 6, appName: 'udhcpc', procId: '18175', text: 'started, v1.35.0' },
      line: '2026-12-06T15:24:41.000Z udhcpc[18175]: started, v1.35.0',
    },
    {
      command: "busybox logger -p user.debug ''",
      datagram: '<15>Dec  6 15:24:41 root: \n',
      expected: { severity: 7, appName: 'root', text: '' },
      line: '2026-12-06T15:24:41.000Z root: ',
    },
    {
      command: 'busybox logger -t xxx...x (40 characters, over RFC 3164 32) long tag',
      datagram: `<13>Dec  6 15:24:41 ${'x'.repeat(40)}: long tag\n`,
      expected: { appName: 'x'.repeat(40), text: 'long tag' },
      line: `2026-12-06T15:24:41.000Z ${'x'.repeat(40)}: long tag`,
    },
  ];

  for (const capture of captures) {
    test(capture.command, () => {
      const parsed = message(capture.datagram);
      assertFields(parsed, capture.expected);
      assert.equal(formatSyslogLine(parsed), capture.line);
      assertPrintable(parsed);
    });
  }

  test('a 3000-byte message arrives cut to 1024 bytes by syslogd itself, with no mark', () => {
    // `busybox logger -t big "$(python3 -c 'print("a"*3000)')"`: the datagram
    // was 1024 bytes, its read buffer (1023 bytes) plus the LF it adds.
    const header = '<13>Dec  6 15:24:47 big: ';
    const datagram = `${header}${'a'.repeat(1023 - header.length)}\n`;
    assert.equal(datagram.length, 1024);
    const parsed = message(datagram);
    assert.equal(parsed.text, 'a'.repeat(1023 - header.length));
    assert.equal(parsed.truncated, false, 'the cut happened before us; nothing says so');
  });
});

describe('util-linux logger 2.38.1, straight to the network', () => {
  // `logger -d -n 127.0.0.1 -P PORT ...` recorded by a Node UDP socket; the
  // TCP ones (-T, with and without --octet-count) by a Node TCP server.
  test('--rfc3164 puts the hostname in and sends no LF', () => {
    const parsed = message('<38>Dec  6 15:27:12 vm sshd: accepted key');
    assertFields(parsed, { format: 'rfc3164', facility: 4, severity: 6, hostname: 'vm', appName: 'sshd', procId: undefined, text: 'accepted key' });
  });

  test('--rfc5424 with two structured data elements and every escape', () => {
    // logger --rfc5424 -t rackboot-agent -p local0.notice --msgid BOOT --sd-id boot@32473
    //   --sd-param 'stage="initramfs"' --sd-param 'note="quote \" slash \\ and \] inside"' 'fetched dom0 image'
    const parsed = message(
      '<133>1 2026-12-06T15:27:15.982673+00:00 vm rackboot-agent - BOOT [timeQuality tzKnown="1" isSynced="0"]' +
        '[boot@32473 stage="initramfs" note="quote \\" slash \\\\ and \\] inside"] fetched dom0 image',
    );
    assert.deepEqual(parsed, {
      kind: 'message',
      format: 'rfc5424',
      facility: 16,
      severity: 5,
      timestampText: '2026-12-06T15:27:15.982673+00:00',
      timestamp: date('2026-12-06T15:27:15.982Z'),
      receivedAt,
      hostname: 'vm',
      appName: 'rackboot-agent',
      procId: undefined,
      msgId: 'BOOT',
      structuredData: [
        {
          id: 'timeQuality',
          params: [
            { name: 'tzKnown', value: '1' },
            { name: 'isSynced', value: '0' },
          ],
        },
        {
          id: 'boot@32473',
          params: [
            { name: 'stage', value: 'initramfs' },
            { name: 'note', value: 'quote " slash \\ and ] inside' },
          ],
        },
      ],
      kernel: undefined,
      text: 'fetched dom0 image',
      truncated: false,
    });
    assert.equal(formatSyslogLine(parsed), '2026-12-06T15:27:15.982Z rackboot-agent: fetched dom0 image');
  });

  test('--rfc5424=notq,notime,nohost leaves every field nil but APP-NAME', () => {
    const parsed = message('<13>1 - - plain - - - minimal header');
    assertFields(parsed, {
      timestampText: undefined,
      timestamp: undefined,
      hostname: undefined,
      appName: 'plain',
      procId: undefined,
      msgId: undefined,
      structuredData: [],
      text: 'minimal header',
    });
    assert.equal(formatSyslogLine(parsed), '2026-12-06T15:24:40.000Z plain: minimal header', 'no stamp sent: the time of arrival');
  });

  test('-T sends LF framing; --octet-count sends a length', () => {
    const stream = bytes(
      '<13>1 2026-12-06T15:27:12.366639+00:00 vm tcpnt - - [timeQuality tzKnown="1" isSynced="0"] non transparent one\n' +
        '108 <13>1 2026-12-06T15:27:12.368532+00:00 vm tcpoc - - [timeQuality tzKnown="1" isSynced="0"] octet counted one',
    );
    const split = splitTcpFrames(stream);
    assert.equal(split.problem, undefined);
    assert.equal(split.rest.length, 0);
    assert.deepEqual(
      split.frames.map((frame) => {
        const parsed = message(frame);
        return [parsed.appName, parsed.text];
      }),
      [
        ['tcpnt', 'non transparent one'],
        ['tcpoc', 'octet counted one'],
      ],
    );
  });
});

describe('RFC 5424', () => {
  const cases: Array<{ name: string; input: string; expected: Partial<SyslogMessage> }> = [
    {
      name: 'section 6.5 example 1: BOM before MSG, nil PROCID and SD',
      input: "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xef\xbb\xbf'su root' failed for lonvick on /dev/pts/8",
      expected: {
        facility: 4,
        severity: 2,
        timestamp: date('2003-10-11T22:14:15.003Z'),
        hostname: 'mymachine.example.com',
        appName: 'su',
        procId: undefined,
        msgId: 'ID47',
        text: "'su root' failed for lonvick on /dev/pts/8",
      },
    },
    {
      name: 'section 6.5 example 2: microseconds and a negative offset, no BOM',
      input: "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
      expected: {
        facility: 20,
        severity: 5,
        timestamp: date('2003-08-24T12:14:15.000Z'),
        hostname: '192.0.2.1',
        appName: 'myproc',
        procId: '8710',
        text: "%% It's time to make the do-nuts.",
      },
    },
    {
      name: 'section 6.5 example 3: structured data and a BOM',
      input:
        '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] ' +
        '\xef\xbb\xbfAn application event log entry...',
      expected: {
        structuredData: [
          {
            id: 'exampleSDID@32473',
            params: [
              { name: 'iut', value: '3' },
              { name: 'eventSource', value: 'Application' },
              { name: 'eventID', value: '1011' },
            ],
          },
        ],
        text: 'An application event log entry...',
      },
    },
    {
      name: 'section 6.5 example 4: two elements and no MSG',
      input:
        '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]' +
        '[examplePriority@32473 class="high"]',
      expected: {
        structuredData: [
          {
            id: 'exampleSDID@32473',
            params: [
              { name: 'iut', value: '3' },
              { name: 'eventSource', value: 'Application' },
              { name: 'eventID', value: '1011' },
            ],
          },
          { id: 'examplePriority@32473', params: [{ name: 'class', value: 'high' }] },
        ],
        text: '',
      },
    },
    {
      // rsyslog's RSYSLOG_SyslogProtocol23Format template, written by hand:
      // "<%PRI%>1 %TIMESTAMP:::date-rfc3339% %HOSTNAME% %APP-NAME% %PROCID% %MSGID% %STRUCTURED-DATA% %msg%\n"
      name: 'rsyslog forwarding a journal line, with an LF at the end',
      input:
        '<30>1 2026-12-06T16:24:34.123456+01:00 node7 systemd 1 - [origin@32473 software="rsyslogd" swVersion="8.2302.0"] Started rackboot-agent.service.\n',
      expected: {
        facility: 3,
        severity: 6,
        timestamp: date('2026-12-06T15:24:34.123Z'),
        hostname: 'node7',
        appName: 'systemd',
        procId: '1',
        structuredData: [
          {
            id: 'origin@32473',
            params: [
              { name: 'software', value: 'rsyslogd' },
              { name: 'swVersion', value: '8.2302.0' },
            ],
          },
        ],
        text: 'Started rackboot-agent.service.',
      },
    },
    {
      name: 'a backslash before anything but " \\ ] stays (section 6.3.3), and ] needs no escape inside quotes',
      input: '<13>1 - h a - - [x@1 path="C:\\temp\\n" raw="a]b" empty=""] m',
      expected: {
        structuredData: [
          {
            id: 'x@1',
            params: [
              { name: 'path', value: 'C:\\temp\\n' },
              { name: 'raw', value: 'a]b' },
              { name: 'empty', value: '' },
            ],
          },
        ],
        text: 'm',
      },
    },
    {
      name: 'an element with no params',
      input: '<13>1 - h a - - [meta] text',
      expected: { structuredData: [{ id: 'meta', params: [] }], text: 'text' },
    },
    {
      name: 'UTF-8 in a param value and in MSG',
      input: '<13>1 - h a - - [x@1 who="J\xc3\xbcrgen"] gr\xc3\xbc\xc3\x9fe',
      expected: { structuredData: [{ id: 'x@1', params: [{ name: 'who', value: 'J\u00fcrgen' }] }], text: 'gr\u00fc\u00dfe' },
    },
    {
      name: 'no MSG and no space after SD',
      input: '<13>1 - h a - - -',
      expected: { structuredData: [], text: '' },
    },
    {
      name: 'a space after SD and then nothing',
      input: '<13>1 - h a - - - ',
      expected: { text: '' },
    },
    {
      name: 'PRI 0 and PRI 191, the ends of the range',
      input: '<0>1 - - - - - - kern.emerg',
      expected: { facility: 0, severity: 0, text: 'kern.emerg' },
    },
    {
      name: 'PRI 191',
      input: '<191>1 - - - - - - local7.debug',
      expected: { facility: 23, severity: 7 },
    },
    {
      name: 'leading zeros in PRI are read, as rsyslog does',
      input: '<013>1 - - - - - - x',
      expected: { facility: 1, severity: 5 },
    },
  ];
  for (const { name, input, expected } of cases) {
    test(name, () => {
      const parsed = message(input);
      assertFields(parsed, { format: 'rfc5424', ...expected });
      assertPrintable(parsed);
    });
  }

  const timestamps: Array<{ text: string; date: Date | undefined; why: string }> = [
    { text: '2026-12-06T15:24:34Z', date: date('2026-12-06T15:24:34Z'), why: 'no fraction' },
    { text: '2026-12-06T15:24:34.5Z', date: date('2026-12-06T15:24:34.500Z'), why: 'one digit of fraction' },
    { text: '2026-12-06T15:24:34.999999Z', date: date('2026-12-06T15:24:34.999Z'), why: 'microseconds cut to milliseconds, not rounded' },
    { text: '2026-12-06T00:30:00+05:30', date: date('2026-12-05T19:00:00Z'), why: 'an offset with minutes' },
    { text: '2026-12-06t15:24:34z', date: date('2026-12-06T15:24:34Z'), why: 'lower-case t and z, as RFC 3339 allows' },
    { text: '2026-02-29T00:00:00Z', date: undefined, why: '2026 is not a leap year' },
    { text: '2028-02-29T00:00:00Z', date: date('2028-02-29T00:00:00Z'), why: '2028 is' },
    { text: '2026-12-31T23:59:60Z', date: undefined, why: 'RFC 5424 section 6.2.3.1 forbids leap seconds' },
    { text: '2026-13-01T00:00:00Z', date: undefined, why: 'month 13' },
    { text: '2026-12-06T24:00:00Z', date: undefined, why: 'hour 24' },
    { text: '2026-12-06T15:24:34+24:00', date: undefined, why: 'offset hour 24' },
    { text: '2026-12-06T15:24:34', date: undefined, why: 'no offset' },
    { text: '0050-01-01T00:00:00Z', date: undefined, why: 'Date.UTC would read year 50 as 1950' },
    { text: 'yesterday', date: undefined, why: 'not a date at all' },
  ];
  for (const { text, date: expected, why } of timestamps) {
    test(`TIMESTAMP ${text}: ${why}`, () => {
      assertFields(message(`<13>1 ${text} h a - - - m`), { timestampText: text, timestamp: expected });
    });
  }
});

describe('RFC 3164 as senders write it', () => {
  const cases: Array<{ name: string; input: string; expected: Partial<SyslogMessage> }> = [
    {
      name: 'hostname and TAG[PID]',
      input: '<86>Dec  6 15:24:34 node7 sshd[812]: Accepted publickey for root',
      expected: { facility: 10, severity: 6, hostname: 'node7', appName: 'sshd', procId: '812', text: 'Accepted publickey for root' },
    },
    {
      name: 'a dotted hostname and a dash in the tag',
      input: '<13>Dec  6 15:24:34 node7.rack3.example kernel-boot: up',
      expected: { hostname: 'node7.rack3.example', appName: 'kernel-boot', text: 'up' },
    },
    {
      name: 'an IPv6 address as hostname',
      input: '<13>Dec  6 15:24:34 fe80::5054:ff:fe12:3456 dropbear[90]: Child connection',
      expected: { hostname: 'fe80::5054:ff:fe12:3456', appName: 'dropbear', procId: '90' },
    },
    {
      name: 'no tag: the words stay in the text, none is taken for a hostname',
      input: '<13>Dec  6 15:24:34 hello world',
      expected: { hostname: undefined, appName: undefined, text: 'hello world' },
    },
    {
      name: 'a word then text without a tag',
      input: '<13>Dec  6 15:24:34 node7 just text here',
      expected: { hostname: undefined, appName: undefined, text: 'node7 just text here' },
    },
    {
      name: 'a tag glued to the text is not a tag',
      input: '<13>Dec  6 15:24:34 tag:text',
      expected: { appName: undefined, text: 'tag:text' },
    },
    {
      name: 'an empty PID',
      input: '<13>Dec  6 15:24:34 app[]: x',
      expected: { appName: 'app', procId: '', text: 'x' },
    },
    {
      name: 'a two-digit day',
      input: '<13>Dec 16 15:24:34 app: x',
      expected: { timestampText: 'Dec 16 15:24:34', timestamp: date('2026-12-16T15:24:34Z') },
    },
    {
      name: 'a zero-padded day',
      input: '<13>Dec 06 15:24:34 app: x',
      expected: { timestampText: 'Dec 06 15:24:34', timestamp: date('2026-12-06T15:24:34Z') },
    },
    {
      name: 'a day with one space',
      input: '<13>Dec 6 15:24:34 app: x',
      expected: { timestampText: 'Dec 6 15:24:34', timestamp: date('2026-12-06T15:24:34Z'), appName: 'app' },
    },
    {
      name: 'milliseconds after the seconds',
      input: '<13>Dec  6 15:24:34.250 app: x',
      expected: { timestamp: date('2026-12-06T15:24:34.250Z'), appName: 'app' },
    },
    {
      name: "rsyslog's RSYSLOG_ForwardFormat: an RFC 3339 stamp in a BSD header",
      input: '<30>2026-12-06T15:24:34.123456+00:00 node7 systemd[1]: Reached target Network.',
      expected: {
        timestampText: '2026-12-06T15:24:34.123456+00:00',
        timestamp: date('2026-12-06T15:24:34.123Z'),
        hostname: 'node7',
        appName: 'systemd',
        procId: '1',
        text: 'Reached target Network.',
      },
    },
    {
      name: 'a stamp that has the shape but not the values keeps its text',
      input: '<13>Dec 32 25:61:61 app: x',
      expected: { timestampText: 'Dec 32 25:61:61', timestamp: undefined, appName: 'app', text: 'x' },
    },
    {
      name: 'no stamp: a tag is still read, a hostname is not',
      input: '<30>udhcpc[12]: sending discover',
      expected: { timestampText: undefined, timestamp: undefined, hostname: undefined, appName: 'udhcpc', procId: '12', text: 'sending discover' },
    },
    {
      name: 'no stamp, no tag',
      input: '<13>just words',
      expected: { timestampText: undefined, appName: undefined, text: 'just words' },
    },
    {
      name: 'nothing after PRI',
      input: '<13>',
      expected: { facility: 1, severity: 5, text: '' },
    },
    {
      name: 'a stamp and nothing else',
      input: '<13>Dec  6 15:24:34',
      expected: { timestampText: 'Dec  6 15:24:34', text: '' },
    },
    {
      name: 'a month name that is not one',
      input: '<13>Dez  6 15:24:34 app: x',
      expected: { timestampText: undefined, appName: undefined, text: 'Dez  6 15:24:34 app: x' },
    },
    {
      name: 'digits that are no version: a number longer than three digits',
      input: '<13>1234 is not a version',
      expected: { text: '1234 is not a version' },
    },
    {
      name: 'digits that are no version: 0',
      input: '<13>0 is not a version',
      expected: { text: '0 is not a version' },
    },
    {
      name: 'a TAG in UTF-8',
      input: '<13>Dec  6 15:24:34 d\xc3\xa6mon: x',
      expected: { appName: 'd\u00e6mon', text: 'x' },
    },
    {
      name: 'NUL and CR LF at the end are not text',
      input: '<13>Dec  6 15:24:34 app: x\r\n\x00',
      expected: { text: 'x' },
    },
  ];
  for (const { name, input, expected } of cases) {
    test(name, () => {
      const parsed = message(input);
      assertFields(parsed, { format: 'rfc3164', ...expected });
      assertPrintable(parsed);
    });
  }

  const years: Array<{ name: string; stamp: string; at: string; expected: string | undefined }> = [
    { name: 'same day', stamp: 'Dec  6 15:24:34', at: '2026-12-06T15:24:40Z', expected: '2026-12-06T15:24:34Z' },
    { name: 'sent on New Year’s Eve, received after midnight', stamp: 'Dec 31 23:59:58', at: '2027-01-01T00:00:03Z', expected: '2026-12-31T23:59:58Z' },
    { name: 'a sender whose clock runs ahead, into next year', stamp: 'Jan  1 00:00:03', at: '2026-12-31T23:59:58Z', expected: '2027-01-01T00:00:03Z' },
    { name: 'a week-old line in January', stamp: 'Dec 28 10:00:00', at: '2027-01-04T10:00:00Z', expected: '2026-12-28T10:00:00Z' },
    { name: 'mid-year, a day old', stamp: 'Jun 14 12:00:00', at: '2026-06-15T12:00:00Z', expected: '2026-06-14T12:00:00Z' },
    { name: 'Feb 29 received in a leap year', stamp: 'Feb 29 12:00:00', at: '2028-03-01T00:00:00Z', expected: '2028-02-29T12:00:00Z' },
    { name: 'Feb 29 received just after a leap year', stamp: 'Feb 29 12:00:00', at: '2029-01-02T00:00:00Z', expected: '2028-02-29T12:00:00Z' },
    { name: 'an arrival time that is not a date', stamp: 'Dec  6 15:24:34', at: 'not a date', expected: undefined },
  ];
  for (const { name, stamp, at, expected } of years) {
    test(`year: ${name}`, () => {
      const parsed = message(`<13>${stamp} app: x`, new Date(at));
      assert.deepEqual(parsed.timestamp, expected === undefined ? undefined : date(expected));
      assert.equal(parsed.timestampText, stamp);
    });
  }
});

describe('netconsole', () => {
  test('plain netconsole: the console text, kept whole', () => {
    const cases: Array<[string, string]> = [
      [
        '[    0.000000] Linux version 6.1.0-28-amd64 (debian-kernel@lists.debian.org)\n',
        '[    0.000000] Linux version 6.1.0-28-amd64 (debian-kernel@lists.debian.org)',
      ],
      ['e1000 0000:00:03.0 eth0: Link is Up 1000 Mbps Full Duplex\n', 'e1000 0000:00:03.0 eth0: Link is Up 1000 Mbps Full Duplex'],
      ['[   12.345678] first\n[   12.345679] second\n', '[   12.345678] first#012[   12.345679] second'],
      ['1,2,3 not a header;\n', '1,2,3 not a header;'],
    ];
    for (const [input, text] of cases) {
      const parsed = message(input);
      assertFields(parsed, {
        format: 'plain',
        facility: undefined,
        severity: undefined,
        timestampText: undefined,
        timestamp: undefined,
        appName: undefined,
        kernel: undefined,
        text,
      });
      assert.equal(formatSyslogLine(parsed), `2026-12-06T15:24:40.000Z ${text}`);
    }
  });

  const extended: Array<{ name: string; input: string; expected: Partial<SyslogMessage>; line?: string }> = [
    {
      name: 'a kernel record',
      input: '6,339,5140900,-;NET: Registered PF_PACKET protocol family\n',
      expected: {
        facility: 0,
        severity: 6,
        kernel: { sequence: 339, sinceBootMicroseconds: 5140900, flags: '-', fragment: undefined, release: undefined, dictionary: [] },
        text: 'NET: Registered PF_PACKET protocol family',
      },
      line: '2026-12-06T15:24:40.000Z [    5.140900] NET: Registered PF_PACKET protocol family',
    },
    {
      name: 'a record with a dictionary, and the \\xNN escapes the kernel applies',
      input: '3,1004,61234567,-;virtio_net virtio0 eth0: bad \\x1b byte\n SUBSYSTEM=virtio\n DEVICE=+virtio:virtio0\n',
      expected: {
        severity: 3,
        kernel: {
          sequence: 1004,
          sinceBootMicroseconds: 61234567,
          flags: '-',
          fragment: undefined,
          release: undefined,
          dictionary: [
            { name: 'SUBSYSTEM', value: 'virtio' },
            { name: 'DEVICE', value: '+virtio:virtio0' },
          ],
        },
        text: 'virtio_net virtio0 eth0: bad \\x1b byte',
      },
    },
    {
      name: 'a line systemd wrote to /dev/kmsg carries its own facility',
      input: '30,412,6900123,-;systemd[1]: Started systemd-udevd.service.\n',
      expected: { facility: 3, severity: 6, text: 'systemd[1]: Started systemd-udevd.service.' },
      line: '2026-12-06T15:24:40.000Z [    6.900123] systemd[1]: Started systemd-udevd.service.',
    },
    {
      // Documentation/networking/netconsole.rst, with a smaller chunk size.
      name: 'the two fragments of a split record',
      input: '6,416,1758426,-,ncfrag=16/31; the 2nd chunk.',
      expected: {
        kernel: { sequence: 416, sinceBootMicroseconds: 1758426, flags: '-', fragment: { offset: 16, total: 31 }, release: undefined, dictionary: [] },
        text: ' the 2nd chunk.',
      },
    },
    {
      // tools/testing/selftests/drivers/net/netcons_fragmented_msg.sh shows this header.
      name: 'the kernel release in front (netconsole=+r...)',
      input: '6.13.0-04048-g4f561a87745a,13,468,514729715,-,ncfrag=0/1135;first part',
      expected: {
        facility: 1,
        severity: 5,
        kernel: {
          sequence: 468,
          sinceBootMicroseconds: 514729715,
          flags: '-',
          fragment: { offset: 0, total: 1135 },
          release: '6.13.0-04048-g4f561a87745a',
          dictionary: [],
        },
        text: 'first part',
      },
    },
    {
      name: 'a caller id field and the continuation flag',
      input: '4,7,100,c,caller=T1;partial',
      expected: { kernel: { sequence: 7, sinceBootMicroseconds: 100, flags: 'c', fragment: undefined, release: undefined, dictionary: [] }, text: 'partial' },
    },
    {
      name: 'a fragment cut inside the dictionary keeps everything as text',
      input: '6,9,9,-,ncfrag=990/1010;tail of text\n SUBSYSTEM=net\nDEVI',
      expected: { text: 'tail of text#012 SUBSYSTEM=net#012DEVI' },
    },
  ];
  for (const { name, input, expected, line } of extended) {
    test(`extended: ${name}`, () => {
      const parsed = message(input);
      assertFields(parsed, { format: 'netconsole', timestampText: undefined, appName: undefined, ...expected });
      if (line !== undefined) assert.equal(formatSyslogLine(parsed), line);
      assertPrintable(parsed);
    });
  }

  test('what only looks like an extended header is plain text', () => {
    for (const input of ['6,1,2,x;flag x is not a kernel flag', '192,1,2,-;level over 191', '6,1,-;too few fields', '12345,1,2,-;level of four digits']) {
      assertFields(message(input), { format: 'plain', kernel: undefined, text: input });
    }
  });
});

describe('malformed headers', () => {
  const long = (length: number): string => 'a'.repeat(length);
  const cases: Array<{ input: string; problem: string; offset: number }> = [
    { input: '', problem: 'empty message', offset: 0 },
    { input: '\n\r\x00', problem: 'empty message', offset: 0 },
    { input: '<', problem: 'PRI at byte 1: want a digit, found the end', offset: 1 },
    { input: '<>x', problem: "PRI at byte 1: want a digit, found '>'", offset: 1 },
    { input: '<-1>x', problem: "PRI at byte 1: want a digit, found '-'", offset: 1 },
    { input: '<1a>x', problem: "PRI at byte 1: want '>' at byte 2, found 'a'", offset: 2 },
    { input: '<13', problem: "PRI at byte 1: want '>' at byte 3, found the end", offset: 3 },
    { input: '<13 x', problem: "PRI at byte 1: want '>' at byte 3, found 0x20", offset: 3 },
    { input: '<1234>x', problem: 'PRI at byte 1 has more than 3 digits', offset: 1 },
    { input: '<192>1 - - - - - - x', problem: 'PRI 192 at byte 1 is over 191', offset: 1 },
    { input: '<999>Dec  6 15:24:34 app: x', problem: 'PRI 999 at byte 1 is over 191', offset: 1 },
    { input: '<13>2 - - - - - - x', problem: 'VERSION 2 at byte 4 is not 1', offset: 4 },
    { input: '<13>10 - - - - - - x', problem: 'VERSION 10 at byte 4 is not 1', offset: 4 },
    { input: '<13>999', problem: 'VERSION 999 at byte 4 is not 1', offset: 4 },
    { input: '<13>1', problem: 'RFC 5424 header ends at byte 5, before TIMESTAMP', offset: 5 },
    { input: '<13>1 ', problem: 'RFC 5424 header ends at byte 6, before TIMESTAMP', offset: 6 },
    { input: '<13>1 -', problem: 'RFC 5424 header ends at byte 7, before HOSTNAME', offset: 7 },
    { input: '<13>1 - h a p', problem: 'RFC 5424 header ends at byte 13, before MSGID', offset: 13 },
    { input: '<13>1 - h a p m', problem: 'RFC 5424 header ends at byte 15, before STRUCTURED-DATA', offset: 15 },
    { input: '<13>1 -  a p m - x', problem: 'HOSTNAME at byte 8 is empty (two spaces in a row)', offset: 8 },
    { input: `<13>1 - ${long(256)} a p m - x`, problem: 'HOSTNAME at byte 8 is 256 bytes long, over the RFC 5424 limit of 255', offset: 8 },
    { input: `<13>1 - h ${long(49)} p m - x`, problem: 'APP-NAME at byte 10 is 49 bytes long, over the RFC 5424 limit of 48', offset: 10 },
    { input: `<13>1 - h a ${long(129)} m - x`, problem: 'PROCID at byte 12 is 129 bytes long, over the RFC 5424 limit of 128', offset: 12 },
    { input: `<13>1 - h a p ${long(33)} - x`, problem: 'MSGID at byte 14 is 33 bytes long, over the RFC 5424 limit of 32', offset: 14 },
    { input: `<13>1 ${long(65)} h a p m - x`, problem: 'TIMESTAMP at byte 6 is 65 bytes long, over the RFC 5424 limit of 64', offset: 6 },
    { input: '<13>1 - ho\nst a p m - x', problem: 'HOSTNAME at byte 8 has byte 0x0a at byte 10, outside printable ASCII', offset: 10 },
    { input: '<13>1 - h\xc3\xa9 a p m - x', problem: 'HOSTNAME at byte 8 has byte 0xc3 at byte 9, outside printable ASCII', offset: 9 },
    { input: '<13>1 - h a\x7f p m - x', problem: 'APP-NAME at byte 10 has byte 0x7f at byte 11, outside printable ASCII', offset: 11 },
    { input: '<13>1 - h a p m x', problem: "STRUCTURED-DATA at byte 16: want '-' or '[', found 'x'", offset: 16 },
    { input: '<13>1 - h a p m -x', problem: "want a space after STRUCTURED-DATA at byte 17, found 'x'", offset: 17 },
    { input: '<13>1 - h a p m -[x]', problem: "want a space after STRUCTURED-DATA at byte 17, found '['", offset: 17 },
    { input: '<13>1 - h a p m [', problem: 'SD-ID at byte 17 is empty, found the end', offset: 17 },
    { input: '<13>1 - h a p m [] x', problem: "SD-ID at byte 17 is empty, found ']'", offset: 17 },
    { input: '<13>1 - h a p m [id', problem: "SD-ELEMENT \"id\": want ' ' or ']' at byte 19, found the end", offset: 19 },
    { input: `<13>1 - h a p m [${long(33)}] x`, problem: 'SD-ID at byte 17 is 33 bytes long, over the RFC 5424 limit of 32', offset: 17 },
    { input: '<13>1 - h a p m [i\x01d] x', problem: 'SD-ID at byte 17 has byte 0x01 at byte 18, outside printable ASCII', offset: 18 },
    { input: '<13>1 - h a p m [id a] x', problem: "PARAM-NAME \"a\": want '=' at byte 21, found ']'", offset: 21 },
    { input: '<13>1 - h a p m [id ="1"] x', problem: "PARAM-NAME at byte 20 is empty, found '='", offset: 20 },
    { input: '<13>1 - h a p m [id  a="1"] x', problem: 'PARAM-NAME at byte 20 is empty, found 0x20', offset: 20 },
    { input: '<13>1 - h a p m [id a=1] x', problem: "PARAM-VALUE at byte 22: want '\"', found '1'", offset: 22 },
    { input: '<13>1 - h a p m [id a=', problem: "PARAM-VALUE at byte 22: want '\"', found the end", offset: 22 },
    { input: '<13>1 - h a p m [id a="1] x', problem: "PARAM-VALUE at byte 22 has no closing '\"'", offset: 22 },
    { input: '<13>1 - h a p m [id a="1\\"]', problem: "PARAM-VALUE at byte 22 has no closing '\"'", offset: 22 },
    { input: '<13>1 - h a p m [id a="1"x] m', problem: "SD-ELEMENT \"id\": want ' ' or ']' at byte 25, found 'x'", offset: 25 },
    { input: '<13>1 - h a p m [id a="1"]x', problem: "want a space after STRUCTURED-DATA at byte 26, found 'x'", offset: 26 },
  ];
  for (const { input, problem: expected, offset } of cases) {
    test(`${JSON.stringify(input.length > 60 ? `${input.slice(0, 60)}...` : input)}: ${expected}`, () => {
      const result = problem(input);
      assert.equal(result.problem, expected);
      assert.equal(result.offset, offset);
      assertPrintable(result);
    });
  }

  test('a space between two SD elements ends the SD: the second is text', () => {
    assertFields(message('<13>1 - h a p m [id a="1"] [id2] x'), { structuredData: [{ id: 'id', params: [{ name: 'a', value: '1' }] }], text: '[id2] x' });
  });

  test('structured data over 8 KiB is a problem, in one value or many elements', () => {
    const oneValue = problem(`<13>1 - h a p m [id a="${'v'.repeat(9000)}"] x`);
    assert.equal(oneValue.problem, 'PARAM-VALUE at byte 22 is longer than 8192 bytes');
    const elements = problem(`<13>1 - h a p m ${'[id a="12345678"]'.repeat(600)} x`);
    assert.equal(elements.problem, 'STRUCTURED-DATA at byte 16 is longer than 8192 bytes');
    assert.equal(elements.offset, 16);
    assert.ok(elements.text.length <= maxTextBytes);
  });

  test('the text of a problem is made safe and cut too', () => {
    assert.equal(problem('<192>a\nforged\x1b[2J').text, '<192>a#012forged#033[2J');
    assert.equal(problem(`<999>${'x'.repeat(20000)}`).text.length, maxTextBytes);
  });
});

describe('forged lines and hostile bytes', () => {
  const cases: Array<{ name: string; input: string; field: keyof SyslogMessage; expected: unknown }> = [
    {
      name: 'a second syslog line inside the text',
      input: '<13>Dec  6 15:24:34 app: ok\n<13>Dec  6 15:24:35 sshd: Accepted password for root',
      field: 'text',
      expected: 'ok#012<13>Dec  6 15:24:35 sshd: Accepted password for root',
    },
    {
      name: 'CR to overwrite the line on a terminal',
      input: '<13>1 - h app - - - harmless\rrackboot: all hosts healthy',
      field: 'text',
      expected: 'harmless#015rackboot: all hosts healthy',
    },
    { name: 'ANSI escape sequences', input: '<13>Dec  6 15:24:34 app: \x1b[31mred\x1b[0m', field: 'text', expected: '#033[31mred#033[0m' },
    { name: 'DEL', input: '<13>Dec  6 15:24:34 app: a\x7fb', field: 'text', expected: 'a#177b' },
    { name: 'NUL inside the text', input: '<13>Dec  6 15:24:34 app: a\x00b', field: 'text', expected: 'a#000b' },
    { name: 'U+0085 NEXT LINE, a C1 control', input: '<13>Dec  6 15:24:34 app: a\xc2\x85b', field: 'text', expected: 'a#302#205b' },
    { name: 'U+009B, the one-byte CSI', input: '<13>Dec  6 15:24:34 app: a\xc2\x9b2Jb', field: 'text', expected: 'a#302#2332Jb' },
    { name: 'U+2028 LINE SEPARATOR', input: '<13>Dec  6 15:24:34 app: a\xe2\x80\xa8b', field: 'text', expected: 'a#342#200#250b' },
    { name: 'U+2029 PARAGRAPH SEPARATOR', input: '<13>Dec  6 15:24:34 app: a\xe2\x80\xa9b', field: 'text', expected: 'a#342#200#251b' },
    { name: 'tab is left alone', input: '<13>Dec  6 15:24:34 app: a\tb', field: 'text', expected: 'a\tb' },
    { name: 'a control character in the tag', input: '<13>Dec  6 15:24:34 ap\x1bp: x', field: 'appName', expected: 'ap#033p' },
    { name: 'a control character in the PID', input: '<13>Dec  6 15:24:34 app[1\x072]: x', field: 'procId', expected: '1#0072' },
    {
      name: 'LF in a structured data value',
      input: '<13>1 - h a - - [x@1 v="line\nbreak"] m',
      field: 'structuredData',
      expected: [{ id: 'x@1', params: [{ name: 'v', value: 'line#012break' }] }],
    },
    { name: 'LF in plain netconsole text', input: 'oops\n<13>forged', field: 'text', expected: 'oops#012<13>forged' },
    {
      name: 'a control character in a netconsole release',
      input: '6.1\x01x,6,1,2,-;t',
      field: 'kernel',
      expected: { sequence: 1, sinceBootMicroseconds: 2, flags: '-', fragment: undefined, release: '6.1#001x', dictionary: [] },
    },
  ];
  for (const { name, input, field, expected } of cases) {
    test(name, () => {
      const parsed = message(input);
      assert.deepEqual(parsed[field], expected);
      assertPrintable(parsed);
      assert.doesNotMatch(formatSyslogLine(parsed), unsafe);
    });
  }

  test('escapeControls on its own', () => {
    const cases: Array<[string, string]> = [
      ['', ''],
      ['nothing to do', 'nothing to do'],
      ['\x00\x01\x1f', '#000#001#037'],
      ['\t', '\t'],
      ['\n\r', '#012#015'],
      ['\u00a0 is printable', '\u00a0 is printable'],
      ['\ufffd stays', '\ufffd stays'],
      ['emoji \u{1f680} stays', 'emoji \u{1f680} stays'],
    ];
    for (const [input, expected] of cases) assert.equal(escapeControls(input), expected, JSON.stringify(input));
  });
});

describe('invalid UTF-8', () => {
  // Each case is what the WHATWG decoder makes of the bytes: one U+FFFD per
  // maximal bad subsequence.
  const cases: Array<[string, string, string]> = [
    ['a lone continuation byte', '\x80', '\ufffd'],
    ['a sequence cut short by the end', 'caf\xc3', 'caf\ufffd'],
    ['a sequence cut short by ASCII', '\xe2\x82x', '\ufffdx'],
    ['an overlong slash', '\xc0\xaf', '\ufffd\ufffd'],
    ['a UTF-16 surrogate', '\xed\xa0\x80', '\ufffd\ufffd\ufffd'],
    ['past U+10FFFF', '\xf4\x90\x80\x80', '\ufffd\ufffd\ufffd\ufffd'],
    ['0xff', '\xff', '\ufffd'],
    ['Latin-1 text', 'caf\xe9', 'caf\ufffd'],
  ];
  for (const [name, raw, text] of cases) {
    test(name, () => {
      assert.equal(message(`<13>Dec  6 15:24:34 app: ${raw}`).text, text, 'RFC 3164');
      assert.equal(message(`<13>1 - h a - - - ${raw}`).text, text, 'RFC 5424');
      assert.equal(message(`<13>1 - h a - - [x@1 v="${raw}"]`).structuredData[0]!.params[0]!.value, text, 'SD value');
      assert.equal(message(raw).text, text, 'plain');
    });
  }

  test('a BOM that is cut short is text, not a BOM', () => {
    assert.equal(message('<13>1 - h a - - - \xef\xbb').text, '\ufffd');
  });

  test('a BOM in RFC 3164 text is kept: only RFC 5424 gives it a meaning', () => {
    assert.equal(message('<13>Dec  6 15:24:34 app: \xef\xbb\xbfx').text, '\ufeffx');
  });
});

describe('truncation', () => {
  const header5424 = '<13>1 - h a - - - ';
  const cases: Array<{ name: string; input: string; text: string; truncated: boolean }> = [
    { name: 'exactly 8 KiB of text is kept whole', input: `${header5424}${'a'.repeat(maxTextBytes)}`, text: 'a'.repeat(maxTextBytes), truncated: false },
    { name: 'one byte more is cut', input: `${header5424}${'a'.repeat(maxTextBytes + 1)}`, text: 'a'.repeat(maxTextBytes), truncated: true },
    {
      name: 'a character across the limit goes whole, no U+FFFD',
      input: `${header5424}${'a'.repeat(maxTextBytes - 1)}\xc3\xa9tail`,
      text: 'a'.repeat(maxTextBytes - 1),
      truncated: true,
    },
    {
      name: 'a four-byte character across the limit',
      input: `${header5424}${'a'.repeat(maxTextBytes - 2)}\xf0\x9f\x9a\x80`,
      text: 'a'.repeat(maxTextBytes - 2),
      truncated: true,
    },
    {
      name: 'a character that ends at the limit stays',
      input: `${header5424}${'a'.repeat(maxTextBytes - 2)}\xc3\xa9tail`,
      text: `${'a'.repeat(maxTextBytes - 2)}\u00e9`,
      truncated: true,
    },
    {
      name: 'the BOM does not count',
      input: `${header5424}\xef\xbb\xbf${'a'.repeat(maxTextBytes)}`,
      text: 'a'.repeat(maxTextBytes),
      truncated: false,
    },
    {
      name: 'the trailing LF does not count',
      input: `${header5424}${'a'.repeat(maxTextBytes)}\n`,
      text: 'a'.repeat(maxTextBytes),
      truncated: false,
    },
    { name: 'RFC 3164', input: `<13>Dec  6 15:24:34 app: ${'b'.repeat(20000)}`, text: 'b'.repeat(maxTextBytes), truncated: true },
    { name: 'plain', input: 'c'.repeat(65000), text: 'c'.repeat(maxTextBytes), truncated: true },
    { name: 'netconsole', input: `6,1,2,-;${'d'.repeat(9000)}`, text: 'd'.repeat(maxTextBytes), truncated: true },
  ];
  for (const { name, input, text, truncated } of cases) {
    test(name, () => {
      const parsed = message(input);
      assert.equal(parsed.text, text);
      assert.equal(parsed.truncated, truncated);
    });
  }

  test('escapes are applied after the cut, so the text may grow past 8 KiB but never holds a control', () => {
    const parsed = message(`${header5424}${'\n'.repeat(maxTextBytes + 10)}x`);
    assert.equal(parsed.truncated, true);
    assert.equal(parsed.text, '#012'.repeat(maxTextBytes));
  });
});

describe('formatSyslogLine', () => {
  const cases: Array<{ name: string; input: string; line: string }> = [
    { name: 'RFC 3164 with a PID', input: '<30>Dec  6 15:24:34 udhcpc[7]: lease obtained', line: '2026-12-06T15:24:34.000Z udhcpc[7]: lease obtained' },
    { name: 'RFC 3164 without a tag', input: '<13>Dec  6 15:24:34 hello world', line: '2026-12-06T15:24:34.000Z hello world' },
    { name: 'RFC 3164 without a stamp', input: '<13>app: x', line: '2026-12-06T15:24:40.000Z app: x' },
    { name: 'a stamp that is not a date', input: '<13>Dec 32 25:00:00 app: x', line: '2026-12-06T15:24:40.000Z app: x' },
    { name: 'RFC 5424 with an offset, shown in UTC', input: '<13>1 2026-12-06T16:24:34.5+01:00 h app 42 - - x', line: '2026-12-06T15:24:34.500Z app[42]: x' },
    { name: 'RFC 5424 with nil APP-NAME but a PROCID', input: '<13>1 - h - 42 - - x', line: '2026-12-06T15:24:40.000Z x' },
    { name: 'the hostname is not shown', input: '<13>Dec  6 15:24:34 node7 app: x', line: '2026-12-06T15:24:34.000Z app: x' },
    { name: 'extended netconsole after 1000 seconds', input: '6,1,1000000001,-;x', line: '2026-12-06T15:24:40.000Z [ 1000.000001] x' },
    { name: 'plain text', input: 'x', line: '2026-12-06T15:24:40.000Z x' },
  ];
  for (const { name, input, line } of cases) {
    test(name, () => assert.equal(formatSyslogLine(message(input)), line));
  }

  test('an arrival time that is not a date shows as -', () => {
    assert.equal(formatSyslogLine(message('x', new Date(Number.NaN))), '- x');
  });
});

describe('splitTcpFrames (RFC 6587)', () => {
  const a = '<13>1 - h a - - - first';
  const b = '<13>Dec  6 15:24:34 app: second';
  const c = '<13>1 - h a - - - third\nhas an LF inside its count';
  const octet = (frame: string): string => `${Buffer.byteLength(frame, 'latin1')} ${frame}`;

  const cases: Array<{ name: string; stream: string; frames: string[]; rest: string }> = [
    { name: 'nothing', stream: '', frames: [], rest: '' },
    { name: 'one LF-framed message', stream: `${a}\n`, frames: [a], rest: '' },
    { name: 'two LF-framed messages', stream: `${a}\n${b}\n`, frames: [a, b], rest: '' },
    { name: 'an LF-framed message still arriving', stream: `${a}\n${b}`, frames: [a], rest: b },
    { name: 'CR LF: the CR stays for parseSyslog to drop', stream: `${a}\r\n${b}\r\n`, frames: [`${a}\r`, `${b}\r`], rest: '' },
    { name: 'one octet-counted message', stream: octet(a), frames: [a], rest: '' },
    { name: 'octet counting carries an LF inside', stream: octet(c) + octet(a), frames: [c, a], rest: '' },
    { name: 'mixed: counted, LF, counted', stream: `${octet(a)}${b}\n${octet(c)}`, frames: [a, b, c], rest: '' },
    { name: 'mixed: LF, counted, LF', stream: `${b}\n${octet(c)}${a}\n`, frames: [b, c, a], rest: '' },
    { name: 'an LF after a counted frame is skipped', stream: `${octet(a)}\n${octet(b)}\n`, frames: [a, b], rest: '' },
    { name: 'blank lines between LF frames are skipped', stream: `\n\r\n${a}\n\n${b}\n`, frames: [a, b], rest: '' },
    { name: 'a length still arriving', stream: `${octet(a)}2`, frames: [a], rest: '2' },
    { name: 'a length without its space yet', stream: '23', frames: [], rest: '23' },
    { name: 'a length and part of its frame', stream: '23 <13>1 -', frames: [], rest: '23 <13>1 -' },
    { name: "a frame of just '<'", stream: '<\n', frames: ['<'], rest: '' },
  ];
  for (const { name, stream, frames, rest } of cases) {
    test(name, () => {
      const result = splitTcpFrames(bytes(stream));
      assert.equal(result.problem, undefined);
      assert.deepEqual(
        result.frames.map((frame) => frame.toString('latin1')),
        frames,
      );
      assert.equal(result.rest.toString('latin1'), rest);
    });
  }

  const problems: Array<{ name: string; stream: Buffer; problem: string; frames: number; rest: number }> = [
    {
      name: 'a letter where a frame should start',
      stream: bytes('hello\n'),
      problem: "frame at byte 0 starts with 'h': neither a length (octet counting) nor '<' (LF framing)",
      frames: 0,
      rest: 6,
    },
    {
      name: 'a control byte where a frame should start, after a good frame',
      stream: bytes(`${a}\n\x16\x03\x01`),
      problem: "frame at byte 24 starts with 0x16: neither a length (octet counting) nor '<' (LF framing)",
      frames: 1,
      rest: 3,
    },
    { name: 'a length starting with 0', stream: bytes('0 '), problem: 'frame length at byte 0 starts with 0', frames: 0, rest: 2 },
    { name: 'a length of 012', stream: bytes('012 <13>x'), problem: 'frame length at byte 0 starts with 0', frames: 0, rest: 9 },
    { name: 'six digits', stream: bytes('100000 '), problem: 'frame length at byte 0 has more than 5 digits, over the limit of 65536', frames: 0, rest: 7 },
    {
      name: 'six digits still arriving',
      stream: bytes('999999'),
      problem: 'frame length at byte 0 has more than 5 digits, over the limit of 65536',
      frames: 0,
      rest: 6,
    },
    { name: '65537', stream: bytes('65537 <'), problem: 'frame length 65537 at byte 0 is over the limit of 65536', frames: 0, rest: 7 },
    {
      name: 'a length followed by a letter',
      stream: bytes('12x'),
      problem: "frame length at byte 0 is followed by 'x' at byte 2, want a space",
      frames: 0,
      rest: 3,
    },
    {
      name: 'a length followed by an LF',
      stream: bytes('12\n'),
      problem: 'frame length at byte 0 is followed by 0x0a at byte 2, want a space',
      frames: 0,
      rest: 3,
    },
    {
      name: 'an LF frame longer than 64 KiB',
      stream: Buffer.concat([bytes('<13>'), Buffer.alloc(maxFrameBytes, 0x61), bytes('\n')]),
      problem: 'frame at byte 0 has no LF within 65536 bytes',
      frames: 0,
      rest: maxFrameBytes + 5,
    },
    {
      name: 'an LF frame over 64 KiB still arriving',
      stream: Buffer.concat([bytes('<'), Buffer.alloc(maxFrameBytes, 0x61)]),
      problem: 'frame at byte 0 has no LF within 65536 bytes',
      frames: 0,
      rest: maxFrameBytes + 1,
    },
  ];
  for (const { name, stream, problem: expected, frames, rest } of problems) {
    test(`problem: ${name}`, () => {
      const result = splitTcpFrames(stream);
      assert.equal(result.problem, expected);
      assert.equal(result.frames.length, frames);
      assert.equal(result.rest.length, rest);
    });
  }

  test('the largest frames pass: 65536 bytes counted, 65536 bytes before an LF', () => {
    const counted = splitTcpFrames(Buffer.concat([bytes('65536 '), Buffer.alloc(maxFrameBytes, 0x61)]));
    assert.equal(counted.problem, undefined);
    assert.equal(counted.frames[0]?.length, maxFrameBytes);
    const lined = splitTcpFrames(Buffer.concat([bytes('<'), Buffer.alloc(maxFrameBytes - 1, 0x61), bytes('\n')]));
    assert.equal(lined.problem, undefined);
    assert.equal(lined.frames[0]?.length, maxFrameBytes);
  });

  test('a stream split in two at every byte gives the same frames', () => {
    const stream = bytes(`${octet(a)}${b}\n${octet(c)}\n${a}\r\n${octet('<13>1 - h a - - - caf\xc3\xa9')}`);
    const whole = feed([stream]);
    assert.equal(whole.problem, undefined);
    assert.equal(whole.frames.length, 5);
    for (let at = 0; at <= stream.length; at += 1) {
      const split = feed([stream.subarray(0, at), stream.subarray(at)]);
      assert.deepEqual(split, whole, `split at byte ${at}`);
    }
  });

  test('a stream fed one byte at a time gives the same frames', () => {
    const stream = bytes(`${octet(c)}${b}\n${octet(a)}`);
    const oneByOne = feed(Array.from(stream, (byte) => Buffer.from([byte])));
    assert.deepEqual(oneByOne, feed([stream]));
  });

  test('a frame split in two buffers parses once it is whole', () => {
    const frame = '<13>Dec  6 15:24:34 app: x';
    const first = splitTcpFrames(bytes(`${frame.length} ${frame.slice(0, 20)}`));
    assert.deepEqual(first.frames, []);
    const second = splitTcpFrames(Buffer.concat([first.rest, bytes(`${frame.slice(20)}<13>1 - h a - - - y\n`)]));
    assert.deepEqual(
      second.frames.map((frame) => message(frame).text),
      ['x', 'y'],
    );
    assert.equal(second.rest.length, 0);
  });

  test('frames before a problem are kept; rest starts at the fault', () => {
    const result = splitTcpFrames(bytes(`${octet(a)}${b}\nGET / HTTP/1.1\r\n`));
    assert.deepEqual(
      result.frames.map((frame) => frame.toString('latin1')),
      [a, b],
    );
    assert.equal(result.rest.toString('latin1'), 'GET / HTTP/1.1\r\n');
    assert.match(result.problem ?? '', /^frame at byte \d+ starts with 'G'/);
  });
});

describe('random bytes', () => {
  const seed = Number(process.env.RACKBOOT_FUZZ_SEED ?? Date.now() % 2 ** 31);

  /** Random datagrams: pure noise, and real-looking messages with bytes flipped, cut or inserted. */
  function datagramMaker(next: () => number): () => Buffer {
    const int = (max: number): number => Math.floor(next() * max);
    const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
    const noise = (length: number): Buffer => Buffer.from(Array.from({ length }, () => int(256)));
    const seeds = [
      '<13>Dec  6 15:24:34 dhcp: udhcpc: lease of 198.18.0.15 obtained\n',
      '<30>Dec  6 15:24:41 udhcpc[18175]: started, v1.35.0\n',
      '<86>Feb 29 15:24:34 node7 sshd[812]: Accepted publickey',
      '<133>1 2026-12-06T15:27:15.982673+00:00 vm rackboot-agent - BOOT [timeQuality tzKnown="1" isSynced="0"][b@1 n="q \\" \\\\ \\]"] fetched',
      '<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% do-nuts',
      "<34>1 2003-10-11T22:14:15.003Z mymachine su - ID47 - \xef\xbb\xbf'su root' failed",
      '<30>2026-12-06T15:24:34.123456+00:00 node7 systemd[1]: Reached target',
      '6,339,5140900,-;NET: Registered PF_PACKET protocol family\n SUBSYSTEM=net\n',
      '6.13.0-04048-g4f561a87745a,13,468,514729715,-,ncfrag=0/1135;first part',
      '[    0.000000] Linux version 6.1.0\n',
    ].map(bytes);
    const structural = [0x3c, 0x3e, 0x20, 0x5b, 0x5d, 0x22, 0x5c, 0x3d, 0x2c, 0x3b, 0x3a, 0x0a, 0x00, 0x2d, 0x31, 0xef, 0xc3, 0x80, 0xff];
    return () => {
      const choice = int(10);
      if (choice === 0) return noise(int(300));
      if (choice === 1) return Buffer.concat([bytes(pick(['<', '<1', '<13>', '<13>1 ', '6,'])), noise(int(100))]);
      const copy = Buffer.from(pick(seeds));
      for (let edits = int(4) + 1; edits > 0; edits -= 1) {
        const at = int(copy.length);
        switch (int(4)) {
          case 0:
            copy[at] = int(256);
            break;
          case 1:
            copy[at] = pick(structural);
            break;
          case 2:
            return Buffer.concat([copy.subarray(0, at), bytes(pick(['\\', '"', ']', '[', ' ', '\n'])), copy.subarray(at)]);
          default:
            return copy.subarray(0, at);
        }
      }
      return copy;
    };
  }

  test('parseSyslog never throws and its strings are always printable', (t) => {
    t.diagnostic(`RACKBOOT_FUZZ_SEED=${seed}`);
    const next = seededRandom(seed);
    const make = datagramMaker(next);
    const at = new Date(Date.UTC(2020 + Math.floor(next() * 10), Math.floor(next() * 12), 1 + Math.floor(next() * 28)));
    for (let round = 0; round < 20000; round += 1) {
      const datagram = make();
      let result: SyslogResult;
      try {
        result = parseSyslog(datagram, at);
      } catch (err) {
        assert.fail(`seed ${seed}, round ${round}: ${datagram.toString('hex')} threw ${String(err)}`);
      }
      assert.ok(result.kind === 'message' || result.kind === 'problem');
      assertPrintable(result);
      if (result.kind === 'problem') {
        assert.ok(result.offset >= 0 && result.offset <= datagram.length, `offset ${result.offset} inside ${datagram.length} bytes`);
      } else {
        assert.doesNotMatch(formatSyslogLine(result), unsafe);
        if (result.severity !== undefined) assert.ok(result.severity >= 0 && result.severity <= 7);
        if (result.facility !== undefined) assert.ok(result.facility >= 0 && result.facility <= 23);
        if (result.timestamp !== undefined) assert.ok(!Number.isNaN(result.timestamp.getTime()));
      }
    }
  });

  test('splitTcpFrames never throws and gives the same frames however the stream is cut', (t) => {
    t.diagnostic(`RACKBOOT_FUZZ_SEED=${seed}`);
    const next = seededRandom(seed + 1);
    const make = datagramMaker(next);
    for (let round = 0; round < 500; round += 1) {
      const parts: Buffer[] = [];
      for (let count = Math.floor(next() * 6); count > 0; count -= 1) {
        const datagram = make();
        if (next() < 0.5) parts.push(bytes(`${datagram.length} `), datagram);
        else parts.push(datagram, bytes('\n'));
      }
      const stream = Buffer.concat(parts);
      const whole = feed([stream]);
      for (const frame of whole.frames) assert.ok(frame.length <= maxFrameBytes);
      const cuts: Buffer[] = [];
      for (let at = 0; at < stream.length;) {
        const size = 1 + Math.floor(next() * 40);
        cuts.push(stream.subarray(at, at + size));
        at += size;
      }
      // After a problem the rest and the byte offsets in the message depend
      // on where the chunks were cut; the frames and the fault do not.
      const chunked = feed(cuts);
      const context = `seed ${seed}, round ${round}: ${stream.toString('hex')}`;
      assert.deepEqual(chunked.frames, whole.frames, context);
      assert.equal(chunked.problem?.replace(/[0-9]+/g, 'N'), whole.problem?.replace(/[0-9]+/g, 'N'), context);
      if (whole.problem === undefined) assert.equal(chunked.rest, whole.rest, context);
      for (const frame of whole.frames) parseSyslog(bytes(frame), receivedAt);
    }
  });
});
