/**
 * The client's side of authenticated grids (src/auth/gridAuth.ts, docs/protocol.md §2.4): each
 * send of a query is signed with a fresh nonce, and a reply is accepted only when it is signed
 * with one of the keys, fresh, never seen before and bound to one of those nonces (policy
 * `required`), or also unsigned and marked `verified: false` (policy `preferred`).
 */
import { ReplayCache, signDatagram, verifyDatagram, type AuthPolicy, type GridKey } from '../auth/gridAuth.js';
import { unsealMessage } from '../auth/sealed.js';
import type { Classifier } from './collector.js';

/** A signer of one query's sends and a classifier wrapper for its replies. */
export interface QueryAuth<T> {
  readonly payload: () => Uint8Array;
  readonly classify: Classifier<T>;
}

/** Wraps `classify` (of unsigned bytes) and `body` (the query) for a keyed grid. */
export function authenticated<T extends object>(
  body: Uint8Array,
  keys: readonly GridKey[],
  policy: Exclude<AuthPolicy, 'off'>,
  classify: Classifier<T>,
): QueryAuth<T> {
  const signer = keys[0] as GridKey;
  const sent = new Set<string>();
  const replay = new ReplayCache();
  return {
    payload: () => {
      const signed = signDatagram(body, signer);
      sent.add(signed.nonce);
      return signed.bytes;
    },
    classify: (data, from) => {
      const v = verifyDatagram(data, { keys, replay, replyTo: sent });
      if (v.kind === 'invalid') return { kind: 'malformed', reason: `authentication: ${v.reason}` };
      if (v.kind === 'unsigned' && policy !== 'preferred') return { kind: 'malformed', reason: 'authentication: unsigned reply' };
      // Sealed params (src/auth/sealed.ts) are opened once the reply is known to be genuine.
      const verdict = classify(v.kind === 'valid' ? unsealMessage(v.body, keys) : v.body, from);
      return verdict.kind === 'accept' ? { ...verdict, value: { ...verdict.value, verified: v.kind === 'valid' } } : verdict;
    },
  };
}
