import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { DhcpDecodeError, DhcpEncodeError, dhcpDecodeErrorCodes } from '../../server/dhcp/wire/errors.js';
import { decodeSubOptions, encodeSubOptions } from '../../server/dhcp/wire/options.js';
import { decodePacket, encodePacket, encodingLength, minimumPacketLength, type DhcpPacket } from '../../server/dhcp/wire/packet.js';
import { renderPacket } from '../../server/dhcp/wire/packet-text.js';
import { checkEncoder as checkCodec } from '../support/codec.js';
import { clientRequest, fixtureDhcp, fixtureNames, repoRoot } from '../support/dhcp.js';

/** The shared codec checks (test/support/codec.ts), and DHCP's floor of 300 bytes (RFC 1542 section 3.1.1). */
function checkEncoder(packet: DhcpPacket): Buffer {
  const bytes = checkCodec({ encodePacket, decodePacket, encodingLength }, packet);
  assert.ok(bytes.length >= minimumPacketLength, 'at least 300 bytes');
  return bytes;
}

describe('fixture captures', () => {
  for (const name of fixtureNames) {
    test(`${name}: matches the golden rendering`, () => {
      const rendered = fixtureDhcp(name)
        .map(
          (d) =>
            `# frame ${d.frame}: ${d.source.address}:${d.source.port} > ${d.destination.address}:${d.destination.port}, ${d.payload.length} bytes\n` +
            renderPacket(decodePacket(d.payload)),
        )
        .join('\n');
      const goldenPath = path.join(repoRoot, 'test', 'dhcp', 'golden', `${name}.txt`);
      if (process.env.UPDATE_GOLDEN === '1') writeFileSync(goldenPath, rendered);
      assert.equal(rendered, readFileSync(goldenPath, 'utf8'), `differs from ${goldenPath}; UPDATE_GOLDEN=1 rewrites it`);
    });

    test(`${name}: every packet re-encodes to the captured bytes`, () => {
      const datagrams = fixtureDhcp(name);
      assert.ok(datagrams.length >= 4, 'has DHCP traffic');
      for (const { frame, payload } of datagrams) {
        const packet = decodePacket(payload);
        assert.deepEqual(encodePacket(packet), payload, `frame ${frame}`);
        assert.equal(encodingLength(packet), payload.length, `frame ${frame} length`);
        assert.deepEqual(decodePacket(encodePacket(packet)), packet, `frame ${frame} decode/encode/decode`);
      }
    });
  }

  test('the UEFI PXE discover decodes to the expected values', () => {
    const packet = decodePacket(fixtureDhcp('ovmf-x64-uefi-pxe')[0]!.payload);
    assert.equal(packet.op, 1);
    assert.equal(packet.transactionId, 0x2230700c);
    assert.equal(packet.broadcast, true);
    assert.equal(packet.options.messageType, 1);
    assert.equal(packet.options.maxMessageSize, 1472);
    assert.deepEqual(packet.options.clientArch, [7]);
    assert.deepEqual(packet.options.networkInterfaceId, { type: 1, major: 3, minor: 0 });
    assert.equal(packet.options.vendorClass, 'PXEClient:Arch:00007:UNDI:003000');
    assert.deepEqual(packet.options.clientMachineId, { type: 0, id: Buffer.alloc(16) });
    assert.equal(packet.options.parameterRequestList?.length, 35);
    assert.equal(packet.rawOptions, undefined);
  });

  test("dnsmasq's NUL-terminated option 67 reads without the NUL and is written back with it", () => {
    const offer = fixtureDhcp('ovmf-x64-uefi-httpboot')[1]!.payload;
    const packet = decodePacket(offer);
    assert.equal(packet.options.bootFileName, 'http://198.18.0.1:8080/ipxe.efi');
    assert.equal(packet.options.vendorClass, 'HTTPClient');
    assert.deepEqual(encodePacket(packet), offer);
  });
});

/** A request header and cookie followed by the given option bytes. */
function withOptions(optionBytes: number[], edit?: (buf: Buffer) => void): Buffer {
  const buf = Buffer.concat([encodePacket(clientRequest({ options: {} })).subarray(0, 240), Buffer.from(optionBytes)]);
  edit?.(buf);
  return buf;
}

describe('decoding', () => {
  test('PAD runs are skipped, and options after a missing END are read to the end of the packet', () => {
    const packet = decodePacket(withOptions([0, 0, 0, 53, 1, 3, 0, 0, 12, 3, 0x61, 0x62, 0x63]));
    assert.deepEqual(packet.options, { messageType: 3, hostname: 'abc' });
  });

  test('nothing after END is read', () => {
    const packet = decodePacket(withOptions([53, 1, 1, 255, 12, 99]));
    assert.deepEqual(packet.options, { messageType: 1 });
  });

  test('instances of one option are concatenated in order (RFC 3396)', () => {
    const packet = decodePacket(withOptions([12, 2, 0x61, 0x62, 53, 1, 1, 12, 1, 0x63, 255]));
    assert.equal(packet.options.hostname, 'abc');
    assert.deepEqual(Object.keys(packet.options), ['hostname', 'messageType'], 'first instance fixes the order');
  });

  test('option overload (52) reads options from file, then sname, after the options field', () => {
    const buf = withOptions([52, 1, 3, 12, 1, 0x61, 255]);
    Buffer.from([12, 1, 0x62, 67, 3, 0x78, 0x2e, 0x79, 255]).copy(buf, 108); // file field
    Buffer.from([12, 1, 0x63, 53, 1, 1, 255]).copy(buf, 44); // sname field
    const packet = decodePacket(buf);
    assert.equal(packet.options.hostname, 'abc');
    assert.equal(packet.options.bootFileName, 'x.y');
    assert.equal(packet.options.messageType, 1);
    assert.equal(packet.bootFile, '', 'an overloaded file field is not a file name');
    assert.equal(packet.serverName, '');
    // Written back without overload; the value survives.
    assert.deepEqual(decodePacket(encodePacket(packet)), packet);
  });

  test('overload of the file field only leaves sname a name', () => {
    const buf = withOptions([52, 1, 1, 255]);
    Buffer.from('server-a').copy(buf, 44);
    Buffer.from([12, 1, 0x62, 255]).copy(buf, 108);
    const packet = decodePacket(buf);
    assert.equal(packet.serverName, 'server-a');
    assert.equal(packet.bootFile, '');
    assert.equal(packet.options.hostname, 'b');
  });

  test('options without a codec are kept raw, concatenated, and written back', () => {
    const packet = decodePacket(withOptions([53, 1, 1, 235, 2, 9, 8, 119, 1, 7, 235, 1, 7, 255]));
    assert.deepEqual(
      packet.rawOptions,
      new Map([
        [235, Buffer.from([9, 8, 7])],
        [119, Buffer.from([7])],
      ]),
    );
    checkEncoder(packet);
  });

  test('a BOOTREPLY, hlen 0 and the full 16-byte chaddr decode', () => {
    assert.equal(decodePacket(withOptions([255], (b) => (b[0] = 2))).op, 2);
    assert.equal(decodePacket(withOptions([255], (b) => (b[2] = 0))).hardwareAddress.length, 0);
    assert.equal(decodePacket(withOptions([255], (b) => (b[2] = 16))).hardwareAddress.length, 16);
  });

  test('sub-options of 43 and 175 decode; a sub-option that overruns its option is an error', () => {
    assert.deepEqual(decodeSubOptions(Buffer.from([6, 1, 8, 0, 9, 0, 255, 1]), 43), [
      { code: 6, data: Buffer.from([8]) },
      { code: 9, data: Buffer.alloc(0) },
    ]);
    assert.throws(() => decodeSubOptions(Buffer.from([6, 3, 8]), 43), {
      name: 'DhcpDecodeError',
      code: 'OPTION_VALUE',
      message: 'option 43 sub-option 6 overruns the option',
    });
    assert.deepEqual(encodeSubOptions([{ code: 6, data: Buffer.from([8]) }]), Buffer.from([6, 1, 8, 255]));
  });
});

describe('malformed input', () => {
  const cases: Array<[string, Buffer, keyof typeof dhcpDecodeErrorCodes, string]> = [
    ['empty', Buffer.alloc(0), 'TRUNCATED_HEADER', 'truncated header: 0 bytes, want at least 240'],
    ['cut in the header', withOptions([]).subarray(0, 120), 'TRUNCATED_HEADER', 'truncated header: 120 bytes, want at least 240'],
    ['cut in the cookie', withOptions([]).subarray(0, 239), 'TRUNCATED_HEADER', 'truncated header: 239 bytes, want at least 240'],
    ['op 0', withOptions([255], (b) => (b[0] = 0)), 'BAD_OP', 'op 0 is neither 1 (BOOTREQUEST) nor 2 (BOOTREPLY)'],
    ['op 3', withOptions([255], (b) => (b[0] = 3)), 'BAD_OP', 'op 3 is neither 1 (BOOTREQUEST) nor 2 (BOOTREPLY)'],
    ['hlen 17', withOptions([255], (b) => (b[2] = 17)), 'BAD_HLEN', 'hlen 17 is larger than the 16-byte chaddr field'],
    ['no cookie', withOptions([255], (b) => b.writeUInt32BE(0, 236)), 'BAD_MAGIC_COOKIE', 'bad magic cookie 0x00000000, want 0x63825363'],
    ['a BOOTP vendor field', withOptions([255], (b) => b.writeUInt32BE(0x01020304, 236)), 'BAD_MAGIC_COOKIE', 'bad magic cookie 0x01020304, want 0x63825363'],
    ['code without length', withOptions([53, 1, 1, 12]), 'OPTION_NO_LENGTH', 'option 12 at offset 243 has no length byte in the options field'],
    [
      'overrun',
      withOptions([60, 10, 0x61, 0x62, 0x63]),
      'OPTION_OVERRUN',
      'option 60 at offset 240 has length 10 but only 3 bytes are left in the options field',
    ],
    ['overrun by one', withOptions([53, 2, 1]), 'OPTION_OVERRUN', 'option 53 at offset 240 has length 2 but only 1 bytes are left in the options field'],
    ['93 too short', withOptions([93, 1, 0, 255]), 'OPTION_LENGTH', 'option 93 has length 1, want 2'],
    ['93 odd', withOptions([93, 3, 0, 0, 0, 255]), 'OPTION_LENGTH', 'option 93 has length 3, want a multiple of 2'],
    ['53 empty', withOptions([53, 0, 255]), 'OPTION_LENGTH', 'option 53 has length 0, want 1'],
    ['51 short', withOptions([51, 3, 0, 0, 1, 255]), 'OPTION_LENGTH', 'option 51 has length 3, want 4'],
    ['54 long', withOptions([54, 5, 1, 2, 3, 4, 5, 255]), 'OPTION_LENGTH', 'option 54 has length 5, want 4'],
    ['1 short', withOptions([1, 3, 255, 255, 255, 255]), 'OPTION_LENGTH', 'option 1 has length 3, want 4'],
    ['3 not addresses', withOptions([3, 5, 1, 2, 3, 4, 5, 255]), 'OPTION_LENGTH', 'option 3 has length 5, want a multiple of 4'],
    ['6 empty', withOptions([6, 0, 255]), 'OPTION_LENGTH', 'option 6 has length 0, want a multiple of 4'],
    ['57 short', withOptions([57, 1, 5, 255]), 'OPTION_LENGTH', 'option 57 has length 1, want 2'],
    ['61 short', withOptions([61, 1, 1, 255]), 'OPTION_LENGTH', 'option 61 has length 1, want at least 2'],
    ['94 short', withOptions([94, 2, 1, 2, 255]), 'OPTION_LENGTH', 'option 94 has length 2, want 3'],
    ['97 short', withOptions([97, 16, ...new Array<number>(16).fill(0), 255]), 'OPTION_LENGTH', 'option 97 has length 16, want 17'],
    ['93 split into bad total', withOptions([93, 1, 0, 93, 2, 0, 7, 255]), 'OPTION_LENGTH', 'option 93 has length 3, want a multiple of 2'],
    ['52 long', withOptions([52, 2, 1, 1, 255]), 'BAD_OVERLOAD', 'option 52 has length 2, want 1'],
    ['52 twice', withOptions([52, 1, 1, 52, 1, 1, 255]), 'BAD_OVERLOAD', 'option 52 has length 2, want 1'],
    ['52 value 0', withOptions([52, 1, 0, 255]), 'BAD_OVERLOAD', 'option 52 has value 0, want 1 (file), 2 (sname) or 3 (both)'],
    ['52 value 4', withOptions([52, 1, 4, 255]), 'BAD_OVERLOAD', 'option 52 has value 4, want 1 (file), 2 (sname) or 3 (both)'],
    [
      '52 inside file',
      withOptions([52, 1, 1, 255], (b) => Buffer.from([52, 1, 2, 255]).copy(b, 108)),
      'BAD_OVERLOAD',
      'option 52 at offset 108 is inside the file field',
    ],
    [
      'overrun in the file field',
      withOptions([52, 1, 1, 255], (b) => {
        b.fill(0, 108, 236);
        Buffer.from([12, 9]).copy(b, 234);
      }),
      'OPTION_OVERRUN',
      'option 12 at offset 234 has length 9 but only 0 bytes are left in the file field',
    ],
    [
      'code without length in sname',
      withOptions([52, 1, 2, 255], (b) => {
        b.fill(0, 44, 108);
        b[107] = 12;
      }),
      'OPTION_NO_LENGTH',
      'option 12 at offset 107 has no length byte in the sname field',
    ],
  ];
  for (const [label, bytes, code, message] of cases) {
    test(`${label}: ${message}`, () => {
      assert.throws(
        () => decodePacket(bytes),
        (error: unknown) => {
          assert.ok(error instanceof DhcpDecodeError);
          assert.equal(error.code, code);
          assert.equal(error.message, message);
          return true;
        },
      );
    });
  }

  test('every decode error code is documented, unique and exercised above', () => {
    const codes = Object.keys(dhcpDecodeErrorCodes);
    assert.equal(new Set(codes).size, codes.length);
    for (const code of codes) assert.ok(dhcpDecodeErrorCodes[code as keyof typeof dhcpDecodeErrorCodes].length > 10);
    const exercised = new Set(cases.map(([, , code]) => code));
    exercised.add('OPTION_VALUE'); // sub-options, tested in "decoding"
    assert.deepEqual([...exercised].sort(), codes.sort());
  });
});

describe('encoding', () => {
  test('a small reply is padded with PAD to 300 bytes after END', () => {
    const bytes = checkEncoder(clientRequest({ op: 2, options: { messageType: 2 } }));
    assert.equal(bytes.length, 300);
    assert.deepEqual([...bytes.subarray(240, 244)], [53, 1, 2, 255]);
    assert.ok(bytes.subarray(244).every((b) => b === 0));
  });

  test('a long option is split into 255-byte instances (RFC 3396) and read back whole', () => {
    const url = `http://198.18.0.1:8080/${'x'.repeat(600)}`;
    const packet = clientRequest({ op: 2, options: { messageType: 5, bootFileName: url } });
    const bytes = checkEncoder(packet);
    // 623 bytes + NUL = 624 = 255 + 255 + 114
    assert.deepEqual([bytes[243], bytes[244]], [67, 255]);
    assert.deepEqual([bytes[243 + 257], bytes[244 + 257]], [67, 255]);
    assert.deepEqual([bytes[243 + 514], bytes[244 + 514]], [67, 114]);
  });

  test('every typed option round-trips', () => {
    checkEncoder(
      clientRequest({
        broadcast: true,
        clientAddress: '198.18.0.9',
        yourAddress: '198.18.0.10',
        serverAddress: '198.18.0.1',
        relayAddress: '198.18.0.254',
        serverName: 'boot-server',
        bootFile: 'x'.repeat(128),
        options: {
          messageType: 8,
          subnetMask: '255.255.255.0',
          routers: ['198.18.0.1', '198.18.0.2'],
          dnsServers: ['198.18.0.53'],
          hostname: 'node-1',
          domainName: 'rack.example',
          broadcastAddress: '198.18.0.255',
          vendorSpecific: Buffer.from([6, 1, 8, 255]),
          requestedAddress: '198.18.0.10',
          leaseSeconds: 0xffffffff,
          serverIdentifier: '198.18.0.1',
          parameterRequestList: [1, 3, 6, 255],
          message: 'hello',
          maxMessageSize: 1500,
          renewalSeconds: 1800,
          rebindingSeconds: 3150,
          vendorClass: 'PXEClient:Arch:00007:UNDI:003000',
          clientIdentifier: Buffer.from([1, 2, 0, 0, 0, 0, 1]),
          tftpServerName: '198.18.0.1',
          bootFileName: 'ipxe.efi',
          userClass: Buffer.from('iPXE'),
          clientArch: [7, 9],
          networkInterfaceId: { type: 1, major: 3, minor: 16 },
          clientMachineId: { type: 0, id: Buffer.from('00112233445566778899aabbccddeeff', 'hex') },
          ipxeEncapsulated: Buffer.from([177, 5, 1, 0x80, 0x86, 0x10, 0x0e]),
        },
        rawOptions: new Map([[235, Buffer.from('x')]]),
      }),
    );
  });

  test('options set to undefined are left out', () => {
    const packet = decodePacket(encodePacket(clientRequest({ options: { messageType: 1, hostname: undefined } })));
    assert.deepEqual(packet.options, { messageType: 1 });
  });

  test('options go on the wire in key order', () => {
    const bytes = encodePacket(clientRequest({ op: 2, options: { serverIdentifier: '198.18.0.1', messageType: 2, subnetMask: '255.0.0.0' } }));
    assert.deepEqual([bytes[240], bytes[246], bytes[249]], [54, 53, 1]);
  });

  const invalid: Array<[string, DhcpPacket, string]> = [
    ['bad address', clientRequest({ clientAddress: '198.18.0' }), "ciaddr '198.18.0' is not an IPv4 address"],
    ['xid too big', clientRequest({ transactionId: 2 ** 32 }), 'xid 4294967296 is not an integer in 0-4294967295'],
    ['chaddr too long', clientRequest({ hardwareAddress: Buffer.alloc(17) }), 'chaddr is 17 bytes, max 16'],
    ['file too long', clientRequest({ bootFile: 'x'.repeat(129) }), `file must be latin1 without NUL and at most 128 bytes: '${'x'.repeat(129)}'`],
    ['option value out of range', clientRequest({ options: { messageType: 256 } }), 'option 53: 256 is not an integer in 0-255'],
    ['bad option address', clientRequest({ options: { routers: ['x'] } }), "option 3: 'x' is not an IPv4 address"],
    ['empty address list', clientRequest({ options: { dnsServers: [] } }), 'option 6: want at least one address'],
    ['wide characters', clientRequest({ options: { hostname: 'nöde-€' } }), "option 12: 'nöde-€' has characters above U+00FF"],
    ['unknown name', clientRequest({ options: { colour: 'blue' } as DhcpPacket['options'] }), "unknown option name 'colour'"],
    ['raw END', clientRequest({ rawOptions: new Map([[255, Buffer.alloc(0)]]) }), 'raw option code 255 cannot be encoded'],
    ['raw typed', clientRequest({ rawOptions: new Map([[53, Buffer.from([1])]]) }), 'raw option 53 has a typed codec; set it in options'],
    ['short machine id', clientRequest({ options: { clientMachineId: { type: 0, id: Buffer.alloc(4) } } }), 'option 97: machine id has 4 bytes, want 16'],
  ];
  for (const [label, packet, message] of invalid) {
    test(`refuses ${label}`, () => {
      assert.throws(
        () => encodePacket(packet),
        (error: unknown) => error instanceof DhcpEncodeError && error.message === message,
      );
    });
  }
});
