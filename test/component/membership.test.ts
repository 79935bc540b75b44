/**
 * Live discovery over the in-memory network (fast timings): announcements build every polod's
 * view, a goodbye or silence removes a node, reference nodes are found by query, Polo replies
 * carry the Members hint that ends a Marco query once everyone answered, and watches see it all.
 */
import { gridKey, signDatagram, type GridKey } from '../../src/auth/gridAuth.js';
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { PoloDaemon } from '../../src/daemon/poloDaemon.js';
import { main as marcoMain } from '../../src/cli/marco.js';
import { Marco } from '../../src/discovery/marco.js';
import { ClosedError } from '../../src/errors.js';
import { GroupPresence } from '../../src/membership/presence.js';
import { FAST_TIMING } from '../../src/membership/timing.js';
import type { WatchEvent } from '../../src/membership/watch.js';
import { encodeAnnouncement, type Announcement } from '../../src/membership/wire.js';
import { MemoryNetwork } from '../../src/transport/memory.js';
import type { GroupSocket } from '../../src/transport/transport.js';
import { silentLogger } from '../../src/util/log.js';
import { fileService, publishedService } from '../helpers/fakes.js';
import { FakePolo, poloNode } from '../helpers/fake-polod.js';
import { startMemoryPolod } from '../helpers/memory-polod.js';
import { waitFor } from '../helpers/wait.js';

const G = '224.0.0.112';

const running: Array<{ stop(): Promise<void> }> = [];
// The memory network holds no socket, and the presence timers are unref'd (as they must be in a
// daemon): this keeps the test process alive while a test awaits them.
const keepAlive = setInterval(() => undefined, 1000);
after(async () => {
  clearInterval(keepAlive);
  for (const r of running) await r.stop();
});

async function daemon(net: MemoryNetwork, address: string, services = [fileService('web', { port: 80 })], key?: GridKey): Promise<PoloDaemon> {
  const d = await startMemoryPolod(net, address, { services, ...(key && { key }) });
  running.push(d);
  return d;
}

const view = (d: PoloDaemon) => d.presences.get(G)!.view;
const addresses = (d: PoloDaemon) => view(d).members().map((m) => m.address).sort();

/** Collects a watch's events into an array as they come. */
function collect(iterable: AsyncIterable<WatchEvent>): WatchEvent[] {
  const events: WatchEvent[] = [];
  void (async () => {
    for await (const e of iterable) events.push(e);
  })();
  return events;
}

/**
 * A member at 10.0.0.8 that announces itself with `content` (so every view counts it) and
 * answers each query holding `command` with `reply`, 50 ms after the others would.
 */
async function lateMember(net: MemoryNetwork, command: string, reply: string, content: Pick<Announcement, 'params' | 'services'>): Promise<GroupSocket> {
  const late = await net.host('10.0.0.8').bindGroup(G, 1337, (data, from) => {
    if (new TextDecoder().decode(data).includes(command)) {
      setTimeout(() => void late.send(new TextEncoder().encode(reply), from.port, from.address), 50);
    }
  });
  late.join();
  await late.send(encodeAnnouncement({ instance: 'late', rev: 1, every: 60_000, members: 2, refs: [], ...content }), 1337, G);
  return late;
}

describe('membership', () => {
  it('every polod sees the others from their announcements, and a goodbye removes a node at once', async () => {
    const net = new MemoryNetwork();
    const [a, b, c] = [await daemon(net, '10.0.0.1'), await daemon(net, '10.0.0.2'), await daemon(net, '10.0.0.3')];
    // c started last: it hears a and b from their next heartbeats or its own membership query.
    await waitFor(
      () =>
        addresses(a).join() === '10.0.0.2,10.0.0.3' &&
        addresses(b).join() === '10.0.0.1,10.0.0.3' &&
        addresses(c).join() === '10.0.0.1,10.0.0.2',
      { what: 'every polod to see the other two' },
    );
    assert.equal(view(c).size, 3, 'its count includes itself');
    const downs: string[] = [];
    view(a).onEvent((e) => {
      if (e.event === 'down') downs.push(`${e.member.address} ${e.reason}`);
    });
    await c.stop();
    // The goodbye was sent before stop() resolved: delivery is the next turn, no expiry involved.
    await waitFor(() => downs.length > 0, { what: 'the goodbye of c' });
    assert.deepEqual(downs, ['10.0.0.3 goodbye']);
  });

  it('expires a node whose announcements stop', async () => {
    const net = new MemoryNetwork();
    const a = await daemon(net, '10.0.0.1');
    const ghost = await net.host('10.0.0.7').bindGroup(G, 1337, () => undefined);
    ghost.join();
    const announcement = { instance: 'ghost', rev: 1, every: 20, members: 2, params: { hostname: 'ghost' }, services: [], refs: [] };
    await ghost.send(encodeAnnouncement(announcement), 1337, G);
    await waitFor(() => addresses(a).includes('10.0.0.7'), { what: 'a to see the ghost' });
    const downs: string[] = [];
    view(a).onEvent((e) => e.event === 'down' && downs.push(e.reason));
    await waitFor(() => downs.length > 0, { what: 'the ghost to expire' });
    assert.deepEqual(downs, ['expired']);
    await ghost.close();
  });

  it('finds reference nodes by query, and a Marco query ends once every member answered', async () => {
    const net = new MemoryNetwork();
    const reference = await FakePolo.start(net, '10.0.0.9', poloNode({ hostname: 'reference' }));
    const a = await daemon(net, '10.0.0.1');
    const b = await daemon(net, '10.0.0.2');
    await waitFor(() => view(a).size === 3 && view(b).size === 3, { what: 'both views to count the reference node' });
    assert.equal(view(a).member('10.0.0.9')?.kind, 'reference');
    // A deadline far beyond the test's own timeout: only the Members hint can end this query.
    const nodes = await new Marco({ transport: net.host('10.0.0.50') }).marco({ timeout: 600_000 });
    assert.deepEqual(nodes.map((n) => n.address).sort(), ['10.0.0.1', '10.0.0.2', '10.0.0.9']);
    await reference.close();
  });

  it('waits for a member that is known but has not answered yet', async () => {
    const net = new MemoryNetwork();
    const a = await daemon(net, '10.0.0.1');
    // A member that announces (so it is counted) and answers Marco only after the others.
    const late = await lateMember(net, '"Marco"', '{"Command":"Polo","Params":{"hostname":"late"}}', { params: { hostname: 'late' }, services: [] });
    await waitFor(() => view(a).size === 2, { what: 'a to count the late member' });
    const nodes = await new Marco({ transport: net.host('10.0.0.50') }).marco({ timeout: 10_000 });
    assert.deepEqual(nodes.map((n) => n.address).sort(), ['10.0.0.1', '10.0.0.8']);
    await late.close();
  });

  it('a Request-For ends once every provider the grid counts answered', async () => {
    const net = new MemoryNetwork();
    const a = await daemon(net, '10.0.0.1');
    const b = await daemon(net, '10.0.0.2');
    const c = await daemon(net, '10.0.0.3', [fileService('ftp', { port: 21 })]);
    // Each provider counts itself and the other (c's list read too: it offers ftp only).
    await waitFor(
      () => [a, b].every((d) => view(d).size === 3 && view(d).providersOn('', 'web') === 2) && view(c).size === 3 && view(c).providersOn('', 'ftp') === 1,
      { what: 'every view to have read the others’ services' },
    );
    // A deadline far beyond the test's own timeout: only the Providers hint can end this query.
    const marco = new Marco({ transport: net.host('10.0.0.50') });
    const web = await marco.requestFor('web', { timeout: 600_000 });
    assert.deepEqual(web.map((n) => n.address).sort(), ['10.0.0.1', '10.0.0.2']);
    const ftp = await marco.requestFor('ftp', { timeout: 600_000 });
    assert.deepEqual(ftp.map((n) => n.address), ['10.0.0.3']);
  });

  it('a Request-For waits for a provider that is counted but has not answered yet', async () => {
    const net = new MemoryNetwork();
    const a = await daemon(net, '10.0.0.1');
    // A member that announces web (so it is counted) and answers Request-For after the others.
    const late = await lateMember(net, '"Request-For"', '{"Command":"OK","Params":{"port":8}}', { params: {}, services: [{ id: 'web', params: { port: 8 } }] });
    await waitFor(() => view(a).providersOn('', 'web') === 2, { what: 'a to count the late provider' });
    // A deadline far beyond the test's own timeout: the query ends on the Providers hint, late provider in.
    const web = await new Marco({ transport: net.host('10.0.0.50') }).requestFor('web', { timeout: 600_000 });
    assert.deepEqual(web.map((n) => n.address).sort(), ['10.0.0.1', '10.0.0.8']);
    await late.close();
  });

  it('gives no Providers hint where a reference node might offer the service, nor for a user service', async () => {
    const net = new MemoryNetwork();
    const reference = await FakePolo.start(net, '10.0.0.9', poloNode({ hostname: 'reference' }));
    const a = await daemon(net, '10.0.0.1');
    a.registry.add(publishedService('app', { port: 81 }), [G], 'alice', 'publish');
    const replies: string[] = [];
    const reader = await net.host('10.0.0.51').openQuerySocket({ ttl: 1 }, (data) => replies.push(new TextDecoder().decode(data)));
    const ask = async (service: string): Promise<string> => {
      replies.length = 0;
      await reader.send(new TextEncoder().encode(JSON.stringify({ Command: 'Request-For', Params: service })), 1337, G);
      await waitFor(() => replies.length > 0, { what: `the reply to Request-For ${service}` });
      return replies[0] as string;
    };
    assert.match(await ask('web'), /"Providers":1\}$/, 'alone in the grid: the only provider');
    assert.doesNotMatch(await ask('alice:app'), /Providers/, "a user's services load on demand: others may not list them");
    await waitFor(() => view(a).member('10.0.0.9')?.kind === 'reference', { what: 'a to find the reference node' });
    assert.doesNotMatch(await ask('web'), /Providers/);
    await Promise.all([reference.close(), reader.close()]);
  });

  it('a watch starts with the current nodes, then follows service changes and goodbyes', async () => {
    const net = new MemoryNetwork();
    const a = await daemon(net, '10.0.0.1');
    const b = await daemon(net, '10.0.0.2', []);
    const reference = await FakePolo.start(net, '10.0.0.9', poloNode({ hostname: 'reference' }));
    const marco = new Marco({ transport: net.host('10.0.0.50'), timing: FAST_TIMING });
    const controller = new AbortController();
    const nodes = collect(marco.watch({ signal: controller.signal }));
    const web = collect(marco.watch({ signal: controller.signal, service: 'web' }));
    await waitFor(() => nodes.filter((e) => e.event === 'up').length === 3, { what: 'three up events' });
    assert.deepEqual(nodes.map((e) => `${e.event} ${e.address}`).sort(), ['up 10.0.0.1', 'up 10.0.0.2', 'up 10.0.0.9']);
    await waitFor(() => web.length === 1, { what: 'the provider of web' });
    assert.deepEqual([web[0]?.event, web[0]?.address, web[0]?.params], ['up', '10.0.0.1', { port: 80 }]);

    // b publishes web: the change is announced, and the service watch sees a second provider.
    b.registry.add(publishedService('web', { port: 81 }), [G], undefined, 'publish');
    await waitFor(() => web.length === 2, { what: 'b as a provider of web' });
    assert.deepEqual([web[1]?.event, web[1]?.address, web[1]?.params], ['up', '10.0.0.2', { port: 81 }]);
    b.registry.remove('web', [G], undefined, 'unpublish');
    await waitFor(() => web.length === 3, { what: 'b withdrawing web' });
    assert.deepEqual([web[2]?.event, web[2]?.address, web[2]?.reason], ['down', '10.0.0.2', 'unpublished']);

    await a.stop();
    await waitFor(() => nodes.some((e) => e.event === 'down'), { what: 'a leaving' });
    assert.deepEqual(nodes.filter((e) => e.event === 'down').map((e) => `${e.address} ${e.reason}`), ['10.0.0.1 goodbye']);
    await waitFor(() => web.length === 4, { what: 'a leaving the providers' });
    assert.deepEqual([web[3]?.event, web[3]?.address, web[3]?.reason], ['down', '10.0.0.1', 'goodbye']);
    controller.abort();
    await reference.close();
  });

  it('a service watch says "check failed" when a provider withdraws a service whose health check fails', async () => {
    const net = new MemoryNetwork();
    const a = await daemon(net, '10.0.0.1', []);
    const marco = new Marco({ transport: net.host('10.0.0.50'), timing: FAST_TIMING });
    const controller = new AbortController();
    const db = collect(marco.watch({ signal: controller.signal, service: 'db' }));
    // A check whose monitor never decides on its own within the test (one run a day, 1000
    // failures to fail): the test plays the monitor's verdicts through the registry.
    const check = { kind: 'tcp' as const, target: 'tcp:1', intervalMs: 86_400_000, failures: 1000 };
    a.registry.add(publishedService('db', { port: 5432 }, { check }), [G], undefined, 'publish');
    a.registry.setHealth('db', undefined, true);
    await waitFor(() => db.length === 1, { what: 'db up once its check passes' });
    a.registry.setHealth('db', undefined, false);
    await waitFor(() => db.length === 2, { what: 'db down once its check fails' });
    assert.deepEqual([db[1]?.event, db[1]?.address, db[1]?.reason], ['down', '10.0.0.1', 'check failed']);
    controller.abort();
  });

  it('marco watch --json prints one object per event, and ends with exit 0 when stopped', async () => {
    const net = new MemoryNetwork();
    const a = await daemon(net, '10.0.0.1');
    let stdout = '';
    let stderr = '';
    const io = { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) } };
    const controller = new AbortController();
    const exit = marcoMain(['watch', '--json'], io, { transport: net.host('10.0.0.50'), interrupt: controller.signal });
    const lines = (): Array<Record<string, unknown>> =>
      stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
    await waitFor(() => lines().length === 1, { what: 'the up event of a' });
    await a.stop();
    await waitFor(() => lines().length === 2, { what: 'the down event of a' });
    assert.deepEqual(
      lines().map((e) => [e['event'], e['address'], e['params'], e['reason'], typeof e['time']]),
      [
        ['up', '10.0.0.1', { hostname: '10.0.0.1' }, null, 'string'],
        ['down', '10.0.0.1', { hostname: '10.0.0.1' }, 'goodbye', 'string'],
      ],
    );
    controller.abort();
    assert.equal(await exit, 0);
    assert.equal(stderr, '');
  });

  it('marco watch refuses an empty --service with exit 2 and one line', async () => {
    let stderr = '';
    const io = { stdout: { write: () => undefined }, stderr: { write: (t: string) => (stderr += t) } };
    const code = await marcoMain(['watch', '--service', ''], io, { transport: new MemoryNetwork().host('10.0.0.50'), interrupt: AbortSignal.abort() });
    assert.equal(code, 2);
    assert.match(stderr.split('\n')[0] ?? '', /service/);
  });

  it('a presence follows the lifecycle contract: start and stop twice are harmless, start after stop throws', async () => {
    const net = new MemoryNetwork();
    const make = () =>
      new GroupPresence({
        transport: net.host('10.0.0.1'), group: G, port: 1337, interfaces: [], ttl: 1, nodeParams: {},
        services: () => [], logger: silentLogger, timing: FAST_TIMING,
      });
    const early = make();
    await early.stop();
    await early.stop();
    await assert.rejects(early.start(), ClosedError);
    const p = make();
    await p.start();
    await p.start();
    // Announced as it started: the datagram is on the network when start() resolves.
    const announces = () =>
      net.sent.filter((d) => d.to.address === G && new TextDecoder().decode(d.data).startsWith('{"Command":"Announce"'));
    assert.equal(announces().length, 1);
    await p.stop();
    await p.stop();
    assert.equal(p.sent.goodbye, 1, 'one goodbye, however often stopped');
    await assert.rejects(p.start(), ClosedError);
  });

  it("skips its own membership query when another node's was just seen", async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const net = new MemoryNetwork();
    const make = (address: string) =>
      new GroupPresence({
        transport: net.host(address), group: G, port: 1337, interfaces: [], ttl: 1, nodeParams: {},
        services: () => [], logger: silentLogger, timing: FAST_TIMING, random: () => 1,
      });
    const alone = make('10.0.0.1');
    const other = make('10.0.0.2');
    running.push(alone, other);
    await alone.start();
    await other.start();
    // Another node's membership query reaches `other` (through the responder's tap) first.
    const membership = new TextEncoder().encode('{"Command":"Marco","Membership":true}');
    assert.equal(other.tap(membership, { address: '10.0.0.9', port: 40000 }), false, 'the responder still answers it');
    t.mock.timers.tick(FAST_TIMING.firstQueryMaxMs);
    assert.equal(alone.sent.query, 1, 'the first query at start');
    assert.equal(other.sent.query, 0, 'skipped: someone else just asked');
    t.mock.timers.tick(Math.round(FAST_TIMING.queryIdleMs * 1.5));
    assert.equal(other.sent.query, 1, 'its own query comes later');
  });
});

describe('membership in a keyed grid', () => {
  it('hears the signed announcements of its peers and ignores unsigned or foreign-key ones', async () => {
    const key = gridKey(Buffer.alloc(32, 1));
    const other = gridKey(Buffer.alloc(32, 2));
    const net = new MemoryNetwork();
    const a = await daemon(net, '10.0.0.1', undefined, key);
    const b = await daemon(net, '10.0.0.2', undefined, key);
    await waitFor(() => addresses(a).join() === '10.0.0.2' && addresses(b).join() === '10.0.0.1', { what: 'the keyed polods to see each other' });

    // A host without the key announces itself, unsigned and then signed with another key.
    const forger = await net.host('10.0.0.66').bindGroup(G, 1337, () => undefined);
    forger.join();
    const fake = { instance: 'forged', rev: 1, every: 1000, members: 3, params: { hostname: 'evil' }, services: [{ id: 'web', params: { port: 6666 } }], refs: [] };
    await forger.send(encodeAnnouncement(fake), 1337, G);
    await forger.send(signDatagram(encodeAnnouncement({ ...fake, instance: 'forged2' }), other).bytes, 1337, G);
    // Then a real change: once it is heard, the views have had time to hear the forgeries.
    b.registry.add(publishedService('late', {}), [G], undefined, 'publish');
    await waitFor(() => view(a).member('10.0.0.2')?.services?.some((s) => s.id === 'late') === true, { what: "a to hear b's change" });
    assert.equal(view(a).member('10.0.0.66'), undefined, 'the forged announcements added no member');
    assert.deepEqual(addresses(a), ['10.0.0.2']);
    await forger.close();
  });
});
