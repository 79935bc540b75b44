/**
 * marcod's local API limits (docs/protocol.md §4). Everything that grows with traffic is bounded
 * here, so a flood of requests costs a bounded number of sockets, timers and bytes.
 */

/**
 * Largest request datagram marcod reads. The reference's Twisted port read at most 8192 bytes
 * (`maxPacketSize`), so a longer request reached it cut and was dropped as invalid JSON; we answer
 * it with an error instead.
 */
export const MAX_REQUEST_BYTES = 8192;

/**
 * Longest `timeout` a request may ask for, in ms. A request holds one of the MAX_IN_FLIGHT slots
 * (and one socket per interface) until its deadline, so one client must not park slots for hours.
 */
export const MAX_REQUEST_TIMEOUT_MS = 60_000;

/** Requests served at once; the next one gets `{"Error": "busy"}` at once. */
export const MAX_IN_FLIGHT = 256;

/**
 * Requests of one client (one uid, or one unidentified socket: src/marcod/clients.ts) served at
 * once; its next one gets `{"Error": "busy"}` while other clients are still served. With the
 * defaults, four clients must be busy at once before anyone else is refused; one program may
 * still run dozens of queries at once (a job starting many workers).
 */
export const MAX_IN_FLIGHT_PER_CLIENT = 64;

/**
 * Replies handed to the socket but not yet sent. Past this (a flood faster than the socket
 * drains), further replies are dropped and counted rather than queued without bound.
 */
export const MAX_PENDING_REPLIES = 1024;

/** Longest reason in an `{"Error": "<reason>"}` reply (reasons quote request values). */
export const MAX_ERROR_CHARS = 256;

/** The reason of the reply to a request arriving while MAX_IN_FLIGHT are in progress. */
export const BUSY = 'busy';

/** The reason of the reply to requests still in progress when marcod stops. */
export const STOPPING = 'marcod is stopping';
