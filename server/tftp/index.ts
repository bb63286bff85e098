export { ErrorCode, Opcode, errorCodeName, opcodeName, type ErrorCodeName, type OpcodeName } from './codes.js';
export { fileFromBuffer, fileFromDisk, NotRegularFileError, type TftpFile, type TftpSource } from './file.js';
export { toNetascii } from './netascii.js';
export {
  defaultBlockSize,
  maxBlockSize,
  maxWindowSize,
  minBlockSize,
  negotiateOptions,
  type NegotiatedTransfer,
  type NegotiationLimits,
} from './options.js';
export {
  decodePacket,
  describePacket,
  encodeDataHeader,
  encodePacket,
  encodingLength,
  MalformedPacketError,
  tryDecodePacket,
  type AcknowledgementPacket,
  type DataPacket,
  type DecodeResult,
  type ErrorPacket,
  type OptionAcknowledgementPacket,
  type TftpOption,
  type TftpPacket,
  type TransferRequest,
} from './packet.js';
export { normaliseRequestPath, type RequestPath } from './path.js';
export { fileInRoot, OutsideRootError } from './root.js';
export {
  TftpServer,
  type TftpClient,
  type TftpEvent,
  type TftpServerOptions,
  type TransferOutcome,
  type TransferSummary,
} from './server.js';
export { maxBackoffMs, retransmissionDelay } from './transfer.js';
export { interpretAck, wireBlockNumber, type AckMeaning } from './window.js';
