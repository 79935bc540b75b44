/** Protocol constants (docs/protocol.md §1 and §2). */

/** UDP port polod listens on in every group. */
export const POLO_PORT = 1337;
/** Groups a polod serves when configured with none. */
export const DEFAULT_GROUPS: readonly string[] = ['224.0.0.112', '224.0.0.113'];
/** The group queries go to when the caller names none (the reference's MULTICAST_ADDR). */
export const DEFAULT_GROUP = '224.0.0.112';
/**
 * Largest datagram we send or accept. The reference reads replies into 4096-byte buffers, so a
 * longer reply would reach it truncated: nothing larger ever leaves us (docs/protocol.md §2.1).
 */
export const MAX_DATAGRAM = 4096;
/** Deepest JSON nesting accepted in a datagram; legitimate messages nest three levels. */
export const MAX_JSON_DEPTH = 64;
/** Multicast TTL of queries, as the reference client sends them. */
export const QUERY_TTL = 2;
/** Multicast TTL of polod's socket (the reference's `hops`). */
export const POLO_TTL = 1;
/** Collection window of a query when the caller gives none, in ms. */
export const DEFAULT_TIMEOUT_MS = 1000;
