/**
 * TFTP code tables (RFC 1350 section 5, RFC 2347 for OACK and error 8). Each
 * table maps name to number; the `*Name` functions map back and keep unknown
 * numbers visible instead of failing, so a log line can show what arrived.
 */

/** Packet opcodes, the first two bytes of every packet. */
export const Opcode = {
  readRequest: 1, // RRQ
  writeRequest: 2, // WRQ
  data: 3, // DATA
  acknowledgement: 4, // ACK
  error: 5, // ERROR
  optionAcknowledgement: 6, // OACK, RFC 2347
} as const;

export type OpcodeName = keyof typeof Opcode;

/** ERROR packet codes. */
export const ErrorCode = {
  notDefined: 0, // "Not defined, see error message (if any)"
  fileNotFound: 1,
  accessViolation: 2,
  diskFull: 3,
  illegalOperation: 4,
  unknownTransferId: 5, // TID: the UDP port pair of a transfer
  fileExists: 6,
  noSuchUser: 7,
  optionsRefused: 8, // RFC 2347: "terminate transfer due to option negotiation"
} as const;

export type ErrorCodeName = keyof typeof ErrorCode;

const opcodeNames = new Map<number, OpcodeName>(Object.entries(Opcode).map(([name, code]) => [code, name as OpcodeName]));
const errorCodeNames = new Map<number, ErrorCodeName>(Object.entries(ErrorCode).map(([name, code]) => [code, name as ErrorCodeName]));

/** The name of an opcode, or `opcode <n>` for one no RFC defines. */
export function opcodeName(code: number): string {
  return opcodeNames.get(code) ?? `opcode ${code}`;
}

/** The name of an error code, or `error <n>` for one no RFC defines. */
export function errorCodeName(code: number): string {
  return errorCodeNames.get(code) ?? `error ${code}`;
}

export function isKnownOpcode(code: number): code is (typeof Opcode)[OpcodeName] {
  return opcodeNames.has(code);
}
