/**
 * polod's entry in the grid registry (etcd): its node and services in every group it serves,
 * under the key layout of layout.ts, on one lease that it keeps alive. The entries follow every
 * change of the services (the registry's change events). When etcd cannot be reached, polod goes
 * on answering on its LANs and retries with back-off; once etcd answers again it re-registers,
 * on a new lease if the old one expired. One log line when the registry is lost, one when it is
 * back: never a line per retry.
 */
import type { GridKey } from '../auth/gridAuth.js';
import type { ServiceChangeSource } from '../registry/events.js';
import { backoffDelay, type Backoff } from '../util/backoff.js';
import type { Logger } from '../util/log.js';
import { ETCD_RETRY, type EtcdClient, type EtcdWrite } from './client.js';
import { nodeKey, serviceKey, type NodeRecord } from './layout.js';
import { signEntry } from './signedEntry.js';
import type { JsonObject } from '../protocol/json.js';

/** What a node offers in one grid, read at each write. */
export interface GridOffer {
  readonly group: string;
  readonly port: number;
  /** The node's record in this grid now, in the clear (its rev is set here). */
  readonly record: () => Omit<NodeRecord, 'rev'>;
  /** In a keyed grid, the key that signs its entries (signedEntry.ts). */
  readonly signer?: GridKey;
  /** In a sealed grid, how params are sealed before they are written (as in its datagrams). */
  readonly seal?: (params: JsonObject) => JsonObject;
}

/** One key a node wants: its value's text in the clear (what is compared), and as written. */
interface WantedKey {
  readonly text: string;
  /** Sealed in a sealed grid: sealing draws a random iv, so only a changed value is sealed. */
  readonly written: () => string;
  readonly signer: GridKey | undefined;
}

/** What registration needs of etcd (an EtcdClient; tests pass a fake). */
export type LeaseStore = Pick<EtcdClient, 'grant' | 'keepAlive' | 'txn' | 'revoke'>;

export interface RegistrationOptions {
  readonly client: LeaseStore;
  /**
   * The IPv4 address the node is registered at (the one other subnets reach it on), read at each
   * write: when it changes (an interface readdressed), the next write moves the entries.
   */
  readonly address: () => string;
  readonly grids: readonly GridOffer[];
  readonly changes: ServiceChangeSource;
  /** Lease TTL in seconds: a node that dies leaves the registry this long after its last renewal. */
  readonly leaseSeconds: number;
  readonly logger: Logger;
  /** Back-off of retries while etcd is unreachable. */
  readonly retry?: Backoff;
}

/** The longest polod's stop waits for each registry step (the write under way, the revoke). */
const STOP_BUDGET_MS = 1000;

/** `work`, or nothing once `ms` have passed (the work goes on, unawaited). */
async function within(ms: number, work: Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

export class RegistryRegistration {
  /** `registered` while the entries are in etcd on a live lease. */
  state: 'new' | 'registering' | 'registered' | 'lost' | 'stopped' = 'new';
  /** Leases granted so far (a re-registration after a lost lease grants a new one). */
  leases = 0;
  private lease: string | undefined;
  /** What this node last wrote on its lease: key → value text (unsigned). */
  private readonly written = new Map<string, string>();
  private readonly revs = new Map<string, { content: string; rev: number }>();
  private attempts = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private unsubscribe: () => void = () => {};

  constructor(private readonly options: RegistrationOptions) {}

  /** Starts registering (in the background: polod does not wait for etcd). */
  start(): void {
    if (this.state !== 'new') return;
    this.state = 'registering';
    this.unsubscribe = this.options.changes.onChange(() => {
      // While etcd is unreachable the next retry writes everything anyway.
      if (this.state === 'registered') this.run();
    });
    this.run();
  }

  /** Writes again what differs now (the address, after an interface change); no-op unless registered. */
  refresh(): void {
    if (this.state === 'registered') this.run();
  }

  /** Waits for the write under way, if any (tests and benchmarks). */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }

  /**
   * Stops renewing and revokes the lease, so the node leaves the registry at once. Bounded: a
   * registry that does not answer never holds polod's stop up for more than about a second
   * (the lease then expires by itself).
   */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    const registered = this.state === 'registered';
    this.state = 'stopped';
    clearTimeout(this.timer);
    this.unsubscribe();
    await within(STOP_BUDGET_MS, this.settled());
    const lease = this.lease;
    this.lease = undefined;
    if (lease === undefined || !registered) return;
    const revoked = this.options.client.revoke(lease).catch((err: unknown) => {
      this.options.logger.debug({ err: (err as Error).message }, 'could not revoke the registry lease (it expires by itself)');
    });
    await within(STOP_BUDGET_MS, revoked);
  }

  /** One pass at a time; a request during a pass runs one more pass after it. */
  private run(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.pass();
      } while (this.again && this.state !== 'stopped');
    })().finally(() => (this.running = undefined));
  }

  /** Renews the lease (a new one if it is gone), then writes what changed. */
  private async pass(): Promise<void> {
    if (this.state === 'stopped') return;
    clearTimeout(this.timer);
    const { client } = this.options;
    try {
      if (this.lease !== undefined && (await client.keepAlive(this.lease)) <= 0) this.lease = undefined;
      if (this.lease === undefined) {
        const granted = await client.grant(this.options.leaseSeconds);
        this.lease = granted.id;
        this.leases++;
        this.written.clear();
      }
      await this.write(this.lease);
    } catch (err) {
      this.failed(err);
      return;
    }
    if (this.stopped) return;
    const was = this.state;
    this.state = 'registered';
    this.attempts = 0;
    // The address only for the two log lines (reading it may read the interface list).
    if (was === 'lost') this.options.logger.info({ address: this.options.address() }, 'registry reachable again: node registered');
    else if (was === 'registering') this.options.logger.info({ address: this.options.address(), leaseSeconds: this.options.leaseSeconds }, 'node registered in the registry');
    // Renewed three times per TTL: one lost renewal never lets the lease expire.
    this.schedule((this.options.leaseSeconds * 1000) / 3);
  }

  /** True once stopped (a method, so checks after an await are not narrowed away). */
  private get stopped(): boolean {
    return this.state === 'stopped';
  }

  private failed(err: unknown): void {
    if (this.state === 'stopped') return;
    if (this.state !== 'lost') {
      this.options.logger.warn({ err: (err as Error).message }, 'registry unreachable: LAN discovery goes on; retrying');
    }
    this.state = 'lost';
    this.attempts++;
    this.schedule(backoffDelay(this.attempts, this.options.retry ?? ETCD_RETRY));
  }

  private schedule(delay: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.run(), Math.round(delay));
    this.timer.unref();
  }

  /**
   * Writes the keys that differ from what was written, deletes those no longer wanted: one
   * transaction. `written` holds the texts in the clear (it is cleared with each new lease), so
   * only the keys written are sealed and signed, not every key at every renewal.
   */
  private async write(lease: string): Promise<void> {
    const wanted = this.wanted();
    const writes: EtcdWrite[] = [];
    for (const [key, { text, written, signer }] of wanted) {
      if (this.written.get(key) === text) continue;
      const value = written();
      writes.push({ put: key, value: signer === undefined ? value : signEntry(key, value, lease, signer), lease });
    }
    for (const key of this.written.keys()) if (!wanted.has(key)) writes.push({ delete: key });
    if (writes.length === 0) return;
    await this.options.client.txn(writes);
    this.written.clear();
    for (const [key, { text }] of wanted) this.written.set(key, text);
  }

  /** Every key this node wants now. */
  private wanted(): Map<string, WantedKey> {
    const address = this.options.address();
    const wanted = new Map<string, WantedKey>();
    for (const grid of this.options.grids) {
      const now = grid.record();
      const content = JSON.stringify(now);
      const gridId = `${grid.group}:${grid.port}`;
      const known = this.revs.get(gridId);
      const rev = known === undefined ? 1 : known.content === content ? known.rev : known.rev + 1;
      this.revs.set(gridId, { content, rev });
      const record: NodeRecord = { instance: now.instance, rev, params: now.params, services: now.services, ...(now.failing && now.failing.length > 0 && { failing: now.failing }) };
      const { signer, seal } = grid;
      const text = JSON.stringify(record);
      const written =
        seal === undefined ? () => text : () => JSON.stringify({ ...record, params: seal(record.params), services: record.services.map((s) => ({ id: s.id, params: seal(s.params) })) });
      wanted.set(nodeKey(grid.group, grid.port, address), { text, written, signer });
      for (const s of now.services) {
        const params = JSON.stringify(s.params);
        wanted.set(serviceKey(grid.group, grid.port, s.id, address), { text: params, written: seal === undefined ? () => params : () => JSON.stringify(seal(s.params)), signer });
      }
    }
    return wanted;
  }
}
