/** MarcoPolo: zero-configuration service discovery for a LAN. The package's public API. */
export * from './errors.js';
export * from './protocol/index.js';
export * from './discovery/index.js';
export { Polo, DEFAULT_VERIFY_REGEXP, DEFAULT_JOIN_RETRY, type PoloOptions, type JoinRetryPolicy } from './responder/polo.js';
export { answer, type AnswerContext, type Decision } from './responder/answer.js';
export type { Service } from './registry/service.js';
export { ServiceRegistry, type RegistryOptions } from './registry/registry.js';
export type { ServiceChange, ServiceChangeKind, ServiceChangeCause, ServiceChangeSource } from './registry/events.js';
export type { ServiceView } from './registry/view.js';
export type { HealthCheck } from './health/check.js';
export type { PoloStats } from './responder/stats.js';
export type { Transport, GroupSocket, DatagramSocket, RemoteInfo } from './transport/transport.js';
export { UdpTransport } from './transport/udp.js';
export { MemoryNetwork, MemoryHost } from './transport/memory.js';
export {
  MarcodClient,
  REPLY_MARGIN_MS,
  type MarcodClientOptions,
  type MarcodQueryOptions,
  type MarcoLike,
} from './client/marcodClient.js';
export {
  PoloClient,
  DEFAULT_POLO_TIMEOUT_MS,
  ConnectionLostError,
  UnexpectedReplyError,
  PolodUnavailableError,
  polodSocketPath,
  type PoloClientOptions,
  type PublishOptions,
  type UnpublishOptions,
  type PublishedService,
} from './client/poloClient.js';
export {
  readGridKeyFile,
  gridKey,
  signDatagram,
  verifyDatagram,
  ReplayCache,
  type GridKey,
  type AuthPolicy,
  type Verification,
} from './auth/gridAuth.js';
export { Guard, DEFAULT_GUARD_SETTINGS, type GuardSettings, type UnicastScope } from './responder/guard.js';
export { DEFAULT_REPLY_LIMITS, type ReplyLimits } from './responder/rateLimit.js';
