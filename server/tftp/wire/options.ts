import type { TftpOption } from './packet.js';

/**
 * RFC 2347 option negotiation for a read request. Pure: the requested
 * options and the facts about the file in, the transfer parameters and the
 * OACK contents out.
 */

/** RFC 1350 block size, used when the client asks for nothing else. */
export const defaultBlockSize = 512;
/** RFC 2348 section 2: "between 8 and 65464 octets, inclusive". */
export const minBlockSize = 8;
export const maxBlockSize = 65464;
/**
 * RFC 7440 allows 1..65535 blocks in flight; more than 64 buys nothing on a
 * LAN and makes each lost window expensive to resend. OVMF asks for 4.
 */
export const maxWindowSize = 64;

export interface NegotiationLimits {
  maxBlockSize: number;
  maxWindowSize: number;
}

export const defaultLimits: NegotiationLimits = { maxBlockSize, maxWindowSize };

export interface NegotiatedTransfer {
  /** Payload bytes per DATA packet (RFC 2348 blksize). */
  blockSize: number;
  /** DATA packets sent before waiting for an ACK (RFC 7440 windowsize). */
  windowSize: number;
  /** Retransmission timeout the client asked for (RFC 2349 timeout), if any. */
  timeoutMs: number | undefined;
  /** Options for the OACK, in the order the client sent them. Empty: no OACK, send DATA 1 at once. */
  acknowledged: TftpOption[];
  /** Options left out of the OACK and why, for the debug log. */
  ignored: Array<TftpOption & { reason: string }>;
}

/**
 * Decide the transfer parameters.
 * `fileSize` is undefined when the size on the wire is not known in advance
 * (netascii grows the file): tsize is then left out of the OACK, which RFC
 * 2347 lets a server do with any option, and tftp-hpa does for netascii.
 */
export function negotiateOptions(
  requested: readonly TftpOption[],
  fileSize: number | undefined,
  limits: NegotiationLimits = defaultLimits,
): NegotiatedTransfer {
  const result: NegotiatedTransfer = {
    blockSize: defaultBlockSize,
    windowSize: 1,
    timeoutMs: undefined,
    acknowledged: [],
    ignored: [],
  };
  const seen = new Set<string>();
  const ignore = (option: TftpOption, reason: string): void => {
    result.ignored.push({ ...option, reason });
  };
  for (const option of requested) {
    if (seen.has(option.name)) {
      ignore(option, 'repeated; the first one counts');
      continue;
    }
    seen.add(option.name);
    const number = parseDecimal(option.value);
    switch (option.name) {
      case 'blksize': {
        // RFC 2348: the server may answer with a smaller size, never a larger
        // one. Below 8 is invalid and cannot be raised, so it is ignored.
        if (number === undefined) ignore(option, 'not a decimal number');
        else if (number < minBlockSize) ignore(option, `below the RFC 2348 minimum of ${minBlockSize}`);
        else {
          result.blockSize = Math.min(number, limits.maxBlockSize);
          result.acknowledged.push({ name: 'blksize', value: String(result.blockSize) });
        }
        break;
      }
      case 'tsize': {
        // RFC 2349 section 4: a read request carries tsize 0 and the OACK
        // answers the real size. PXE ROMs use it to size their buffer.
        if (number === undefined) ignore(option, 'not a decimal number');
        else if (fileSize === undefined) ignore(option, 'size unknown before sending (netascii)');
        else result.acknowledged.push({ name: 'tsize', value: String(fileSize) });
        break;
      }
      case 'timeout': {
        // RFC 2349 section 3: 1..255 seconds, and the server must echo it as is.
        if (number === undefined || number < 1 || number > 255) ignore(option, 'outside 1..255 seconds');
        else {
          result.timeoutMs = number * 1000;
          result.acknowledged.push({ name: 'timeout', value: String(number) });
        }
        break;
      }
      case 'windowsize': {
        // RFC 7440 section 3: 1..65535; like blksize the answer may be smaller.
        if (number === undefined || number < 1 || number > 65535) ignore(option, 'outside 1..65535');
        else {
          result.windowSize = Math.min(number, limits.maxWindowSize);
          result.acknowledged.push({ name: 'windowsize', value: String(result.windowSize) });
        }
        break;
      }
      default:
        ignore(option, 'not supported');
    }
  }
  return result;
}

function parseDecimal(value: string): number | undefined {
  // Ten digits is past every limit above; longer strings are not numbers we use.
  if (!/^[0-9]{1,10}$/u.test(value)) return undefined;
  return Number(value);
}
