/**
 * Feeding a watch's membership view (src/membership/view.ts) from the grid registry: a
 * registered node is heard as if it had announced itself, with the registry's content, and
 * never expires by silence: it leaves when its key does (its lease ended, or it unregistered).
 * A node also heard on the LAN is one member (the view is keyed by address).
 */
import type { MembershipView } from '../membership/view.js';
import type { RegistryFeed } from '../membership/watch.js';
import type { RegistryNode, RegistryReader } from './gridReader.js';
import type { EntryTrust } from './signedEntry.js';

/** Heartbeat given to registry members: long enough that the view's sweep never expires them. */
const NEVER_MS = 1e12;

/**
 * Feeds a watch from the grid, with the entries `trust` may use (a keyed watch hears them as
 * verified or not, as it hears announcements); `onUnreachable` hears each loss of the registry
 * (once per break).
 */
export function registryFollower(
  reader: RegistryReader,
  group: string,
  port: number,
  trust: EntryTrust,
  onUnreachable?: (err: Error) => void,
): RegistryFeed {
  return (view: MembershipView, signal: AbortSignal, ready: () => void) => {
    /** What the registry vouched for: each member's instance, and whether a key signed its entry. */
    const known = new Map<string, { instance: string; verified: boolean | undefined }>();
    const put = ({ address, record, verified }: RegistryNode): void => {
      known.set(address, { instance: record.instance, verified });
      view.hearAnnouncement(
        address,
        {
          instance: record.instance,
          // Registry revisions count apart from the LAN's: negative, so they never pass for a LAN rev.
          rev: -record.rev,
          every: NEVER_MS,
          members: 0,
          params: record.params,
          services: record.services,
          refs: [],
          ...(record.failing && { failing: record.failing }),
        },
        verified,
      );
    };
    // The entry's end withdraws what that entry vouched for, with the same standing: a keyed view
    // takes no unsigned goodbye for a signed member, and a key deletion carries no signature.
    const remove = (address: string): void => {
      const entry = known.get(address);
      if (entry === undefined) return;
      known.delete(address);
      view.hearGoodbye(address, entry.instance, entry.verified);
    };
    return reader.follow(
      group,
      port,
      trust,
      {
        snapshot: (nodes) => {
          for (const address of [...known.keys()]) if (!nodes.has(address)) remove(address);
          for (const node of nodes.values()) put(node);
        },
        put,
        remove,
      },
      signal,
      (reachable, err) => {
        ready();
        if (!reachable) onUnreachable?.(err ?? new Error('unreachable'));
      },
    );
  };
}
