/**
 * Reading grids from the registry (etcd), for discovery clients: the nodes of a grid, the
 * providers of one service, one node's services, and a live follow of a whole grid (one prefix
 * watch, re-read and re-watched after any break, with back-off). Every read takes the reader's
 * trust (its keys and policy for the grid): entries of keyed grids are checked and their sealed
 * params opened here (signedEntry.ts, docs/protocol.md §10.1).
 */
import type { GridKey } from '../auth/gridAuth.js';
import { holdsSealed, unsealAll } from '../auth/sealed.js';
import { isJsonObject, type JsonObject } from '../protocol/json.js';
import { backoffDelay } from '../util/backoff.js';
import type { Logger } from '../util/log.js';
import { ETCD_RETRY, type EtcdClient, type EtcdKeyValue } from './client.js';
import { gridPrefix, nodeAddressOf, nodeKey, readNodeRecord, readServiceParams, servicePrefix, type NodeRecord } from './layout.js';
import { openEntry, type EntryTrust, type OpenedEntry } from './signedEntry.js';

/** A node as the registry lists it; `verified` for a keyed reader (a key signed its entry). */
export interface RegistryNode {
  readonly address: string;
  readonly record: NodeRecord;
  readonly verified?: boolean;
}

/** A provider of one service as the registry lists it. */
export interface RegistryProvider {
  readonly address: string;
  readonly params: JsonObject;
  readonly verified?: boolean;
}

/** What a follower is told. */
export interface GridFollower {
  /** The whole grid, after every (re)connection: nodes absent from it are gone. */
  snapshot(nodes: ReadonlyMap<string, RegistryNode>): void;
  /** A node registered or changed. */
  put(node: RegistryNode): void;
  /** A node left (its lease ended or it unregistered), or its entry is no longer one to use. */
  remove(address: string): void;
}

export class RegistryReader {
  constructor(
    private readonly client: EtcdClient,
    private readonly logger?: Logger,
  ) {}

  /** Every node of the grid that `trust` may use. */
  async nodes(group: string, port: number, trust: EntryTrust, signal?: AbortSignal): Promise<RegistryNode[]> {
    const prefix = gridPrefix(group, port);
    const { kvs } = await this.client.range(`${prefix}nodes/`, signal);
    return [...nodeEntries(prefix, kvs, trust)];
  }

  /** The providers of service `id` in the grid, with that service's params. */
  async providers(group: string, port: number, id: string, trust: EntryTrust, signal?: AbortSignal): Promise<RegistryProvider[]> {
    const prefix = servicePrefix(group, port, id);
    const { kvs } = await this.client.range(prefix, signal);
    const found: RegistryProvider[] = [];
    for (const kv of kvs) {
      const entry = openEntry(kv.key, kv.value, kv.lease, trust);
      const params = entry === undefined ? undefined : readServiceParams(entry.text);
      if (entry !== undefined && params !== undefined) {
        const keys = sealKeys(entry, trust);
        found.push({ address: kv.key.slice(prefix.length), params: keys === undefined ? params : opened(params, keys), ...verifiedOf(entry) });
      }
    }
    return found;
  }

  /** One node of the grid, or undefined. */
  async node(group: string, port: number, address: string, trust: EntryTrust, signal?: AbortSignal): Promise<RegistryNode | undefined> {
    const key = nodeKey(group, port, address);
    const kv = await this.client.get(key, signal);
    return kv === undefined ? undefined : nodeEntry(address, kv, trust);
  }

  /**
   * Follows the grid until `signal` aborts: a snapshot, then every change; after a break (etcd
   * unreachable, member gone), a new snapshot once it answers again. `onState` hears each
   * change of reachability (one log line each way, not one per retry).
   */
  async follow(
    group: string,
    port: number,
    trust: EntryTrust,
    follower: GridFollower,
    signal: AbortSignal,
    onState?: (reachable: boolean, err?: Error) => void,
  ): Promise<void> {
    const prefix = gridPrefix(group, port);
    let attempts = 0;
    let reachable: boolean | undefined;
    const report = (now: boolean, err?: unknown): void => {
      if (reachable === now) return;
      reachable = now;
      onState?.(now, err instanceof Error ? err : err === undefined ? undefined : new Error(String(err)));
      if (now) this.logger?.info({ group, port }, 'registry followed');
      else this.logger?.warn({ group, port, err: (err as Error | undefined)?.message }, 'registry unreachable: LAN answers only; retrying');
    };
    while (!signal.aborted) {
      try {
        const { kvs, revision } = await this.client.range(`${prefix}nodes/`, signal);
        follower.snapshot(new Map([...nodeEntries(prefix, kvs, trust)].map((n) => [n.address, n])));
        report(true);
        attempts = 0;
        await this.client.watch(
          `${prefix}nodes/`,
          revision + 1,
          (events) => {
            for (const e of events) {
              const address = nodeAddressOf(prefix, e.key);
              if (address === undefined) continue;
              const node = e.type === 'delete' ? undefined : nodeEntry(address, e, trust);
              // A put this reader may not use (a forged or stale entry) ends what it replaced.
              if (node === undefined) follower.remove(address);
              else follower.put(node);
            }
          },
          signal,
        );
      } catch (err) {
        if (signal.aborted) return;
        report(false, err);
      }
      if (signal.aborted) return;
      attempts++;
      await sleep(backoffDelay(attempts, ETCD_RETRY), signal);
    }
  }
}

/**
 * Resolves after `ms`, or at once when `signal` aborts. Written here rather than taken from
 * node:timers/promises, which marco's bundle would then load at every start.
 */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** The usable node records among `kvs` (keys under `prefix`nodes/); other keys and bad values are skipped. */
function* nodeEntries(prefix: string, kvs: readonly EtcdKeyValue[], trust: EntryTrust): Generator<RegistryNode> {
  for (const kv of kvs) {
    const address = nodeAddressOf(prefix, kv.key);
    const node = address === undefined ? undefined : nodeEntry(address, kv, trust);
    if (node !== undefined) yield node;
  }
}

/** The node record held by `kv` as `trust` may use it (sealed params opened), or undefined. */
function nodeEntry(address: string, kv: Pick<EtcdKeyValue, 'key' | 'value' | 'lease'>, trust: EntryTrust): RegistryNode | undefined {
  const entry = openEntry(kv.key, kv.value, kv.lease, trust);
  const record = entry === undefined ? undefined : readNodeRecord(entry.text);
  if (entry === undefined || record === undefined) return undefined;
  const keys = sealKeys(entry, trust);
  const open: NodeRecord =
    keys === undefined
      ? record
      : { ...record, params: opened(record.params, keys), services: record.services.map((s) => ({ id: s.id, params: opened(s.params, keys) })) };
  return { address, record: open, ...verifiedOf(entry) };
}

/**
 * The keys to open sealed values with, when the entry holds any and was read with keys (an
 * entry read with keys says whether it was `verified`: openEntry).
 */
function sealKeys(entry: OpenedEntry, trust: EntryTrust): readonly GridKey[] | undefined {
  return entry.verified !== undefined && holdsSealed(entry.text) ? trust.keys : undefined;
}

/** `params` with the sealed values a key of `keys` opens replaced by what they hold. */
function opened(params: JsonObject, keys: readonly GridKey[]): JsonObject {
  const open = unsealAll(params, keys);
  return isJsonObject(open) ? open : params;
}

/** An answer's `verified`: set for a keyed reader only (as for answers from the LAN). */
export function verifiedOf(entry: { readonly verified?: boolean | undefined }): { verified?: boolean } {
  return entry.verified === undefined ? {} : { verified: entry.verified };
}
