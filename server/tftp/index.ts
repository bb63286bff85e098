export { ErrorCode, Opcode, errorCodeName, opcodeName } from './codes.js';
export { fileFromBuffer, fileFromDisk, NotRegularFileError, type TftpFile, type TftpSource } from './file.js';
export { negotiateOptions, type NegotiatedTransfer, type NegotiationLimits } from './options.js';
export {
  decodePacket,
  encodePacket,
  encodingLength,
  MalformedPacketError,
  tryDecodePacket,
  type TftpOption,
  type TftpPacket,
  type TransferRequest,
} from './packet.js';
export { normaliseRequestPath, type RequestPath } from './path.js';
export { TftpServer, type TftpClient, type TftpEvent, type TftpServerOptions, type TransferOutcome, type TransferSummary } from './server.js';
