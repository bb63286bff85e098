/**
 * Seeded generators of hostile DHCP input, shared by the in-process fuzz
 * test and the flood sent to a live server. Deterministic for a seed, so a
 * failure can be replayed.
 */
import { encodePacket, type DhcpPacket } from '../../server/dhcp/wire/packet.js';
import { seededRandom } from '../support/random.js';

export type FuzzKind = 'random' | 'truncated' | 'mutated' | 'random-options' | 'bad-length' | 'well-formed';

export interface FuzzCase {
  kind: FuzzKind;
  bytes: Buffer;
}

/** Options with a fixed or minimum length, and a length they must not have. */
const badLengths: Array<[number, number]> = [
  [93, 1],
  [93, 3],
  [1, 3],
  [3, 5],
  [51, 2],
  [53, 0],
  [54, 6],
  [57, 1],
  [61, 1],
  [94, 2],
  [97, 16],
  [52, 2],
];

export class FuzzGenerator {
  private readonly random: () => number;

  constructor(
    seed: number,
    /** Valid client packets to truncate and mutate (the fixture captures). */
    private readonly samples: Buffer[],
    /** Subnet prefix used for well-formed packets' addresses, e.g. "198.18.0". */
    private readonly prefix = '198.18.0',
  ) {
    this.random = seededRandom(seed);
  }

  private int(max: number): number {
    return Math.floor(this.random() * max);
  }

  private bytes(length: number): Buffer {
    const buf = Buffer.alloc(length);
    for (let i = 0; i < length; i++) buf[i] = this.int(256);
    return buf;
  }

  private sample(): Buffer {
    return Buffer.from(this.samples[this.int(this.samples.length)]!);
  }

  private address(): string {
    const pick = this.int(4);
    if (pick === 0) return '0.0.0.0';
    if (pick === 1) return `${this.prefix}.${this.int(256)}`;
    if (pick === 2) return `198.19.${this.int(256)}.${this.int(256)}`;
    return `${this.prefix}.${100 + this.int(20)}`;
  }

  next(): FuzzCase {
    const roll = this.int(100);
    if (roll < 20) return { kind: 'random', bytes: this.bytes(this.int(700)) };
    if (roll < 40) {
      const sample = this.sample();
      return { kind: 'truncated', bytes: sample.subarray(0, this.int(sample.length)) };
    }
    if (roll < 60) {
      const sample = this.sample();
      const flips = 1 + this.int(8);
      for (let i = 0; i < flips; i++) sample[this.int(sample.length)] = this.int(256);
      return { kind: 'mutated', bytes: sample };
    }
    if (roll < 72) {
      const sample = this.sample();
      return { kind: 'random-options', bytes: Buffer.concat([sample.subarray(0, 240), this.bytes(this.int(400))]) };
    }
    if (roll < 84) {
      const [code, length] = badLengths[this.int(badLengths.length)]!;
      const sample = this.sample();
      return {
        kind: 'bad-length',
        bytes: Buffer.concat([sample.subarray(0, 240), Buffer.from([53, 1, 1, code, length]), this.bytes(length), Buffer.from([255])]),
      };
    }
    return { kind: 'well-formed', bytes: encodePacket(this.wellFormed()) };
  }

  /** A decodable request with random type, MAC, addresses and a few options. */
  wellFormed(): DhcpPacket {
    const mac = Buffer.from([0x02, 0xfa, 0x22, this.int(4), this.int(256), this.int(256)]);
    const options: DhcpPacket['options'] = { messageType: 1 + this.int(10) };
    if (this.int(2) === 0) options.requestedAddress = this.address();
    if (this.int(3) === 0) options.serverIdentifier = this.int(2) === 0 ? `${this.prefix}.1` : this.address();
    if (this.int(3) === 0) options.vendorClass = ['PXEClient:Arch:00000:UNDI:002001', 'HTTPClient:Arch:00016', 'udhcp 1.35.0'][this.int(3)]!;
    if (this.int(3) === 0) options.clientArch = [[0, 7, 9, 16, 65535][this.int(5)]!];
    if (this.int(4) === 0) options.userClass = Buffer.from('iPXE');
    if (this.int(3) === 0) options.parameterRequestList = Array.from({ length: this.int(30) }, () => 1 + this.int(254));
    return {
      op: this.int(10) === 0 ? 2 : 1,
      hardwareType: this.int(20) === 0 ? 6 : 1,
      hardwareAddress: mac,
      hops: this.int(3),
      transactionId: this.int(2 ** 32),
      secondsElapsed: this.int(100),
      broadcast: this.int(2) === 0,
      clientAddress: this.int(3) === 0 ? this.address() : '0.0.0.0',
      yourAddress: this.int(10) === 0 ? this.address() : '0.0.0.0',
      serverAddress: '0.0.0.0',
      relayAddress: this.int(8) === 0 ? this.address() : '0.0.0.0',
      serverName: '',
      bootFile: '',
      options,
    };
  }
}
