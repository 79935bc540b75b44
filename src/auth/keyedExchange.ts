/**
 * A client's side of a keyed grid (docs/protocol.md §2.4), shared by queries (src/discovery/
 * authReplies.ts) and watches (src/membership/watchAuth.ts): what a received datagram counts as
 * under the policy, and a query whose every copy is signed apart and whose replies must answer
 * one of those copies.
 */
import { signDatagram, verifyDatagram, type AuthPolicy, type GridKey, type ReplayCache, type Verification } from './gridAuth.js';
import { unsealMessage } from './sealed.js';

/** A datagram that passed (the bytes to decode, and whether it was signed), or why it did not. */
export type Judged = { readonly ok: true; readonly body: Uint8Array; readonly verified: boolean } | { readonly ok: false; readonly reason: string };

/**
 * What `data` counts as, given its verification: a valid message, with its sealed params opened
 * (once it is known to be genuine); an unsigned one only under `preferred`, as unverified.
 */
export function judge(v: Verification, data: Uint8Array, keys: readonly GridKey[], policy: Exclude<AuthPolicy, 'off'>): Judged {
  switch (v.kind) {
    case 'valid':
      return { ok: true, body: unsealMessage(v.body, keys), verified: true };
    case 'unsigned':
      return policy === 'preferred' ? { ok: true, body: data, verified: false } : { ok: false, reason: 'unsigned' };
    case 'invalid':
      return { ok: false, reason: v.reason };
  }
}

/** One query: each `payload()` is a copy signed apart (a nonce of its own); `check` judges a reply. */
export interface SignedQuery {
  readonly payload: () => Uint8Array;
  readonly check: (data: Uint8Array) => Judged;
}

/**
 * Signs `body` with the first key at each send; a reply counts when it is valid, fresh, unseen
 * by `replay` and bound to one of the copies sent (or unsigned, under `preferred`).
 */
export function signedQuery(body: Uint8Array, keys: readonly GridKey[], policy: Exclude<AuthPolicy, 'off'>, replay: ReplayCache): SignedQuery {
  const signer = keys[0] as GridKey;
  const sent = new Set<string>();
  return {
    payload: () => {
      const signed = signDatagram(body, signer);
      sent.add(signed.nonce);
      return signed.bytes;
    },
    check: (data) => judge(verifyDatagram(data, { keys, replay, replyTo: sent }), data, keys, policy),
  };
}
