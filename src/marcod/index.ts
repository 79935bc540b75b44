/** marcod's local API (docs/protocol.md §4): the resolver server, its request and reply forms. */
export { MarcodServer, type MarcodDeps, type MarcodSettings, type MarcodStats } from './server.js';
export { answer, type AnswerContext, type AnswerDefaults } from './answer.js';
export {
  parseRequest,
  type ErrorValue,
  type GroupQueryRequest,
  type MarcodRequest,
  type MarcoRequest,
  type ParsedRequest,
  type RequestForRequest,
  type ServicesRequest,
} from './request.js';
export { encodeError, encodeMarcodReply, type EncodedReply, type MarcodReply } from './reply.js';
export { bindApiSocket, type ApiBinder } from './socket.js';
export {
  BUSY,
  MAX_ERROR_CHARS,
  MAX_IN_FLIGHT,
  MAX_PENDING_REPLIES,
  MAX_REQUEST_BYTES,
  MAX_REQUEST_TIMEOUT_MS,
  STOPPING,
} from './limits.js';
