/**
 * polod's side of authenticated grids (src/auth/gridAuth.ts, docs/protocol.md §2.4): checks the
 * authenticator of each query before it is decoded and signs each reply. One gate per served
 * group (its keys and policy) and one for the unicast port (every key of the node); the replay
 * cache is shared, so a query replayed to another group or port gets no second answer either.
 */
import type { JsonObject } from '../protocol/json.js';
import type { ServiceEntry } from '../protocol/messages.js';
import { seal, unsealMessage } from '../auth/sealed.js';
import { signDatagram, signReply, verifyDatagram, type VerifyOptions, type AuthPolicy, type GridKey, type ReplayCache } from '../auth/gridAuth.js';

/** What a checked query is. */
export type Admission =
  | { readonly ok: true; readonly body: Uint8Array; readonly nonce?: string; readonly key?: GridKey }
  | { readonly ok: false; readonly reason: string };

/** Checks queries and signs replies for one group (or the unicast port). */
export class AuthGate {
  constructor(
    readonly policy: Exclude<AuthPolicy, 'off'>,
    /** The first key signs replies to unsigned queries; a signed query is answered under its own key. */
    readonly keys: readonly GridKey[],
    replay: ReplayCache,
  ) {
    if (keys.length === 0) throw new Error('AuthGate without keys');
    this.verify = { keys, replay };
  }

  /** The same options for every check: no object per query. */
  private readonly verify: VerifyOptions;

  /** Whether the datagram may be answered, and the message to decode (without `"Auth"`). */
  check(data: Uint8Array): Admission {
    const v = verifyDatagram(data, this.verify);
    switch (v.kind) {
      case 'valid':
        return { ok: true, body: v.body, nonce: v.nonce, key: v.key };
      case 'unsigned':
        // `preferred`: a reference node (or any unkeyed peer) is still answered, signed.
        return this.policy === 'preferred' ? { ok: true, body: data } : { ok: false, reason: 'unsigned' };
      case 'invalid':
        return { ok: false, reason: v.reason };
    }
  }

  /** Policy `sealed`: the key that seals what this node sends (the first). */
  get sealer(): GridKey | undefined {
    return this.policy === 'sealed' ? this.keys[0] : undefined;
  }

  /** Params as this node sends them: sealed under policy `sealed` (src/auth/sealed.ts). */
  sealParams(params: JsonObject): JsonObject {
    const key = this.sealer;
    return key === undefined ? params : seal(params, key);
  }

  /**
   * A service list as this node sends it: each service's params sealed under policy `sealed`
   * (a new list), else `services` itself.
   */
  sealServices(services: readonly ServiceEntry[]): readonly ServiceEntry[] {
    const key = this.sealer;
    return key === undefined ? services : services.map((s) => ({ id: s.id, params: seal(s.params, key) }));
  }

  /** A checked message (not a query) with the sealed params it carries opened. */
  open(body: Uint8Array): Uint8Array {
    return unsealMessage(body, this.keys);
  }

  /** Signs a reply: under the key of the query it answers, bound to that query's nonce. */
  sign(reply: Uint8Array, replyTo: string | undefined, key: GridKey | undefined): Uint8Array {
    const signer = key ?? (this.keys[0] as GridKey);
    return replyTo === undefined ? signDatagram(reply, signer).bytes : signReply(reply, signer, replyTo);
  }
}
