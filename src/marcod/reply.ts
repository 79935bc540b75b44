/**
 * marcod's replies (docs/protocol.md §4), encoded as compact UTF-8 JSON that always fits one
 * datagram of `frame_size` bytes. Pure: no sockets, timers or logging.
 *
 * Oversize replies: a binding reads the reply into a fixed buffer (4096 bytes in Python, 2048 in
 * C++: docs/protocol.md §4), so a longer datagram would reach it cut in the middle of the JSON.
 * marcod never sends that: it keeps the longest prefix of whole entries (nodes in arrival order,
 * services in the node's order) that fits, and reports how many it dropped so the caller can log
 * it. The bare arrays cannot say they were cut; the Services envelope says `"Truncated": true`.
 */
import type { NodeResult, ServicesResult } from '../discovery/results.js';
import { MAX_ERROR_CHARS } from './limits.js';
import type { ErrorValue } from './request.js';

/** What marcod answers to one request, before encoding. */
export type MarcodReply =
  /** Marco and Request-For: `[{"Address": …, "Params": {…}}, …]`, `[]` when nobody answered. */
  | { readonly kind: 'nodes'; readonly nodes: readonly NodeResult[]; readonly fromView?: boolean }
  /**
   * Services: the bare array `[{"id": …, "params": {…}}, …]` (`[]` when the node did not answer),
   * or with `envelope` `{"Address": "<ip>" | null, "Services": […], "Truncated"?: true}`.
   */
  | { readonly kind: 'services'; readonly result: ServicesResult | undefined; readonly envelope: boolean }
  /** `{"Error": true}` or `{"Error": "<reason>"}`. */
  | { readonly kind: 'error'; readonly error: ErrorValue };

/** An encoded reply and how many entries were left out to make it fit. */
export interface EncodedReply {
  readonly bytes: Uint8Array;
  /** Nodes or services dropped from the end of the list; 0 when everything fit. */
  readonly dropped: number;
}

const encoder = new TextEncoder();

/** Encodes `reply` into at most `frameSize` bytes (see the module comment for what is cut). */
export function encodeMarcodReply(reply: MarcodReply, frameSize: number): EncodedReply {
  switch (reply.kind) {
    case 'nodes':
      return fitList(
        reply.nodes.map((n) => JSON.stringify({ Address: n.address, Params: n.params })),
        (list) => `[${list}]`,
        frameSize,
      );
    case 'services':
      return encodeServices(reply.result, reply.envelope, frameSize);
    case 'error':
      return { bytes: encodeError(reply.error, frameSize), dropped: 0 };
  }
}

/** `{"Error": true}`, or `{"Error": "<reason>"}` with the reason cut to fit. */
export function encodeError(error: ErrorValue, frameSize: number): Uint8Array {
  if (error === true) return encoder.encode(JSON.stringify({ Error: true }));
  let reason = error.length > MAX_ERROR_CHARS ? `${error.slice(0, MAX_ERROR_CHARS - 1)}…` : error;
  let bytes = encoder.encode(JSON.stringify({ Error: reason }));
  // Multi-byte text can still overflow a small frame: shorten one character at a time.
  while (bytes.byteLength > frameSize && reason.length > 1) {
    reason = `${reason.slice(0, reason.length - 2)}…`;
    bytes = encoder.encode(JSON.stringify({ Error: reason }));
  }
  return bytes;
}

function encodeServices(result: ServicesResult | undefined, envelope: boolean, frameSize: number): EncodedReply {
  const items = (result?.services ?? []).map((s) => JSON.stringify({ id: s.id, params: s.params }));
  if (!envelope) return fitList(items, (list) => `[${list}]`, frameSize, true);
  const address = JSON.stringify(result?.address ?? null);
  // The node may have cut its own list already (our polod's "Truncated" key).
  const cutByNode = result?.truncated === true;
  return fitList(
    items,
    (list, cut) => `{"Address":${address},"Services":[${list}]${cut || cutByNode ? ',"Truncated":true' : ''}}`,
    frameSize,
    true,
  );
}

/**
 * The longest prefix of `items` (each one JSON text) that `wrap` turns into at most `limit`
 * bytes; with `skipTooLarge`, every item that still fits, in order (an item too large for the
 * space left is skipped and the smaller ones after it still go: one large service never empties
 * a Services reply). `wrap` must place the comma-joined items once in fixed text, which makes
 * the size linear: overhead + Σ item bytes + commas, computed in one pass.
 */
function fitList(
  items: readonly string[],
  wrap: (list: string, cut: boolean) => string,
  limit: number,
  skipTooLarge = false,
): EncodedReply {
  const whole = encoder.encode(wrap(items.join(','), false));
  if (whole.byteLength <= limit) return { bytes: whole, dropped: 0 };
  let size = encoder.encode(wrap('', true)).byteLength;
  const kept: string[] = [];
  for (const item of items) {
    const next = size + encoder.encode(item).byteLength + (kept.length > 0 ? 1 : 0);
    if (next > limit) {
      if (skipTooLarge) continue;
      break;
    }
    size = next;
    kept.push(item);
  }
  return { bytes: encoder.encode(wrap(kept.join(','), true)), dropped: items.length - kept.length };
}
