/**
 * Reading grids from the registry (etcd), for discovery clients: the nodes of a grid, the
 * providers of one service, one node's services, and a live follow of a whole grid (one prefix
 * watch, re-read and re-watched after any break, with back-off).
 */
import type { JsonObject } from '../protocol/json.js';
import { backoffDelay } from '../util/backoff.js';
import type { Logger } from '../util/log.js';
import { ETCD_RETRY, type EtcdClient, type EtcdKeyValue } from './client.js';
import { gridPrefix, nodeAddressOf, nodeKey, readNodeRecord, readServiceParams, servicePrefix, type NodeRecord } from './layout.js';

/** A node as the registry lists it. */
export interface RegistryNode {
  readonly address: string;
  readonly record: NodeRecord;
}

/** What a follower is told. */
export interface GridFollower {
  /** The whole grid, after every (re)connection: nodes absent from it are gone. */
  snapshot(nodes: ReadonlyMap<string, NodeRecord>): void;
  /** A node registered or changed. */
  put(address: string, record: NodeRecord): void;
  /** A node left (its lease ended or it unregistered). */
  remove(address: string): void;
}


export class RegistryReader {
  constructor(
    readonly client: EtcdClient,
    private readonly logger?: Logger,
  ) {}

  /** Every node of the grid. */
  async nodes(group: string, port: number, signal?: AbortSignal): Promise<RegistryNode[]> {
    const prefix = gridPrefix(group, port);
    const { kvs } = await this.client.range(`${prefix}nodes/`, signal);
    return [...nodeEntries(prefix, kvs)].map(([address, record]) => ({ address, record }));
  }

  /** The providers of service `id` in the grid, with that service's params. */
  async providers(group: string, port: number, id: string, signal?: AbortSignal): Promise<Array<{ address: string; params: JsonObject }>> {
    const prefix = servicePrefix(group, port, id);
    const { kvs } = await this.client.range(prefix, signal);
    const found: Array<{ address: string; params: JsonObject }> = [];
    for (const kv of kvs) {
      const params = readServiceParams(kv.value);
      if (params !== undefined) found.push({ address: kv.key.slice(prefix.length), params });
    }
    return found;
  }

  /** One node of the grid, or undefined. */
  async node(group: string, port: number, address: string, signal?: AbortSignal): Promise<NodeRecord | undefined> {
    const kv = await this.client.get(nodeKey(group, port, address), signal);
    return kv === undefined ? undefined : readNodeRecord(kv.value);
  }

  /**
   * Follows the grid until `signal` aborts: a snapshot, then every change; after a break (etcd
   * unreachable, member gone), a new snapshot once it answers again. `onState` hears each
   * change of reachability (one log line each way, not one per retry).
   */
  async follow(
    group: string,
    port: number,
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
        follower.snapshot(new Map(nodeEntries(prefix, kvs)));
        report(true);
        attempts = 0;
        await this.client.watch(
          `${prefix}nodes/`,
          revision + 1,
          (events) => {
            for (const e of events) {
              const address = nodeAddressOf(prefix, e.key);
              if (address === undefined) continue;
              if (e.type === 'delete') follower.remove(address);
              else {
                const record = readNodeRecord(e.value);
                if (record !== undefined) follower.put(address, record);
              }
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

/** The node records among `kvs` (keys under `prefix`nodes/), by address; other keys and bad values are skipped. */
function* nodeEntries(prefix: string, kvs: readonly EtcdKeyValue[]): Generator<[string, NodeRecord]> {
  for (const kv of kvs) {
    const address = nodeAddressOf(prefix, kv.key);
    const record = address === undefined ? undefined : readNodeRecord(kv.value);
    if (address !== undefined && record !== undefined) yield [address, record];
  }
}
