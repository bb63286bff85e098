import { readFileSync } from 'node:fs';

/**
 * A small reader for classic pcap files (not pcapng) holding Ethernet frames:
 * enough to pull UDP payloads out of captures taken with tcpdump, for codec
 * tests. IPv4 only; fragments, VLAN tags other than one 802.1Q tag, and other
 * protocols are skipped.
 */

export interface UdpDatagram {
  /** Index of the frame in the file, from 0. */
  frame: number;
  /** Capture time, seconds since the epoch (microsecond or nanosecond precision). */
  time: number;
  source: { address: string; port: number };
  destination: { address: string; port: number };
  payload: Buffer;
}

const linkTypeEthernet = 1;

export function readPcap(path: string): UdpDatagram[] {
  return parsePcap(readFileSync(path));
}

export function parsePcap(file: Buffer): UdpDatagram[] {
  if (file.length < 24) throw new Error(`pcap file is ${file.length} bytes, shorter than its 24-byte header`);
  const magic = file.readUInt32LE(0);
  let littleEndian: boolean;
  let nanoseconds: boolean;
  if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) {
    littleEndian = true;
    nanoseconds = magic === 0xa1b23c4d;
  } else if (magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1) {
    littleEndian = false;
    nanoseconds = magic === 0x4d3cb2a1;
  } else {
    throw new Error(`not a classic pcap file (magic 0x${magic.toString(16)}); pcapng is not supported`);
  }
  const u32 = (offset: number) => (littleEndian ? file.readUInt32LE(offset) : file.readUInt32BE(offset));
  const linkType = u32(20) & 0x0fffffff;
  if (linkType !== linkTypeEthernet) throw new Error(`pcap link type ${linkType} is not Ethernet (1)`);

  const datagrams: UdpDatagram[] = [];
  let offset = 24;
  for (let frame = 0; offset + 16 <= file.length; frame++) {
    const seconds = u32(offset);
    const fraction = u32(offset + 4);
    const capturedLength = u32(offset + 8);
    const start = offset + 16;
    if (start + capturedLength > file.length) throw new Error(`pcap frame ${frame} is truncated`);
    const data = file.subarray(start, start + capturedLength);
    offset = start + capturedLength;
    const udp = udpFromEthernet(data);
    if (udp) datagrams.push({ frame, time: seconds + fraction / (nanoseconds ? 1e9 : 1e6), ...udp });
  }
  return datagrams;
}

function udpFromEthernet(frame: Buffer): Omit<UdpDatagram, 'frame' | 'time'> | undefined {
  if (frame.length < 14) return undefined;
  let etherType = frame.readUInt16BE(12);
  let ip = 14;
  if (etherType === 0x8100 && frame.length >= 18) {
    etherType = frame.readUInt16BE(16);
    ip = 18;
  }
  if (etherType !== 0x0800 || frame.length < ip + 20) return undefined;
  const versionAndLength = frame[ip]!;
  if (versionAndLength >> 4 !== 4) return undefined;
  const headerLength = (versionAndLength & 0x0f) * 4;
  const totalLength = frame.readUInt16BE(ip + 2);
  const fragment = frame.readUInt16BE(ip + 6);
  if ((fragment & 0x3fff) !== 0) return undefined; // more-fragments flag or an offset
  if (frame[ip + 9] !== 17) return undefined;
  const udp = ip + headerLength;
  if (frame.length < udp + 8 || ip + totalLength > frame.length) return undefined;
  const udpLength = frame.readUInt16BE(udp + 4);
  if (udpLength < 8 || udp + udpLength > ip + totalLength) return undefined;
  const address = (at: number) => `${frame[at]}.${frame[at + 1]}.${frame[at + 2]}.${frame[at + 3]}`;
  return {
    source: { address: address(ip + 12), port: frame.readUInt16BE(udp) },
    destination: { address: address(ip + 16), port: frame.readUInt16BE(udp + 2) },
    payload: Buffer.from(frame.subarray(udp + 8, udp + udpLength)),
  };
}
