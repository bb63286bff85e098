import assert from 'node:assert/strict';

/** A wire codec: what the DHCP and TFTP packet modules both export. */
export interface Codec<P> {
  encodePacket(packet: P): Buffer;
  decodePacket(bytes: Buffer): P;
  encodingLength(packet: P): number;
}

/**
 * Length, round trip and stability, for any packet a test builds (the
 * dns-packet testEncoder idea): the encoding is as long as encodingLength
 * says, decodes to the packet, and encodes again to the same bytes.
 */
export function checkEncoder<P>(codec: Codec<P>, packet: P): Buffer {
  const bytes = codec.encodePacket(packet);
  assert.equal(bytes.length, codec.encodingLength(packet), 'encodingLength matches the bytes');
  const decoded = codec.decodePacket(bytes);
  assert.deepEqual(decoded, packet, 'decode(encode(p)) equals p');
  assert.deepEqual(codec.encodePacket(decoded), bytes, 'encoding is stable');
  return bytes;
}
