/**
 * Errors of the DHCP codec. Every one has a stable code (for tests and log
 * queries) and a message that carries the numbers: which option, what length,
 * what was wanted.
 */

export const dhcpDecodeErrorCodes = {
  TRUNCATED_HEADER: 'the packet is shorter than the 236-byte BOOTP header plus the 4-byte magic cookie',
  BAD_OP: 'op is neither 1 (BOOTREQUEST) nor 2 (BOOTREPLY)',
  BAD_HLEN: 'hlen is larger than the 16-byte chaddr field',
  BAD_MAGIC_COOKIE: 'the four bytes after the header are not 99.130.83.99 (RFC 2131 section 3)',
  OPTION_NO_LENGTH: 'an option code is the last byte of its field, with no length byte',
  OPTION_OVERRUN: 'an option length runs past the end of its field',
  OPTION_LENGTH: 'an option has a length its type does not allow',
  OPTION_VALUE: 'an option has a value its type does not allow',
  BAD_OVERLOAD: 'option 52 (overload) is malformed or misplaced (RFC 2132 section 9.3)',
} as const;

export type DhcpDecodeErrorCode = keyof typeof dhcpDecodeErrorCodes;

/** A packet that cannot be read; the server drops it and logs the reason. */
export class DhcpDecodeError extends Error {
  override readonly name = 'DhcpDecodeError';
  constructor(
    readonly code: DhcpDecodeErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** A packet value that cannot be put on the wire (a bug in the caller, not in a client). */
export class DhcpEncodeError extends Error {
  override readonly name = 'DhcpEncodeError';
}
