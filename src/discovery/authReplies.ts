/**
 * The client's side of authenticated grids (src/auth/gridAuth.ts, docs/protocol.md §2.4): each
 * send of a query is signed with a fresh nonce, and a reply is accepted only when it is signed
 * with one of the keys, fresh, never seen before and bound to one of those nonces (policy
 * `required`), or also unsigned and marked `verified: false` (policy `preferred`).
 */
import { ReplayCache, type AuthPolicy, type GridKey } from '../auth/gridAuth.js';
import { signedQuery } from '../auth/keyedExchange.js';
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
  const query = signedQuery(body, keys, policy, new ReplayCache());
  return {
    payload: query.payload,
    classify: (data, from) => {
      const judged = query.check(data);
      if (!judged.ok) return { kind: 'malformed', reason: `authentication: ${judged.reason === 'unsigned' ? 'unsigned reply' : judged.reason}` };
      const verdict = classify(judged.body, from);
      return verdict.kind === 'accept' ? { ...verdict, value: { ...verdict.value, verified: judged.verified } } : verdict;
    },
  };
}
