/**
 * One view-refreshing Marco query: send to the group, collect the Polo replies (with their
 * Members hint) until every expected member answered plus a short grace, or the window ends.
 * Used by polod's presence and by watchers; discovery calls use src/discovery/collector.ts.
 *
 * Out of several links (`targets`, src/discovery/targets.ts), each link's hints count that
 * link only: the query ends early once every link it went out of has answered in full.
 */
import type { SendTarget } from '../discovery/collector.js';
import { decodeObject } from '../protocol/codec.js';
import { isJsonObject, type JsonObject } from '../protocol/json.js';
import type { DatagramHandler, DatagramSocket, Transport } from '../transport/transport.js';
import { membersHint } from './wire.js';
import { LinkTally } from '../discovery/linkTally.js';
import { allFailed, closeSockets, familySocketOptions, openFamilySockets, sendToEach, targetFamilies } from '../discovery/sendTargets.js';

/** A reply that passed a keyed grid's check: the message to decode, and whether it was signed. */
export interface Checked {
  readonly body: Uint8Array;
  readonly verified: boolean;
}

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
  /** One datagram per entry (every link); undefined or empty = one to `group`, the socket's way. */
  readonly targets?: readonly SendTarget[] | undefined;
  /** The link of a replier (src/membership/links.ts), with several targets. */
  readonly linkOf?: ((address: string) => string) | undefined;
  readonly ttl: number;
  /**
   * The query, or a function making it per target: in a keyed grid each copy is signed apart, as
   * a dual-stack node hears both families and would refuse a second copy as a replay.
   */
  readonly payload: Uint8Array | ((target: SendTarget) => Uint8Array);
  readonly windowMs: number;
  readonly graceMs: number;
  /** Members known before the query (a floor for the expected count; one link only). */
  readonly knownMembers: number;
  /** Called for each reply as it arrives. */
  readonly onReply?: (s: PoloSighting) => void;
  /** In a keyed grid: the reply's message and whether it was signed, or undefined (ignored). */
  readonly check?: (data: Uint8Array) => Checked | undefined;
  readonly signal?: AbortSignal;
}

/**
 * Opens one socket per address family the targets need and sends `payload` to each target
 * (to `group` when there is none); a target that fails (its interface vanished) is skipped.
 * Throws only when nothing could be sent. The caller closes the sockets.
 */
export async function sendToTargets(
  plan: Pick<ViewQueryPlan, 'transport' | 'group' | 'port' | 'iface' | 'targets' | 'ttl'>,
  payload: ViewQueryPlan['payload'],
  onMessage: DatagramHandler,
): Promise<DatagramSocket[]> {
  const targets = plan.targets !== undefined && plan.targets.length > 0 ? plan.targets : [{ address: plan.group, via: undefined }];
  const sockets = await openFamilySockets(plan.transport, targetFamilies(targets), (family) => familySocketOptions(plan.ttl, plan.iface, family), onMessage);
  const failed = allFailed(await sendToEach(sockets, targets, plan.port, payload));
  if (failed !== undefined) {
    await closeSockets(sockets.values());
    throw failed.reason;
  }
  return [...sockets.values()];
}

/** Runs the query; resolves with every distinct replier (never rejects: a failure is no reply). */
export async function viewQuery(plan: ViewQueryPlan): Promise<PoloSighting[]> {
  const seen = new Map<string, PoloSighting>();
  const links = plan.targets !== undefined && plan.targets.length > 1 && plan.linkOf !== undefined ? new LinkTally() : undefined;
  let expected = plan.knownMembers;
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (finish = resolve));
  let graceTimer: NodeJS.Timeout | undefined;
  const onMessage = (received: Uint8Array, from: { address: string }): void => {
    const checked = plan.check?.(received);
    if (plan.check && checked === undefined) return;
    const data = checked ? checked.body : received;
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
    if (links !== undefined && plan.linkOf !== undefined) {
      // Complete once every link the query went out of answered as many nodes as it counts.
      const complete = links.add(plan.linkOf(from.address), s.hint) && links.size >= (plan.targets?.length ?? 1);
      clearTimeout(graceTimer);
      graceTimer = complete ? setTimeout(finish, plan.graceMs).unref() : undefined;
      return;
    }
    if (s.hint !== undefined) expected = Math.max(expected, s.hint);
    if (expected > 0 && seen.size >= expected && graceTimer === undefined) {
      graceTimer = setTimeout(finish, plan.graceMs).unref();
    }
  };
  const windowTimer = setTimeout(finish, plan.windowMs).unref();
  const abort = (): void => finish();
  plan.signal?.addEventListener('abort', abort, { once: true });
  try {
    const sockets = await sendToTargets(plan, plan.payload, onMessage);
    try {
      await done;
    } finally {
      await Promise.all(sockets.map((s) => s.close()));
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
