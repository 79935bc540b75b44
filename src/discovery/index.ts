/** The Marco side of MarcoPolo: in-process discovery of nodes and services. */
export { Marco, marco, requestFor, requestOne, services, type MarcoOptions, type WatchOptions } from './marco.js';
export { Watch, type WatchEvent, type WatchDownReason } from '../membership/watch.js';
export { DEFAULT_TIMING, FAST_TIMING, type PresenceTiming } from '../membership/timing.js';
export { MAX_RETRIES, MAX_TIMEOUT_MS, type QueryOptions } from './options.js';
export { MAX_TRACKED_NODES, STREAM_QUEUE_LIMIT } from './collector.js';
export type { HostLookup } from './nodeAddress.js';
export type { NodeResult, QueryStats, QueryStream, ServiceResult, ServicesResult } from './results.js';
