import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ErrorCode, errorCodeName, Opcode, opcodeName } from '../../server/tftp/wire/codes.js';
import {
  decodePacket,
  describePacket,
  encodePacket,
  encodingLength,
  MalformedPacketError,
  tryDecodePacket,
  type TftpPacket,
} from '../../server/tftp/wire/packet.js';
import { negotiateOptions } from '../../server/tftp/wire/options.js';
import { checkEncoder as checkCodec } from '../support/codec.js';
import { readPcap } from '../support/pcap.js';

const fixtures = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url));

/** The shared codec checks (test/support/codec.ts) for a TFTP packet. */
function checkEncoder(packet: TftpPacket): Buffer {
  return checkCodec({ encodePacket, decodePacket, encodingLength }, packet);
}

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/gu, ''), 'hex');

describe('TFTP packet codec', () => {
  test('decodes the RRQs OVMF and iPXE sent in test/fixtures/ovmf-x64-uefi-pxe.pcap and re-encodes them byte for byte', () => {
    const requests = readPcap(`${fixtures}ovmf-x64-uefi-pxe.pcap`).filter((datagram) => datagram.destination.port === 69);
    assert.equal(requests.length, 3);
    const decoded = requests.map((datagram) => decodePacket(datagram.payload));
    assert.deepEqual(decoded, [
      {
        // OVMF 2022.11 UEFI PXE: the size probe, aborted after the OACK.
        kind: 'readRequest',
        fileName: 'ipxe.efi',
        mode: 'octet',
        options: [
          { name: 'tsize', value: '0' },
          { name: 'blksize', value: '1468' },
          { name: 'windowsize', value: '4' },
        ],
      },
      {
        // ...and the real download from a new port.
        kind: 'readRequest',
        fileName: 'ipxe.efi',
        mode: 'octet',
        options: [
          { name: 'blksize', value: '1468' },
          { name: 'windowsize', value: '4' },
        ],
      },
      {
        // The chained ipxe.efi fetching its script.
        kind: 'readRequest',
        fileName: 'boot.ipxe',
        mode: 'octet',
        options: [
          { name: 'blksize', value: '1432' },
          { name: 'tsize', value: '0' },
        ],
      },
    ]);
    decoded.forEach((packet, i) => assert.deepEqual(encodePacket(packet), requests[i]!.payload));
  });

  test('answers the OVMF probe with the real size, its block size and its window', () => {
    const [probe] = readPcap(`${fixtures}ovmf-x64-uefi-pxe.pcap`).filter((datagram) => datagram.destination.port === 69);
    const request = decodePacket(probe!.payload);
    assert.equal(request.kind, 'readRequest');
    if (request.kind !== 'readRequest') return;
    const negotiated = negotiateOptions(request.options, 1_048_576);
    const oack = encodePacket({ kind: 'optionAcknowledgement', options: negotiated.acknowledged });
    assert.deepEqual(oack, Buffer.from('\x00\x06tsize\x001048576\x00blksize\x001468\x00windowsize\x004\x00', 'latin1'));
    assert.equal(negotiated.blockSize, 1468);
    assert.equal(negotiated.windowSize, 4);
  });

  test('round-trips every packet kind', () => {
    checkEncoder({ kind: 'readRequest', fileName: 'pxelinux.0', mode: 'octet', options: [] });
    checkEncoder({ kind: 'writeRequest', fileName: 'upload.bin', mode: 'netascii', options: [{ name: 'tsize', value: '100' }] });
    checkEncoder({ kind: 'data', block: 0, data: Buffer.alloc(0) });
    checkEncoder({ kind: 'data', block: 65535, data: Buffer.from('hello') });
    checkEncoder({ kind: 'acknowledgement', block: 0 });
    checkEncoder({ kind: 'acknowledgement', block: 65535 });
    checkEncoder({ kind: 'error', code: ErrorCode.fileNotFound, message: 'file not found' });
    checkEncoder({ kind: 'error', code: 4242, message: '' });
    checkEncoder({ kind: 'optionAcknowledgement', options: [{ name: 'blksize', value: '1468' }] });
  });

  test('encodes the exact RFC 1350 layouts', () => {
    assert.deepEqual(encodePacket({ kind: 'acknowledgement', block: 258 }), hex('0004 0102'));
    assert.deepEqual(encodePacket({ kind: 'data', block: 1, data: Buffer.from('ab') }), hex('0003 0001 6162'));
    assert.deepEqual(encodePacket({ kind: 'error', code: 2, message: 'no' }), hex('0005 0002 6e6f 00'));
    assert.deepEqual(
      encodePacket({ kind: 'readRequest', fileName: 'a', mode: 'octet', options: [{ name: 'tsize', value: '0' }] }),
      hex('0001 61 00 6f63746574 00 7473697a65 00 30 00'),
    );
  });

  test('lower-cases mode, option names and option values (RFC 1350, RFC 2347)', () => {
    const packet = decodePacket(Buffer.from('\x00\x01File.BIN\x00OcTeT\x00BLKSIZE\x001024\x00X-Custom\x00Yes\x00', 'latin1'));
    assert.deepEqual(packet, {
      kind: 'readRequest',
      fileName: 'File.BIN', // file names keep their case: the disk is case-sensitive
      mode: 'octet',
      options: [
        { name: 'blksize', value: '1024' },
        { name: 'x-custom', value: 'yes' },
      ],
    });
  });

  test('keeps 0xFF and other high bytes of a file name, one character per byte', () => {
    const bytes = Buffer.from('\x00\x01pxelinux.0\xff\xff\x00octet\x00', 'latin1');
    const packet = decodePacket(bytes);
    assert.equal(packet.kind, 'readRequest');
    if (packet.kind === 'readRequest') assert.equal(packet.fileName, 'pxelinux.0\u00ff\u00ff');
    assert.deepEqual(encodePacket(packet), bytes);
  });

  test('skips extra NULs between file name and mode (NUL padded file name from old PXE ROMs)', () => {
    const packet = decodePacket(Buffer.from('\x00\x01pxelinux.0\x00\x00\x00octet\x00', 'latin1'));
    assert.deepEqual(packet, { kind: 'readRequest', fileName: 'pxelinux.0', mode: 'octet', options: [] });
  });

  test('ignores NUL padding after the last option', () => {
    const packet = decodePacket(Buffer.from('\x00\x01f\x00octet\x00tsize\x000\x00\x00\x00\x00\x00', 'latin1'));
    assert.deepEqual(packet, { kind: 'readRequest', fileName: 'f', mode: 'octet', options: [{ name: 'tsize', value: '0' }] });
  });

  test('ignores bytes after the block number of an ACK', () => {
    assert.deepEqual(decodePacket(hex('0004 0007 0000')), { kind: 'acknowledgement', block: 7 });
  });

  test('accepts an ERROR message without its terminating NUL', () => {
    assert.deepEqual(decodePacket(Buffer.from('\x00\x05\x00\x08abort', 'latin1')), { kind: 'error', code: 8, message: 'abort' });
  });

  const malformed: Array<[string, Buffer, string]> = [
    ['empty datagram', hex(''), 'packet has 0 bytes, want at least 2 for the opcode'],
    ['one byte', hex('00'), 'packet has 1 byte, want at least 2 for the opcode'],
    ['opcode 0', hex('0000 0000'), 'unknown opcode 0'],
    ['opcode 7', hex('0007'), 'unknown opcode 7'],
    ['RRQ without anything', hex('0001'), 'RRQ file name is not terminated by a NUL byte'],
    ['RRQ with an empty name', hex('0001 00 6f6374657400'), 'RRQ has an empty file name'],
    ['RRQ name without NUL', Buffer.from('\x00\x01pxelinux.0', 'latin1'), 'RRQ file name is not terminated by a NUL byte'],
    ['RRQ without mode', Buffer.from('\x00\x01pxelinux.0\x00', 'latin1'), 'RRQ for "pxelinux.0" has no transfer mode'],
    ['RRQ mode without NUL', Buffer.from('\x00\x01f\x00octet', 'latin1'), 'RRQ transfer mode is not terminated by a NUL byte'],
    ['WRQ mode without NUL', Buffer.from('\x00\x02f\x00octet', 'latin1'), 'WRQ transfer mode is not terminated by a NUL byte'],
    ['option without value', Buffer.from('\x00\x01f\x00octet\x00blksize\x00', 'latin1'), 'RRQ option "blksize" has no value'],
    ['option name without NUL', Buffer.from('\x00\x01f\x00octet\x00blksize', 'latin1'), 'RRQ option name at byte 10 is not terminated by a NUL byte'],
    ['option value without NUL', Buffer.from('\x00\x01f\x00octet\x00blksize\x001468', 'latin1'), 'RRQ option "blksize" value is not terminated by a NUL byte'],
    ['empty option name inside', Buffer.from('\x00\x01f\x00octet\x00\x00x\x00', 'latin1'), 'RRQ option 1 at byte 10 has an empty name'],
    ['short DATA', hex('0003 00'), 'DATA packet has 3 bytes, want at least 4'],
    ['short ACK', hex('0004 00'), 'ACK packet has 3 bytes, want 4'],
    ['short ERROR', hex('0005 00'), 'ERROR packet has 3 bytes, want at least 4'],
    ['empty OACK', hex('0006'), 'OACK carries no options'],
    ['OACK option without value', Buffer.from('\x00\x06tsize\x00', 'latin1'), 'OACK option "tsize" has no value'],
  ];
  for (const [what, bytes, message] of malformed) {
    test(`rejects ${what}: "${message}"`, () => {
      assert.throws(
        () => decodePacket(bytes),
        (err: unknown) => {
          assert.ok(err instanceof MalformedPacketError);
          assert.equal(err.message, message);
          return true;
        },
      );
      assert.deepEqual(tryDecodePacket(bytes), { kind: 'malformed', reason: message });
    });
  }

  test('refuses to encode what cannot go on the wire', () => {
    assert.throws(() => encodePacket({ kind: 'acknowledgement', block: 65536 }), /block number 65536 does not fit in 16 bits/u);
    assert.throws(() => encodePacket({ kind: 'data', block: -1, data: Buffer.alloc(0) }), /block number -1/u);
    assert.throws(() => encodePacket({ kind: 'error', code: 70000, message: '' }), /error code 70000/u);
    assert.throws(() => encodePacket({ kind: 'readRequest', fileName: 'a\0b', mode: 'octet', options: [] }), /file name contains a NUL byte at 1/u);
    assert.throws(() => encodePacket({ kind: 'readRequest', fileName: '', mode: 'octet', options: [] }), /file name is empty/u);
    assert.throws(() => encodePacket({ kind: 'readRequest', fileName: 'é€', mode: 'octet', options: [] }), /character above 0xFF at 1/u);
  });

  test('describes packets for logs', () => {
    assert.equal(describePacket({ kind: 'acknowledgement', block: 3 }), 'ACK 3');
    assert.equal(
      describePacket({ kind: 'readRequest', fileName: 'ipxe.efi', mode: 'octet', options: [{ name: 'tsize', value: '0' }] }),
      'RRQ "ipxe.efi" octet tsize=0',
    );
  });

  test('code tables map both ways and keep unknown numbers visible', () => {
    assert.equal(opcodeName(Opcode.optionAcknowledgement), 'optionAcknowledgement');
    assert.equal(opcodeName(9), 'opcode 9');
    assert.equal(errorCodeName(ErrorCode.optionsRefused), 'optionsRefused');
    assert.equal(errorCodeName(99), 'error 99');
    assert.equal(new Set(Object.values(ErrorCode)).size, Object.keys(ErrorCode).length);
    assert.equal(new Set(Object.values(Opcode)).size, Object.keys(Opcode).length);
  });

  test('property: any byte string decodes to a packet or raises MalformedPacketError, and what decodes re-encodes stably', () => {
    // Half the inputs start with a valid opcode so the deeper paths get exercised.
    const datagram = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      fc
        .tuple(fc.integer({ min: 1, max: 6 }), fc.array(fc.oneof(fc.constantFrom(0, 0xff, 0x41), fc.integer({ min: 0, max: 255 })), { maxLength: 64 }))
        .map(([opcode, rest]) => Uint8Array.from([0, opcode, ...rest])),
    );
    fc.assert(
      fc.property(datagram, (bytes) => {
        let packet: TftpPacket;
        try {
          packet = decodePacket(bytes);
        } catch (err) {
          return err instanceof MalformedPacketError;
        }
        const again = decodePacket(encodePacket(packet));
        assert.deepEqual(again, packet);
        return true;
      }),
      { numRuns: 20_000 },
    );
  });

  test('property: generated packets round-trip', () => {
    const text = fc.string({ unit: fc.integer({ min: 1, max: 255 }).map((code) => String.fromCharCode(code)), maxLength: 20 });
    const lower = text.map((value) => value.toLowerCase());
    // fast-check builds records without a prototype; strict deepEqual wants plain objects.
    const option = fc.record({ name: lower.filter((name) => name.length > 0), value: lower }).map((o) => ({ ...o }));
    const packet: fc.Arbitrary<TftpPacket> = fc.oneof(
      fc.record({
        kind: fc.constantFrom('readRequest' as const, 'writeRequest' as const),
        fileName: text.filter((name) => name.length > 0),
        mode: lower.filter((mode) => mode.length > 0),
        options: fc.array(option, { maxLength: 4 }),
      }),
      fc.record({
        kind: fc.constant('data' as const),
        block: fc.integer({ min: 0, max: 65535 }),
        data: fc.uint8Array({ maxLength: 32 }).map((bytes) => Buffer.from(bytes)),
      }),
      fc.record({ kind: fc.constant('acknowledgement' as const), block: fc.integer({ min: 0, max: 65535 }) }),
      fc.record({ kind: fc.constant('error' as const), code: fc.integer({ min: 0, max: 65535 }), message: text }),
      fc.record({ kind: fc.constant('optionAcknowledgement' as const), options: fc.array(option, { minLength: 1, maxLength: 4 }) }),
    );
    fc.assert(
      fc.property(packet, (generated) => {
        checkEncoder({ ...generated });
      }),
      { numRuns: 5_000 },
    );
  });
});
