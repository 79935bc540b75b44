/** polod's composition over the in-memory network: several groups, unicast Services, reload. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PoloDaemon, type PoloDaemonSettings } from '../../src/daemon/poloDaemon.js';
import { DEFAULT_VERIFY_REGEXP } from '../../src/responder/polo.js';
import { MemoryNetwork } from '../../src/transport/memory.js';
import { silentLogger } from '../../src/util/log.js';
import { bytes, FakeFolders, FakeUsers, fileService } from '../helpers/fakes.js';

const G1 = '224.0.0.112';
const G2 = '224.0.0.113';

const settings: PoloDaemonSettings = {
  groups: [G1, G2],
  port: 1337,
  interfaces: [],
  nodeParams: { hostname: 'polo-a' },
  servicesDir: '/etc/services',
  userDir: '.polo',
  verifyRegexp: DEFAULT_VERIFY_REGEXP,
  ttl: 1,
  joinRetries: -1,
};

/** Sends one datagram from a client host and resolves with the first `count` replies. */
function query(net: MemoryNetwork, to: { address: string; port: number }, message: unknown, count = 1): Promise<unknown[]> {
  return new Promise((resolve) => {
    const replies: unknown[] = [];
    void net
      .host('10.0.0.9')
      .openQuerySocket({ ttl: 2 }, (data) => {
        replies.push(JSON.parse(new TextDecoder().decode(data)));
        if (replies.length === count) resolve(replies);
      })
      .then((s) => s.send(bytes(message), to.port, to.address));
  });
}

async function start() {
  const net = new MemoryNetwork();
  const folders = new FakeFolders();
  folders.dirs.set('/etc/services', [
    fileService('web', { port: 8080 }),
    fileService('printer', { queue: 'lp0' }, { groups: [G2] }),
  ]);
  const daemon = new PoloDaemon(settings, {
    logger: silentLogger,
    loadServices: folders.loader,
    users: new FakeUsers([]),
    transport: net.host('10.0.0.1'),
  });
  await daemon.start();
  return { net, folders, daemon };
}

describe('PoloDaemon', () => {
  it('serves each group its own services', async () => {
    const { net, daemon } = await start();
    // The only provider of the grid says so (docs/protocol.md §8.4).
    assert.deepEqual(await query(net, { address: G2, port: 1337 }, { Command: 'Request-For', Params: 'printer' }), [
      { Command: 'OK', Params: { queue: 'lp0' }, Providers: 1 },
    ]);
    assert.deepEqual(daemon.registry.rootServices(G1).map((s) => s.id), ['web']);
    assert.deepEqual(daemon.registry.rootServices(G2).map((s) => s.id), ['web', 'printer']);
    await daemon.stop();
  });

  it('answers Services by unicast with every group, or one group when asked', async () => {
    const { net, daemon } = await start();
    const all = [
      { id: 'web', params: { port: 8080 } },
      { id: 'printer', params: { queue: 'lp0' } },
    ];
    assert.deepEqual(await query(net, { address: '10.0.0.1', port: 1337 }, { Command: 'Services' }), [
      { Command: 'OK', Services: all, Params: all },
    ]);
    const g1 = [{ id: 'web', params: { port: 8080 } }];
    assert.deepEqual(await query(net, { address: '10.0.0.1', port: 1337 }, { Command: 'Services', Group: G1 }), [
      { Command: 'OK', Services: g1, Params: g1 },
    ]);
    await daemon.stop();
  });

  it('answers Services sent to a group with that group only', async () => {
    const { net, daemon } = await start();
    const g1 = [{ id: 'web', params: { port: 8080 } }];
    assert.deepEqual(await query(net, { address: G1, port: 1337 }, { Command: 'Services' }), [
      { Command: 'OK', Services: g1, Params: g1 },
    ]);
    await daemon.stop();
  });

  it('answers unicast Marco and Request-For', async () => {
    const { net, daemon } = await start();
    assert.deepEqual(await query(net, { address: '10.0.0.1', port: 1337 }, { Command: 'Marco' }), [
      { Command: 'Polo', Params: { hostname: 'polo-a' } },
    ]);
    assert.deepEqual(await query(net, { address: '10.0.0.1', port: 1337 }, { Command: 'Request-For', Params: 'printer' }), [
      { Command: 'OK', Params: { queue: 'lp0' } },
    ]);
    await daemon.stop();
  });

  it('reads the services folder once per start or reload, however many groups', async () => {
    const { folders, daemon } = await start();
    assert.equal(folders.loads.get('/etc/services'), 1);
    await daemon.reload();
    assert.equal(folders.loads.get('/etc/services'), 2);
    await daemon.stop();
  });

  it('reload re-reads the folder for every group', async () => {
    const { folders, daemon } = await start();
    folders.dirs.set('/etc/services', [fileService('ftp', {}, { groups: [G1] })]);
    await daemon.reload();
    assert.deepEqual(daemon.registry.rootServices(G1).map((s) => s.id), ['ftp']);
    assert.deepEqual(daemon.registry.rootServices(G2).map((s) => s.id), []);
    await daemon.stop();
    await daemon.stop();
  });
});
