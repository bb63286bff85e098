import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { clientFacts, formatMac } from '../../server/dhcp/decide/client-facts.js';
import { messageTypeName, optionCodecs, optionCodeOf, optionNameOf, typedOptionName, userClasses } from '../../server/dhcp/wire/options.js';
import { decodePacket } from '../../server/dhcp/wire/packet.js';
import { clientRequest, fixtureDhcp } from '../support/dhcp.js';

function firstDiscover(name: Parameters<typeof fixtureDhcp>[0], skip = 0) {
  return decodePacket(fixtureDhcp(name).filter((d) => d.destination.port === 67)[skip]!.payload);
}

describe('clientFacts from the captures', () => {
  test('QEMU BIOS iPXE ROM: arch 0, PXE, already iPXE', () => {
    assert.deepEqual(clientFacts(firstDiscover('qemu-bios-ipxe-rom')), {
      mac: '52:54:00:12:34:56',
      arch: 0,
      platform: 'bios',
      isPxe: true,
      isHttpBoot: false,
      isIpxe: true,
    });
  });

  test('plain DHCP clients (udhcpc, dhclient, dhcpcd): not network-boot clients', () => {
    for (const name of ['busybox-udhcpc', 'isc-dhclient', 'dhcpcd'] as const) {
      assert.deepEqual(
        clientFacts(firstDiscover(name)),
        { mac: '52:54:00:aa:bb:01', arch: undefined, platform: 'bios', isPxe: false, isHttpBoot: false, isIpxe: false },
        name,
      );
    }
  });

  test('OVMF UEFI PXE: arch 7, PXE, not iPXE', () => {
    assert.deepEqual(clientFacts(firstDiscover('ovmf-x64-uefi-pxe')), {
      mac: '52:54:00:12:34:57',
      arch: 7,
      platform: 'efi64',
      isPxe: true,
      isHttpBoot: false,
      isIpxe: false,
    });
  });

  test('OVMF UEFI PXE, then the ipxe.efi it chained: arch 7 and iPXE', () => {
    // Frames 0 and 2 are the firmware's DISCOVER and REQUEST; then iPXE's DISCOVER.
    const facts = clientFacts(firstDiscover('ovmf-x64-uefi-pxe', 2));
    assert.equal(facts.arch, 7);
    assert.equal(facts.isIpxe, true);
    assert.equal(facts.isPxe, true);
  });

  test('OVMF HTTP Boot: arch 16, HTTP Boot, not PXE', () => {
    assert.deepEqual(clientFacts(firstDiscover('ovmf-x64-uefi-httpboot')), {
      mac: '52:54:00:12:34:58',
      arch: 16,
      platform: 'efi64',
      isPxe: false,
      isHttpBoot: true,
      isIpxe: false,
    });
  });
});

describe('clientFacts from made-up requests', () => {
  test('a plain DHCP client (udhcpc): nothing to boot, platform bios', () => {
    assert.deepEqual(clientFacts(clientRequest({ mac: '02:AB:00:00:00:01', options: { messageType: 1, vendorClass: 'udhcp 1.35.0' } })), {
      mac: '02:ab:00:00:00:01',
      arch: undefined,
      platform: 'bios',
      isPxe: false,
      isHttpBoot: false,
      isIpxe: false,
    });
  });

  test('option 175 alone marks iPXE; so does "iPXE" among RFC 3004 user classes', () => {
    assert.equal(clientFacts(clientRequest({ options: { messageType: 1, ipxeEncapsulated: Buffer.alloc(0) } })).isIpxe, true);
    const rfc3004 = Buffer.concat([Buffer.from([3]), Buffer.from('foo'), Buffer.from([4]), Buffer.from('iPXE')]);
    assert.equal(clientFacts(clientRequest({ options: { messageType: 1, userClass: rfc3004 } })).isIpxe, true);
    assert.equal(clientFacts(clientRequest({ options: { messageType: 1, userClass: Buffer.from('iPXE2') } })).isIpxe, false);
  });

  test('the first of several architectures counts; unknown EFI values are efi64', () => {
    const facts = clientFacts(clientRequest({ options: { messageType: 1, clientArch: [11, 0] } }));
    assert.equal(facts.arch, 11);
    assert.equal(facts.platform, 'efi64');
  });
});

describe('helpers and tables', () => {
  test('formatMac', () => {
    assert.equal(formatMac(Buffer.from([0x52, 0x54, 0, 0x12, 0xab, 0xff])), '52:54:00:12:ab:ff');
    assert.equal(formatMac(Buffer.alloc(0)), '');
    assert.equal(formatMac(Buffer.from([0x0a])), '0a');
    // Every byte value, in hardware addresses of 1-16 bytes (chaddr's length).
    for (let length = 1; length <= 16; length++) {
      for (let first = 0; first < 256; first += length) {
        const bytes = Buffer.from(Array.from({ length }, (_, i) => (first + i * 17) % 256));
        assert.equal(formatMac(bytes), [...bytes].map((byte) => byte.toString(16).padStart(2, '0')).join(':'));
      }
    }
  });

  test('userClasses: bare string or RFC 3004 instances', () => {
    assert.deepEqual(userClasses(Buffer.from('iPXE')), ['iPXE']);
    assert.deepEqual(userClasses(Buffer.from([1, 0x61, 2, 0x62, 0x63])), ['a', 'bc']);
    assert.deepEqual(userClasses(Buffer.from([5, 0x61])), ['\u0005a']);
    assert.deepEqual(userClasses(Buffer.alloc(0)), []);
  });

  test('option names and codes map both ways', () => {
    for (const [name, { code }] of Object.entries(optionCodecs)) {
      assert.equal(optionNameOf(code), name);
      assert.equal(optionCodeOf(name), code);
      assert.equal(typedOptionName(code), name);
    }
    const codes = Object.values(optionCodecs).map((o) => o.code);
    assert.equal(new Set(codes).size, codes.length, 'codes are unique');
    assert.equal(optionNameOf(119), 'domainSearch');
    assert.equal(optionCodeOf('domainSearch'), 119);
    assert.equal(typedOptionName(119), undefined);
    assert.equal(optionNameOf(240), 'option240');
    assert.equal(optionCodeOf('option240'), 240);
    assert.equal(optionCodeOf('nonsense'), undefined);
  });

  test('the options the server must parse all have codecs', () => {
    for (const code of [1, 3, 6, 12, 15, 43, 50, 51, 53, 54, 55, 60, 61, 66, 67, 77, 93, 94, 97, 175]) {
      assert.notEqual(typedOptionName(code), undefined, `option ${code}`);
    }
  });

  test('message type names', () => {
    assert.equal(messageTypeName(1), 'DHCPDISCOVER');
    assert.equal(messageTypeName(8), 'DHCPINFORM');
    assert.equal(messageTypeName(0), 'DHCP0');
    assert.equal(messageTypeName(13), 'DHCP13');
    assert.equal(messageTypeName(undefined), 'BOOTP');
  });
});
