/**
 * The Polo class of the seed, method by method, over the in-memory network: every documented
 * behaviour, and the reference bugs it fixes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Polo, type PoloOptions } from '../../src/responder/polo.js';
import type { Service } from '../../src/registry/service.js';
import { MemoryNetwork } from '../../src/transport/memory.js';
import { waitFor } from '../helpers/wait.js';
import { bytes, FakeFolders, FakeUsers, fileService, publishedService, repliesTo } from '../helpers/fakes.js';

const G1 = '224.0.0.112';
const G2 = '224.0.0.113';
const client = { address: '10.0.0.9', port: 5555 };

function setup(options: Partial<PoloOptions> = {}) {
  const net = new MemoryNetwork();
  const folders = new FakeFolders();
  const users = new FakeUsers([{ name: 'alice', uid: 1001, home: '/home/alice' }, { name: 'bob', uid: 1002, home: '/home/bob' }]);
  const polo = new Polo({
    transport: net.host('10.0.0.1'),
    multicastGroup: G1,
    nodeParams: { hostname: 'polo-a' },
    servicesDir: '/etc/services',
    loadServices: folders.loader,
    users,
    joinRetry: { initialMs: 1, maxMs: 4, retries: -1 },
    ...options,
  });
  return { net, folders, users, polo };
}

async function ask(polo: Polo, message: unknown, from = client): Promise<void> {
  await polo.datagramReceived(bytes(message), from);
}

describe('Polo constructor', () => {
  it('keeps the offeredServices and userServices objects it is given and fills them in place', async () => {
    const offered: Service[] = [publishedService('dyn')];
    const user = new Map<string, Service[]>();
    const { polo, folders } = setup({ offeredServices: offered, userServices: user });
    folders.dirs.set('/etc/services', [fileService('web', { port: 8080 })]);
    await polo.startProtocol();
    assert.equal(polo.offeredServices, offered);
    assert.equal(polo.userServices, user);
    assert.deepEqual(offered.map((s) => s.id), ['dyn', 'web']);
    await polo.stop();
  });

  it('defaults to the fallback group and the reference user pattern', () => {
    const polo = new Polo({ transport: new MemoryNetwork().host('10.0.0.1') });
    assert.equal(polo.multicastGroup, '224.0.0.112');
    assert.ok(polo.verifyRegexp.test('alice:web'));
    assert.ok(!polo.verifyRegexp.test('alice:my-web'));
  });

  it('compiles a verifyRegexp given as a string', () => {
    const polo = new Polo({ transport: new MemoryNetwork().host('10.0.0.1'), verifyRegexp: '^([a-z-]+)/([a-z-]+)$' });
    assert.ok(polo.verifyRegexp.test('al-ice/my-web'));
  });
});

describe('Polo.startProtocol', () => {
  it('loads the services, joins the group and answers a Marco sent over the network', async () => {
    const { net, polo, folders } = setup();
    folders.dirs.set('/etc/services', [fileService('web')]);
    await polo.startProtocol();
    assert.ok(polo.joined);
    assert.equal(polo.offeredServices.length, 1);
    const replies: string[] = [];
    const got = new Promise<void>((resolve) => {
      void net.host('10.0.0.2').openQuerySocket({ ttl: 2 }, (data) => {
        replies.push(new TextDecoder().decode(data));
        resolve();
      }).then((s) => s.send(bytes({ Command: 'Marco' }), 1337, G1));
    });
    await got;
    assert.deepEqual(replies, ['{"Command":"Polo","Params":{"hostname":"polo-a"}}']);
    await polo.stop();
  });

  it('refuses to start after stop', async () => {
    const { polo } = setup();
    await polo.startProtocol();
    await polo.stop();
    await polo.stop();
    await assert.rejects(polo.startProtocol(), { code: 'MP_ERR_CLOSED' });
  });
});

describe('Polo.datagramReceived', () => {
  const hostile: Array<[string, unknown]> = [
    ['not JSON', '{"Command": "Marco"'],
    ['not an object', '[]'],
    ['a string', '"Marco"'],
    ['no command', { Params: 'web' }],
    ['unknown command', { Command: 'Advertise' }],
    ['lower-case command', { Command: 'marco' }],
    ['Request-For without Params', { Command: 'Request-For' }],
    ['Request-For with numeric Params', { Command: 'Request-For', Params: 7 }],
    ['Request-For with object Params', { Command: 'Request-For', Params: { id: 'web' } }],
    ['deep nesting', `{"Command":"Marco","x":${'['.repeat(5000)}${']'.repeat(5000)}}`],
    ['64 KiB', `{"Command":"Marco","x":"${'a'.repeat(65_000)}"}`],
  ];
  for (const [name, message] of hostile) {
    it(`ignores ${name}: no reply, counted`, async () => {
      const { net, polo } = setup();
      await polo.startProtocol();
      await ask(polo, message);
      assert.deepEqual(repliesTo(net, client), []);
      assert.equal(polo.stats.received, 1);
      assert.equal(polo.stats.answered, 0);
      await polo.stop();
    });
  }

  it('ignores invalid UTF-8', async () => {
    const { net, polo } = setup();
    await polo.startProtocol();
    await polo.datagramReceived(Uint8Array.from([0x7b, 0xff, 0xfe, 0x7d]), client);
    assert.deepEqual(repliesTo(net, client), []);
    assert.equal(polo.stats.malformed['invalid-utf8'], 1);
    await polo.stop();
  });

  it('answers after hostile input, and __proto__ keys change no object', async () => {
    const { net, polo } = setup();
    await polo.startProtocol();
    await ask(polo, '{"Command":"Marco","__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}}}');
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    assert.deepEqual(repliesTo(net, client), [{ Command: 'Polo', Params: { hostname: 'polo-a' } }]);
    await polo.stop();
  });
});

describe('Polo.polo', () => {
  it('answers Marco and Discover with the node params, unicast to the source', async () => {
    const { net, polo } = setup({ nodeParams: { hostname: 'polo-a', rack: 3 } });
    await polo.startProtocol();
    await ask(polo, { Command: 'Marco' });
    await ask(polo, { Command: 'Discover', extra: 'ignored' });
    assert.deepEqual(repliesTo(net, client), [
      { Command: 'Polo', Params: { hostname: 'polo-a', rack: 3 } },
      { Command: 'Polo', Params: { hostname: 'polo-a', rack: 3 } },
    ]);
    await polo.stop();
  });
});

describe('Polo.responseRequestFor', () => {
  it('answers with the service params, for either spelling, and stays silent for others', async () => {
    const { net, polo, folders } = setup();
    folders.dirs.set('/etc/services', [fileService('web', { port: 8080, path: '/index' })]);
    await polo.startProtocol();
    await ask(polo, { Command: 'Request-For', Params: 'web' });
    await ask(polo, { Command: 'Request-for', Params: 'web' });
    await ask(polo, { Command: 'Request-For', Params: 'printer' });
    assert.deepEqual(repliesTo(net, client), [
      { Command: 'OK', Params: { port: 8080, path: '/index' } },
      { Command: 'OK', Params: { port: 8080, path: '/index' } },
    ]);
    assert.equal(polo.stats.silent, 1);
    await polo.stop();
  });

  it('answers only for services of its own group', async () => {
    const net = new MemoryNetwork();
    const folders = new FakeFolders();
    folders.dirs.set('/etc/services', [fileService('printer', { queue: 'lp0' }, { groups: [G2] })]);
    const make = (group: string) =>
      new Polo({ transport: net.host('10.0.0.1'), multicastGroup: group, servicesDir: '/etc/services', loadServices: folders.loader });
    const p1 = make(G1);
    const p2 = make(G2);
    await p1.startProtocol();
    await p2.startProtocol();
    await ask(p1, { Command: 'Request-For', Params: 'printer' }, { address: '10.0.0.9', port: 1 });
    await ask(p2, { Command: 'Request-For', Params: 'printer' }, { address: '10.0.0.9', port: 2 });
    assert.deepEqual(repliesTo(net, { address: '10.0.0.9', port: 1 }), []);
    assert.deepEqual(repliesTo(net, { address: '10.0.0.9', port: 2 }), [{ Command: 'OK', Params: { queue: 'lp0' } }]);
    await Promise.all([p1.stop(), p2.stop()]);
  });

  it('does not offer disabled services', async () => {
    const { net, polo, folders } = setup();
    folders.dirs.set('/etc/services', [fileService('old', {}, { disabled: true })]);
    await polo.startProtocol();
    await ask(polo, { Command: 'Request-For', Params: 'old' });
    assert.deepEqual(repliesTo(net, client), []);
    await polo.stop();
  });
});

describe('Polo.responseRequestForUser', () => {
  it("loads the user's folder on demand, once, and never duplicates services", async () => {
    const { net, polo, folders, users } = setup();
    folders.dirs.set('/home/alice/.polo', [fileService('web', { port: 1001 })]);
    await polo.startProtocol();
    for (let i = 0; i < 5; i++) await ask(polo, { Command: 'Request-For', Params: 'alice:web' });
    assert.equal(repliesTo(net, client).length, 5);
    assert.deepEqual(repliesTo(net, client)[0], { Command: 'OK', Params: { port: 1001 } });
    assert.equal(folders.loads.get('/home/alice/.polo'), 1);
    assert.equal(polo.userServices.get('alice')?.length, 1);
    assert.equal(users.lookups, 1);
  });

  it('shares one load between concurrent queries for the same user', async () => {
    const { polo, folders } = setup();
    folders.dirs.set('/home/alice/.polo', [fileService('web')]);
    await polo.startProtocol();
    await Promise.all([1, 2, 3].map(() => ask(polo, { Command: 'Request-For', Params: 'alice:web' })));
    assert.equal(folders.loads.get('/home/alice/.polo'), 1);
  });

  it('stays silent for a user who does not exist, or has no such service', async () => {
    const { net, polo } = setup();
    await polo.startProtocol();
    await ask(polo, { Command: 'Request-For', Params: 'mallory:web' });
    await ask(polo, { Command: 'Request-For', Params: 'bob:web' });
    assert.deepEqual(repliesTo(net, client), []);
    assert.equal(polo.userServices.has('mallory'), false);
    assert.deepEqual(polo.userServices.get('bob'), []);
  });

  it('answers directly when called with user and service', async () => {
    const { net, polo, folders } = setup();
    folders.dirs.set('/home/alice/.polo', [fileService('db', { port: 5432 })]);
    await polo.startProtocol();
    await polo.responseRequestForUser('Request-For', 'alice', 'db', client);
    assert.deepEqual(repliesTo(net, client), [{ Command: 'OK', Params: { port: 5432 } }]);
  });
});

describe('Polo.responseServices', () => {
  it('lists the services of its group under Services and Params', async () => {
    const { net, polo, folders } = setup();
    folders.dirs.set('/etc/services', [
      fileService('web', { port: 80 }),
      fileService('printer', {}, { groups: [G2] }),
      fileService('off', {}, { disabled: true }),
    ]);
    polo.offeredServices.push(publishedService('dyn', { a: 1 }));
    await polo.startProtocol();
    await ask(polo, { Command: 'Services' });
    const list = [
      { id: 'dyn', params: { a: 1 } },
      { id: 'web', params: { port: 80 } },
    ];
    assert.deepEqual(repliesTo(net, client), [{ Command: 'OK', Services: list, Params: list }]);
  });

  it('lists the entries after one large service, each once, when the list does not fit twice', async () => {
    const { net, polo } = setup();
    polo.offeredServices.push(publishedService('big', { blob: 'x'.repeat(2500) }));
    for (let i = 0; i < 3; i++) polo.offeredServices.push(publishedService(`s${i}`, { port: i }));
    await polo.startProtocol();
    await ask(polo, { Command: 'Services' });
    const [reply] = repliesTo(net, client);
    assert.deepEqual(
      (reply?.['Params'] as { id: string }[]).map((s) => s.id),
      ['big', 's0', 's1', 's2'],
    );
    assert.equal(reply?.['Truncated'], undefined);
  });

  it('cuts a list that does not fit one datagram and says so', async () => {
    const { net, polo } = setup();
    for (let i = 0; i < 400; i++) polo.offeredServices.push(publishedService(`service-${i}`, { port: i }));
    await polo.startProtocol();
    await ask(polo, { Command: 'Services' });
    const [reply] = repliesTo(net, client);
    assert.equal(reply?.['Truncated'], true);
    assert.equal(reply?.['Total'], 400);
    assert.ok((reply?.['Params'] as unknown[]).length < 400);
    const sent = net.sent.find((d) => d.to.port === client.port);
    assert.ok(sent && sent.data.byteLength <= 4096);
  });
});

describe('Polo.reloadServices', () => {
  it('re-reads files, applies disabled, and keeps services published at run time', async () => {
    const { net, polo, folders } = setup();
    folders.dirs.set('/etc/services', [fileService('web', { v: 1 }), fileService('ftp')]);
    await polo.startProtocol();
    polo.offeredServices.push(publishedService('dyn'));
    folders.dirs.set('/etc/services', [fileService('web', { v: 2 }), fileService('ftp', {}, { disabled: true })]);
    await polo.reloadServices();
    assert.deepEqual(polo.offeredServices.map((s) => s.id).sort(), ['dyn', 'web']);
    await ask(polo, { Command: 'Request-For', Params: 'web' });
    assert.deepEqual(repliesTo(net, client), [{ Command: 'OK', Params: { v: 2 } }]);
  });

  it('never leaves a valid service unanswered while it runs', async () => {
    const { net, polo, folders } = setup();
    folders.dirs.set('/etc/services', [fileService('web')]);
    await polo.startProtocol();
    const reload = polo.reloadServices();
    // Queries interleaved with the reload's asynchronous read are all answered.
    const queries = Array.from({ length: 20 }, (_, i) => ask(polo, { Command: 'Request-For', Params: 'web' }, { address: '10.0.0.9', port: 100 + i }));
    await Promise.all([reload, ...queries]);
    for (let i = 0; i < 20; i++) assert.equal(repliesTo(net, { address: '10.0.0.9', port: 100 + i }).length, 1);
  });

  it('skips a second service with an id already offered in the group', async () => {
    const { polo, folders } = setup();
    polo.offeredServices.push(publishedService('web', { from: 'api' }));
    folders.dirs.set('/etc/services', [fileService('web', { from: 'file' })]);
    await polo.startProtocol();
    assert.deepEqual(polo.offeredServices.map((s) => s.params), [{ from: 'api' }]);
  });
});

describe('Polo.reloadUserServices and reloadUserServicesIter', () => {
  it('reload the files of every loaded user and keep their published services', async () => {
    const { polo, folders } = setup();
    folders.dirs.set('/home/alice/.polo', [fileService('a1')]);
    await polo.startProtocol();
    assert.equal(await polo.reloadUserServicesIter('alice'), true);
    polo.userServices.get('alice')?.push(publishedService('live'));
    const list = polo.userServices.get('alice');
    folders.dirs.set('/home/alice/.polo', [fileService('a2')]);
    await polo.reloadUserServices();
    assert.equal(polo.userServices.get('alice'), list, 'the same list object, modified in place');
    assert.deepEqual(list?.map((s) => s.id).sort(), ['a2', 'live']);
  });

  it('forgets a user who no longer exists', async () => {
    const { polo } = setup();
    polo.userServices.set('ghost', [publishedService('x')]);
    assert.equal(await polo.reloadUserServicesIter('ghost'), false);
    assert.equal(polo.userServices.has('ghost'), false);
  });
});

describe('Polo.handler and Polo.retry', () => {
  it('retries a failed join of its own group with back-off until it succeeds', async () => {
    const { net, polo } = setup();
    net.failJoins(G1, 3);
    await polo.startProtocol();
    assert.equal(polo.joined, false);
    await waitUntil(() => polo.joined);
    assert.equal(polo.stats.joinFailures, 3);
    assert.equal(polo.joinAttempts.size, 0);
    await ask(polo, { Command: 'Marco' });
    assert.equal(repliesTo(net, client).length, 1);
    await polo.stop();
  });

  it('gives up after the configured retries', async () => {
    const { net, polo } = setup({ joinRetry: { initialMs: 1, maxMs: 1, retries: 2 } });
    net.failJoins(G1, 100);
    await polo.startProtocol();
    await waitUntil(() => polo.stats.joinFailures === 3);
    assert.equal(polo.joined, true, 'nothing pending any more');
    await polo.stop();
  });

  it('handler counts a failed attempt per interface, and retry with nothing pending is harmless', async () => {
    const { polo } = setup();
    await polo.startProtocol();
    polo.handler(new Error('boom'));
    assert.equal(polo.joinAttempts.get(''), 1);
    polo.retry();
    await polo.stop();
  });
});

function waitUntil(cond: () => boolean): Promise<true> {
  return waitFor(() => cond() || undefined, { what: 'the join retries', intervalMs: 2 });
}
