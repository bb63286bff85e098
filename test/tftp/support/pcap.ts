import { readFileSync } from 'node:fs';

/**
 * Just enough of libpcap to pull UDP datagrams out of the captures in
 * test/fixtures (Ethernet, IPv4, no fragments).
 */
export interface CapturedDatagram {
  sourceAddress: string;
  sourcePort: number;
  destinationAddress: string;
  destinationPort: number;
  payload: Buffer;
}

export function readUdpDatagrams(path: string): CapturedDatagram[] {
  const file = readFileSync(path);
  const magic = file.readUInt32LE(0);
  let little: boolean;
  if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) little = true;
  else if (magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1) little = false;
  else throw new Error(`${path}: not a pcap file (magic 0x${magic.toString(16)})`);
  const u32 = (offset: number): number => (little ? file.readUInt32LE(offset) : file.readUInt32BE(offset));
  const linkType = u32(20);
  if (linkType !== 1) throw new Error(`${path}: link type ${linkType}, want 1 (Ethernet)`);
  const datagrams: CapturedDatagram[] = [];
  let offset = 24;
  while (offset + 16 <= file.length) {
    const capturedLength = u32(offset + 8);
    const frame = file.subarray(offset + 16, offset + 16 + capturedLength);
    offset += 16 + capturedLength;
    if (frame.length < 14 || frame.readUInt16BE(12) !== 0x0800) continue;
    const ip = frame.subarray(14);
    const headerLength = (ip[0]! & 0x0f) * 4;
    if (ip[9] !== 17) continue;
    const totalLength = ip.readUInt16BE(2);
    const udp = ip.subarray(headerLength, totalLength);
    const address = (at: number): string => [...ip.subarray(at, at + 4)].join('.');
    datagrams.push({
      sourceAddress: address(12),
      destinationAddress: address(16),
      sourcePort: udp.readUInt16BE(0),
      destinationPort: udp.readUInt16BE(2),
      payload: Buffer.from(udp.subarray(8, udp.readUInt16BE(4))),
    });
  }
  return datagrams;
}
