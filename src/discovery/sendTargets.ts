/**
 * Sending one message out of several links (src/discovery/targets.ts): one socket per address
 * family the targets need, one datagram per target. Shared by discovery queries
 * (src/discovery/collector.ts), view queries (src/membership/query.ts) and polod's announcements
 * (src/membership/presence.ts); each keeps its own rule for what a failed send means.
 */
import { familyOf, type Family } from '../protocol/address.js';
import type { DatagramHandler, DatagramSocket, QuerySocketOptions, Transport } from '../transport/transport.js';
import type { SendTarget } from './collector.js';

/** The address families of `targets`, in the order they first appear. */
export function targetFamilies(targets: readonly { readonly address: string }[]): Set<Family> {
  return new Set(targets.map((t) => familyOf(t.address)));
}

/**
 * The options of a sending socket of `family` with TTL `ttl`, out of the IPv4 interface `iface`
 * (undefined: the system's choice): an IPv6 socket takes no IPv4 interface.
 */
export function familySocketOptions(ttl: number, iface: string | undefined, family: Family): QuerySocketOptions {
  return family === 6 ? { ttl, family } : iface === undefined ? { ttl } : { ttl, iface };
}

/**
 * Opens one socket per family of `families`, in order, with `options(family)`. When one cannot be
 * opened, the ones already open are closed and the error is thrown.
 */
export async function openFamilySockets(
  transport: Transport,
  families: Iterable<Family>,
  options: (family: Family) => QuerySocketOptions,
  onMessage: DatagramHandler,
): Promise<Map<Family, DatagramSocket>> {
  const sockets = new Map<Family, DatagramSocket>();
  try {
    for (const family of families) sockets.set(family, await transport.openQuerySocket(options(family), onMessage));
  } catch (err) {
    await closeSockets(sockets.values());
    throw err;
  }
  return sockets;
}

/** Closes every socket of `sockets`; a close that fails is ignored. */
export async function closeSockets(sockets: Iterable<DatagramSocket>): Promise<void> {
  await Promise.all([...sockets].map((s) => s.close().catch(() => undefined)));
}

/**
 * Sends to each target, in order, through the socket of its family: `payload`, or
 * `payload(target)` (made only for a target that has a socket). Resolves with the outcome of
 * each send, in the order of `targets`; a target without a socket of its family fails.
 */
export function sendToEach<T extends SendTarget>(
  sockets: ReadonlyMap<Family, DatagramSocket>,
  targets: readonly T[],
  port: number,
  payload: Uint8Array | ((target: T) => Uint8Array),
): Promise<Array<PromiseSettledResult<void>>> {
  return Promise.allSettled(
    targets.map((t) => {
      const socket = sockets.get(familyOf(t.address));
      if (socket === undefined) return Promise.reject(new Error('no socket of this family'));
      return socket.send(typeof payload === 'function' ? payload(t) : payload, port, t.address, t.via);
    }),
  );
}

/** The reason of the first failed send when every send failed; undefined when one went out. */
export function allFailed(outcomes: ReadonlyArray<PromiseSettledResult<unknown>>): { readonly reason: unknown } | undefined {
  const first = outcomes[0];
  if (first === undefined || first.status !== 'rejected' || outcomes.some((o) => o.status === 'fulfilled')) return undefined;
  return { reason: first.reason };
}
