/**
 * One lifecycle contract for every long-lived component (src/util/lifecycle.ts), run as one
 * shared suite: start twice, stop twice and stop before start are harmless; start or use after
 * stop throws ClosedError.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { PoloClient } from '../../src/client/poloClient.js';
import { PoloDaemon } from '../../src/daemon/poloDaemon.js';
import { MarcodServer } from '../../src/marcod/server.js';
import { PublishServer } from '../../src/publish/server.js';
import { ServiceRegistry } from '../../src/registry/registry.js';
import { DEFAULT_VERIFY_REGEXP } from '../../src/registry/userId.js';
import { Polo } from '../../src/responder/polo.js';
import { MemoryNetwork } from '../../src/transport/memory.js';
import type { Startable } from '../../src/util/lifecycle.js';
import { FakeFolders, FakeUsers } from '../helpers/fakes.js';
import { MARCOD_HOST, settings } from '../helpers/marcod-fixture.js';

const G1 = '224.0.0.112';
let dir: string | undefined;
after(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** A component under the contract, and one use of it that must fail once it is stopped. */
interface Subject {
  /** Components that start on demand (a registry, a client) have a no-op start. */
  readonly component: Startable;
  readonly startsOnDemand?: boolean;
  /** Something the component does while started; must reject with ClosedError after stop. */
  use(): Promise<unknown>;
}

const subjects: Record<string, () => Promise<Subject>> = {
  Polo: async () => {
    const polo = new Polo({ transport: new MemoryNetwork().host('10.0.0.1'), multicastGroup: G1 });
    return { component: { start: () => polo.startProtocol(), stop: () => polo.stop() }, use: () => polo.reloadServices() };
  },
  PoloDaemon: async () => {
    const daemon = new PoloDaemon(
      { groups: [G1], port: 1337, interfaces: [], nodeParams: {}, servicesDir: '/srv', userDir: '.polo', verifyRegexp: DEFAULT_VERIFY_REGEXP, ttl: 1, joinRetries: 0 },
      { logger: (await import('../../src/util/log.js')).silentLogger, loadServices: new FakeFolders().loader, users: new FakeUsers([]), transport: new MemoryNetwork().host('10.0.0.1') },
    );
    return { component: daemon, use: () => daemon.reload() };
  },
  ServiceRegistry: async () => {
    const registry = new ServiceRegistry({ groups: [G1] });
    return { component: { start: async () => {}, stop: async () => registry.close() }, startsOnDemand: true, use: () => registry.reload() };
  },
  PublishServer: async () => {
    dir ??= await mkdtemp(path.join(tmpdir(), 'mp-life-'));
    const server = new PublishServer({ handle: async () => ({ OK: 0 }), socketPath: path.join(dir, `p${Math.random().toString(36).slice(2)}.sock`) });
    return { component: server, use: () => server.start() };
  },
  MarcodServer: async () => {
    const server = new MarcodServer(settings({ bindAddress: '127.0.0.1', marcoPort: 0 }), { transport: new MemoryNetwork().host(MARCOD_HOST) });
    return { component: server, use: () => server.start() };
  },
  PoloClient: async () => {
    const client = new PoloClient({ socketPath: '/nonexistent/polod.sock', home: '/nonexistent', uid: 0 });
    // A client connects on demand: its start is a no-op, its stop is close().
    return { component: { start: async () => {}, stop: () => client.close() }, startsOnDemand: true, use: () => client.list() };
  },
};

for (const [name, make] of Object.entries(subjects)) {
  describe(`lifecycle: ${name}`, () => {
    it('stop before start is harmless, and start after it throws ClosedError', async () => {
      const { component, startsOnDemand, use } = await make();
      await component.stop();
      await assert.rejects(startsOnDemand ? use() : component.start(), { name: 'ClosedError' });
    });

    it('start twice and stop twice are harmless', async () => {
      const { component } = await make();
      await Promise.all([component.start(), component.start()]);
      await component.start();
      await Promise.all([component.stop(), component.stop()]);
      await component.stop();
    });

    it('use after stop throws ClosedError', async () => {
      const { component, use } = await make();
      await component.start();
      await component.stop();
      await assert.rejects(use(), { name: 'ClosedError' });
    });
  });
}
