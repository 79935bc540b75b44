/**
 * polod's registration in the grid registry (src/etcd/registration.ts) against a fake store:
 * one transaction per change with only what changed (sealed, in a sealed grid, only then), a new lease when the old one is gone,
 * retries with back-off while the store is down with one log line when it is lost and one when
 * it is back, and the lease revoked at stop. The real etcd is exercised by
 * test/integration/registry-etcd.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EtcdWrite } from '../../src/etcd/client.js';
import { RegistryRegistration, type LeaseStore, type RegistrationOptions } from '../../src/etcd/registration.js';
import type { ServiceChange } from '../../src/registry/events.js';
import { gridKey, ReplayCache } from '../../src/auth/gridAuth.js';
import { isSealed, unseal } from '../../src/auth/sealed.js';
import { isJsonObject, type Json, type JsonObject } from '../../src/protocol/json.js';
import { AuthGate } from '../../src/responder/authGate.js';
import { silentLogger } from '../../src/util/log.js';
import { recordingLogger } from '../helpers/marcod-fixture.js';
import { waitFor } from '../helpers/wait.js';

const KEY = gridKey(Buffer.from(Array.from({ length: 32 }, (_, i) => i)));

class FakeStore implements LeaseStore {
  down = false;
  leases = new Map<string, number>();
  next = 1;
  txns: EtcdWrite[][] = [];
  revoked: string[] = [];
  /** Calls refused while down (the registration's retries). */
  failures = 0;
  private check(): void {
    if (!this.down) return;
    this.failures++;
    throw new Error('connection refused');
  }
  grant(ttl: number): Promise<{ id: string; ttl: number }> {
    this.check();
    const id = String(this.next++);
    this.leases.set(id, ttl);
    return Promise.resolve({ id, ttl });
  }
  keepAlive(id: string): Promise<number> {
    this.check();
    return Promise.resolve(this.leases.get(id) ?? 0);
  }
  txn(writes: readonly EtcdWrite[]): Promise<void> {
    this.check();
    this.txns.push([...writes]);
    return Promise.resolve();
  }
  revoke(id: string): Promise<void> {
    this.check();
    this.revoked.push(id);
    this.leases.delete(id);
    return Promise.resolve();
  }
}

/** A registration of node 10.0.0.9 in grid 224.0.0.112:1337 (no services), on `store`. */
function registration(store: FakeStore, overrides: Partial<RegistrationOptions> = {}): RegistryRegistration {
  return new RegistryRegistration({
    client: store,
    address: () => '10.0.0.9',
    leaseSeconds: 10,
    logger: silentLogger,
    changes: { onChange: () => () => {} },
    grids: [{ group: '224.0.0.112', port: 1337, record: () => ({ instance: 'i', params: {}, services: [] }) }],
    ...overrides,
  });
}

/** The keys a transaction writes, sorted; a delete as `-key`. */
function keysOf(txn: readonly EtcdWrite[] | undefined): string[] {
  return (txn ?? []).map((w) => ('put' in w ? w.put : `-${w.delete}`)).sort();
}

/** The JSON value a transaction puts at the key ending in `suffix`. */
function valueOf(txn: readonly EtcdWrite[] | undefined, suffix: string): Json | undefined {
  const put = (txn ?? []).find((w) => 'put' in w && w.put.endsWith(suffix));
  return put !== undefined && 'put' in put ? (JSON.parse(put.value.toString()) as Json) : undefined;
}

/** Waits for `cond` (the fake store answers at once: a short poll). */
function until(cond: () => boolean, what: string): Promise<true> {
  return waitFor(() => cond() || undefined, { what, timeoutMs: 10_000, intervalMs: 5 });
}

/** Waits until a second transaction is written and its pass has ended; the keys it wrote. */
async function secondTxnKeys(store: FakeStore, reg: RegistryRegistration, what: string): Promise<string[]> {
  await until(() => store.txns.length === 2, what);
  await reg.settled();
  return keysOf(store.txns[1]);
}

describe('RegistryRegistration', () => {
  it('writes the node and its services, then only what changes, and revokes at stop', async () => {
    const store = new FakeStore();
    const listeners = new Set<(c: ServiceChange) => void>();
    let services: Array<{ id: string; params: JsonObject }> = [{ id: 'web', params: { port: 80 } }];
    const reg = registration(store, {
      changes: { onChange: (l) => (listeners.add(l), () => listeners.delete(l)) },
      grids: [{ group: '224.0.0.112', port: 1337, record: () => ({ instance: 'i', params: {}, services }) }],
    });
    reg.start();
    await until(() => reg.state === 'registered', 'registered');
    const first = store.txns[0] ?? [];
    assert.deepEqual(keysOf(first), [
      '/marcopolo/v1/grids/224.0.0.112:1337/nodes/10.0.0.9',
      '/marcopolo/v1/grids/224.0.0.112:1337/services/web/10.0.0.9',
    ]);
    assert.ok(first.every((w) => 'put' in w && w.lease === '1'));
    services = [{ id: 'db', params: {} }];
    for (const l of listeners) l({ kind: 'added', group: '224.0.0.112', id: 'db', cause: 'file' });
    assert.deepEqual(await secondTxnKeys(store, reg, 'the change written'), [
      '-/marcopolo/v1/grids/224.0.0.112:1337/services/web/10.0.0.9',
      '/marcopolo/v1/grids/224.0.0.112:1337/nodes/10.0.0.9',
      '/marcopolo/v1/grids/224.0.0.112:1337/services/db/10.0.0.9',
    ]);
    await reg.stop();
    assert.deepEqual(store.revoked, ['1']);
    assert.equal(listeners.size, 0);
  });

  it('a sealed grid: params sealed as written, and sealed again only when they change', async () => {
    const store = new FakeStore();
    const gate = new AuthGate('sealed', [KEY], new ReplayCache());
    const listeners = new Set<(c: ServiceChange) => void>();
    let services: Array<{ id: string; params: JsonObject }> = [{ id: 'db', params: { port: 5432 } }];
    const reg = registration(store, {
      changes: { onChange: (l) => (listeners.add(l), () => listeners.delete(l)) },
      grids: [{ group: '224.0.0.112', port: 1337, record: () => ({ instance: 'i', params: { room: 'lab' }, services }), seal: (p) => gate.sealParams(p) }],
    });
    reg.start();
    await until(() => reg.state === 'registered', 'registered');
    const first = valueOf(store.txns[0], '/nodes/10.0.0.9');
    const node = isJsonObject(first) ? first : {};
    const services0 = node['services'];
    const db0 = Array.isArray(services0) && isJsonObject(services0[0]) ? services0[0]['params'] : undefined;
    assert.ok(isSealed(node['params']) && isSealed(db0), JSON.stringify(node));
    assert.deepEqual(isSealed(node['params']) && unseal(node['params'], [KEY]), { room: 'lab' });
    // A pass with nothing changed writes nothing, though sealing draws a new iv each time.
    reg.refresh();
    await reg.settled();
    assert.equal(store.txns.length, 1, 'unchanged: the same sealed bytes (no rewrite per renewal)');
    services = [{ id: 'db', params: { port: 5433 } }];
    for (const l of listeners) l({ kind: 'changed', group: '224.0.0.112', id: 'db', cause: 'file' });
    await until(() => store.txns.length === 2, 'the change written');
    const db = valueOf(store.txns[1], '/services/db/10.0.0.9');
    assert.ok(isSealed(db));
    assert.deepEqual(isSealed(db) && unseal(db, [KEY]), { port: 5433 });
    await reg.stop();
  });

  it('moves its entries when its address changes (an interface readdressed), in one transaction', async () => {
    const store = new FakeStore();
    let address = '10.0.0.9';
    const reg = registration(store, {
      address: () => address,
      grids: [{ group: '224.0.0.112', port: 1337, record: () => ({ instance: 'i', params: {}, services: [{ id: 'web', params: {} }] }) }],
    });
    reg.start();
    await until(() => reg.state === 'registered', 'registered');
    address = '10.0.7.9';
    reg.refresh();
    assert.deepEqual(await secondTxnKeys(store, reg, 'the move written'), [
      '-/marcopolo/v1/grids/224.0.0.112:1337/nodes/10.0.0.9',
      '-/marcopolo/v1/grids/224.0.0.112:1337/services/web/10.0.0.9',
      '/marcopolo/v1/grids/224.0.0.112:1337/nodes/10.0.7.9',
      '/marcopolo/v1/grids/224.0.0.112:1337/services/web/10.0.7.9',
    ]);
    // Nothing changed since: a refresh writes nothing.
    reg.refresh();
    await reg.settled();
    assert.equal(store.txns.length, 2);
    await reg.stop();
  });

  it('retries while the store is down, logs once each way, and re-registers on a new lease', async () => {
    const store = new FakeStore();
    const { logger, records } = recordingLogger();
    const reg = registration(store, { leaseSeconds: 2, logger, retry: { initialMs: 5, maxMs: 20 } });
    /** The messages logged at a pino level (30 info, 40 warn). */
    const logged = (level: number) => records.filter((r) => r['level'] === level).map((r) => r['msg']);
    reg.start();
    await until(() => reg.state === 'registered', 'registered');
    assert.equal(reg.leases, 1);
    assert.equal(store.txns.length, 1);
    store.down = true;
    // The next pass (a refresh here, the renewal otherwise) finds the store down.
    reg.refresh();
    await until(() => reg.state === 'lost', 'lost');
    // Several retries happen while it is down (back-off of 5..20 ms).
    const failuresBefore = store.failures;
    await until(() => store.failures >= failuresBefore + 3, 'several retries while the store is down');
    // Back, with the old lease gone (as after a long outage): a new one, everything written again.
    store.leases.clear();
    store.down = false;
    await until(() => reg.state === 'registered', 'registered again');
    await reg.settled();
    assert.deepEqual(logged(40), ['registry unreachable: LAN discovery goes on; retrying'], 'one line when lost, not one per retry');
    assert.deepEqual(logged(30), ['node registered in the registry', 'registry reachable again: node registered']);
    assert.equal(reg.leases, 2);
    assert.equal(store.txns.length, 2);
    assert.deepEqual(keysOf(store.txns[1]), keysOf(store.txns[0]), 'everything written again');
    assert.ok((store.txns[1] ?? []).every((w) => 'put' in w && w.lease === '2'));
    // The lease vanishes while registered: the next renewal takes a new one and rewrites.
    store.leases.clear();
    await until(() => reg.leases === 3 && store.txns.length === 3, 'a third lease');
    assert.ok((store.txns[2] ?? []).every((w) => 'put' in w && w.lease === '3'));
    await reg.stop();
  });
});
