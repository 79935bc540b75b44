/**
 * One view-refreshing Marco query: send to the group, collect the Polo replies (with their
 * Members hint) until every expected member answered plus a short grace, or the window ends.
 * Used by polod's presence and by watchers; discovery calls use src/discovery/collector.ts.
 */
import { decodeObject } from '../protocol/codec.js';
import { isJsonObject, type JsonObject } from '../protocol/json.js';
import type { Transport } from '../transport/transport.js';
import { membersHint } from './wire.js';

/** One Polo reply. */
export interface PoloSighting {
  readonly address: string;
  readonly params: JsonObject;
  /** The Members hint (our polods only). */
  readonly hint: number | undefined;
  /** In a keyed grid (a watcher's query): whether the reply was signed. */
  readonly verified?: boolean;
}

export interface ViewQueryPlan {
  readonly transport: Transport;
  readonly group: string;
  readonly port: number;
  readonly iface?: string | undefined;
  readonly ttl: number;
  readonly payload: Uint8Array;
  readonly windowMs: number;
  readonly graceMs: number;
  /** Members known before the query (a floor for the expected count). */
  readonly knownMembers: number;
  /** Called for each reply as it arrives. */
  readonly onReply?: (s: PoloSighting) => void;
  /** In a keyed grid: the reply's message if its authenticator holds, else undefined (ignored). */
  readonly admit?: (data: Uint8Array) => Uint8Array | undefined;
  /** Instead of `admit` (a watcher's query): the message and whether it was signed, or undefined. */
  readonly check?: (data: Uint8Array) => { readonly body: Uint8Array; readonly verified: boolean } | undefined;
  readonly signal?: AbortSignal;
}

/** Runs the query; resolves with every distinct replier (never rejects: a failure is no reply). */
export async function viewQuery(plan: ViewQueryPlan): Promise<PoloSighting[]> {
  const seen = new Map<string, PoloSighting>();
  let expected = plan.knownMembers;
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (finish = resolve));
  let graceTimer: NodeJS.Timeout | undefined;
  const onMessage = (received: Uint8Array, from: { address: string }): void => {
    const checked = plan.check?.(received);
    if (plan.check && checked === undefined) return;
    const data = checked ? checked.body : plan.admit ? plan.admit(received) : received;
    if (data === undefined) return;
    let msg: JsonObject;
    try {
      msg = decodeObject(data);
    } catch {
      return;
    }
    if (msg['Command'] !== 'Polo' || seen.has(from.address)) return;
    const params = msg['Params'];
    const s: PoloSighting = {
      address: from.address,
      params: isJsonObject(params) ? params : {},
      hint: membersHint(msg),
      ...(checked !== undefined && { verified: checked.verified }),
    };
    seen.set(from.address, s);
    plan.onReply?.(s);
    if (s.hint !== undefined) expected = Math.max(expected, s.hint);
    if (expected > 0 && seen.size >= expected && graceTimer === undefined) {
      graceTimer = setTimeout(finish, plan.graceMs).unref();
    }
  };
  const windowTimer = setTimeout(finish, plan.windowMs).unref();
  const abort = (): void => finish();
  plan.signal?.addEventListener('abort', abort, { once: true });
  try {
    const socket = await plan.transport.openQuerySocket(
      plan.iface === undefined ? { ttl: plan.ttl } : { ttl: plan.ttl, iface: plan.iface },
      onMessage,
    );
    try {
      await socket.send(plan.payload, plan.port, plan.group);
      await done;
    } finally {
      await socket.close();
    }
  } catch {
    // A query that could not be sent found nobody; the next one may.
  } finally {
    clearTimeout(windowTimer);
    clearTimeout(graceTimer);
    plan.signal?.removeEventListener('abort', abort);
  }
  return [...seen.values()];
}
