/**
 * MarcodClient against a marcod on a memory network, and against a marcod whose API socket is a
 * real loopback UDP socket (its queries still go to fake polods on the memory network, so no
 * datagram leaves the machine). Same results as the in-process Marco, the request bytes it
 * sends, and each typed error. Queries that must hear nodes end at maxNodes, never at a deadline
 * the fakes would have to beat; a node a filter must drop is shown absent by a fake answering
 * last (FakeOptions.last) that the query ends with. Short deadlines remain where nothing can
 * answer, and where marcod's answer does not wait for one (errors) the deadline is long.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { MarcodClient, REPLY_MARGIN_MS, type MarcoLike, type MarcodQueryOptions } from '../../src/client/marcodClient.js';
import { MarcodServer } from '../../src/marcod/server.js';
import { MAX_REQUEST_TIMEOUT_MS } from '../../src/marcod/limits.js';
import { Marco } from '../../src/discovery/index.js';
import { AbortedError, InvalidArgumentError, ProtocolError, RemoteError, TimeoutError } from '../../src/errors.js';
import type { JsonObject } from '../../src/protocol/json.js';
import { MemoryNetwork } from '../../src/transport/memory.js';
import { FakePolo, holdEventLoop, offering, poloNode, settle, silent, TrackedTransport, type Behaviour } from '../helpers/fake-polod.js';
import { API, MARCOD_HOST, settings, startMarcod, type MarcodSetup } from '../helpers/marcod-fixture.js';

holdEventLoop();

/** A deadline no test may reach: a reply that arrives proves the query ended early. */
const NEVER = MAX_REQUEST_TIMEOUT_MS;
/** The deadline of requests that marcod answers at once (errors): it only bounds a failure. */
const LONG = 5000;
const GUARD = { timeout: 20_000 };

function polod(params: JsonObject, services: Record<string, JsonObject> = {}): Behaviour {
  const node = poloNode(params);
  const offers = offering(services);
  return (query, from, index) => node(query, from, index) ?? offers(query, from, index);
}

async function lan(overrides: Parameters<typeof startMarcod>[0] = {}): Promise<MarcodSetup & { client: MarcodClient }> {
  const setup = await startMarcod(overrides);
  await FakePolo.start(setup.net, '10.0.0.1', polod({ hostname: 'a' }, { web: { port: 8080 } }));
  await FakePolo.start(setup.net, '10.0.0.2', polod({ hostname: 'b', role: 'db' }, { web: { port: 9090 } }));
  await FakePolo.start(setup.net, '10.0.0.1', polod({ hostname: 'a' }, { printer: { queue: 'lp0' } }), { group: '224.0.0.113' });
  await FakePolo.start(
    setup.net,
    '10.0.0.1',
    (query) => (query?.['Command'] === 'Services' ? { Command: 'OK', Services: [{ id: 'web', params: { port: 8080 } }] } : undefined),
    { unicast: true },
  );
  const client = new MarcodClient({ transport: setup.clientHost, address: API.address, port: API.port });
  return { ...setup, client };
}

const byAddress = (a: { address: string }, b: { address: string }): number => a.address.localeCompare(b.address);

/** The request datagrams that reached marcod, parsed. */
function requestsSent(net: MemoryNetwork): unknown[] {
  return net.sent
    .filter((d) => d.to.address === API.address && d.to.port === API.port)
    .map((d) => JSON.parse(new TextDecoder().decode(d.data)) as unknown);
}

describe('same results as the in-process Marco', () => {
  test('marco, requestFor, requestOne and services: same shapes, same nodes', GUARD, async () => {
    const setup = await lan();
    // A db node with a printer in .112, answering last: the filtered queries end with it, after
    // every node they had to drop.
    const last = { address: '10.0.0.3', params: { hostname: 'c', role: 'db' } };
    await FakePolo.start(setup.net, last.address, polod(last.params, { printer: { queue: 'late' } }), { last: true });
    const inProcess = new Marco({ transport: setup.net.host('10.0.0.50') });
    // Typed against the common interface: a program can switch between the two.
    const clients: MarcoLike[] = [inProcess, setup.client];
    for (const client of clients) {
      const until = (maxNodes: number): MarcodQueryOptions => ({ maxNodes, timeout: NEVER });
      assert.deepEqual((await client.marco(until(2))).sort(byAddress), [
        { address: '10.0.0.1', params: { hostname: 'a' } },
        { address: '10.0.0.2', params: { hostname: 'b', role: 'db' } },
      ]);
      assert.deepEqual(await client.marco({ ...until(2), params: { role: 'db' } }), [
        { address: '10.0.0.2', params: { hostname: 'b', role: 'db' } },
        last,
      ]);
      assert.deepEqual(await client.marco({ ...until(2), exclude: ['10.0.0.2'] }), [{ address: '10.0.0.1', params: { hostname: 'a' } }, last]);
      assert.deepEqual((await client.requestFor('web', until(2))).sort(byAddress), [
        { address: '10.0.0.1', params: { port: 8080 } },
        { address: '10.0.0.2', params: { port: 9090 } },
      ]);
      assert.deepEqual(await client.requestFor('printer', { ...until(1), group: '224.0.0.113' }), [
        { address: '10.0.0.1', params: { queue: 'lp0' } },
      ]);
      assert.deepEqual(
        await client.requestFor('printer', until(1)),
        [{ address: '10.0.0.3', params: { queue: 'late' } }],
        "a's printer is offered in 224.0.0.113 only",
      );
      const one = await client.requestOne('web', { timeout: NEVER });
      assert.ok(one !== undefined && ['10.0.0.1', '10.0.0.2'].includes(one.address));
      // Nobody can answer these two: they end at their (short) deadlines.
      assert.equal(await client.requestOne('nobody', { timeout: 50 }), undefined);
      assert.equal(await client.services('10.0.0.9', { timeout: 20 }), undefined, 'no answer: undefined');
      // Services ends at the first valid reply.
      assert.deepEqual(await client.services('10.0.0.1', { timeout: NEVER }), {
        address: '10.0.0.1',
        services: [{ id: 'web', params: { port: 8080 } }],
      });
    }
  });

  test('sends the keys the reference bindings send, plus retries; group only when given', GUARD, async () => {
    // A stand-in marcod that answers each request at once (an empty answer of the right shape):
    // the subject is the bytes sent, and the client's wait (2 × timeout + margin) never matters.
    const net = new MemoryNetwork();
    const fake = await net.host(API.address).bindUnicast(API.address, API.port, (data, from) => {
      const services = (JSON.parse(new TextDecoder().decode(data)) as JsonObject)['Command'] === 'Services';
      void fake.send(new TextEncoder().encode(services ? '{"Address": null, "Services": []}' : '[]'), from.port, from.address);
    });
    const client = new MarcodClient({ transport: net.host('127.0.0.9') });
    assert.deepEqual(await client.marco({ timeout: 20 }), []);
    await client.requestFor('web', { timeout: 20, group: '224.0.0.113', maxNodes: 3, exclude: ['10.0.0.9'], params: { a: 1 }, retries: 1 });
    assert.equal(await client.services('10.0.0.1', { timeout: 20 }), undefined);
    assert.deepEqual(requestsSent(net), [
      { Command: 'Marco', max_nodes: null, exclude: [], params: {}, timeout: 20, retries: 0 },
      {
        Command: 'Request-For',
        Params: 'web',
        max_nodes: 3,
        exclude: ['10.0.0.9'],
        params: { a: 1 },
        timeout: 20,
        retries: 1,
        group: '224.0.0.113',
      },
      { Command: 'Services', node: '10.0.0.1', timeout: 20, Envelope: true },
    ]);
  });

  test('constructor defaults apply to every call, call options win', GUARD, async () => {
    const setup = await lan();
    // The default timeout is never reached: each call ends once its nodes answered.
    const client = new MarcodClient({ transport: setup.clientHost, timeout: NEVER, group: '224.0.0.113' });
    assert.deepEqual(await client.marco({ maxNodes: 1 }), [{ address: '10.0.0.1', params: { hostname: 'a' } }]);
    assert.equal((await client.marco({ group: '224.0.0.112', maxNodes: 2 })).length, 2);
    assert.deepEqual(
      requestsSent(setup.net).map((r) => [(r as JsonObject)['timeout'], (r as JsonObject)['group']]),
      [
        [NEVER, '224.0.0.113'],
        [NEVER, '224.0.0.112'],
      ],
    );
  });
});

describe('typed errors', () => {
  test('RemoteError when marcod answers {"Error": …}', GUARD, async () => {
    const setup = await lan({ interfaces: ['10.9.9.9'] });
    await assert.rejects(setup.client.marco({ timeout: LONG }), (err: unknown) => err instanceof RemoteError && /interface/.test(err.message));

    // A marcod that does not know the command answers {"Error": true}.
    const net = new MemoryNetwork();
    const fake = await net.host(API.address).bindUnicast(API.address, API.port, (_data, from) => {
      void fake.send(new TextEncoder().encode('{"Error": true}'), from.port, from.address);
    });
    const client = new MarcodClient({ transport: net.host('127.0.0.9') });
    await assert.rejects(client.marco({ timeout: LONG }), (err: unknown) => err instanceof RemoteError && /unknown command/.test(err.message));
  });

  test('ProtocolError when the reply is not JSON or not a reply', GUARD, async () => {
    const net = new MemoryNetwork();
    const answers = ['not json', '{"Nodes": []}'];
    const fake = await net.host(API.address).bindUnicast(API.address, API.port, (_data, from) => {
      void fake.send(new TextEncoder().encode(answers.shift() ?? ''), from.port, from.address);
    });
    const client = new MarcodClient({ transport: net.host('127.0.0.9') });
    await assert.rejects(client.marco({ timeout: LONG }), ProtocolError);
    await assert.rejects(client.marco({ timeout: LONG }), ProtocolError);
  });

  test('TimeoutError when nothing answers within 2 × timeout + margin', GUARD, async () => {
    const net = new MemoryNetwork();
    const transport = new TrackedTransport(net.host('127.0.0.9'));
    const client = new MarcodClient({ transport, timeout: 5 });
    await assert.rejects(client.marco(), (err: unknown) => err instanceof TimeoutError && err.message.includes(`${10 + REPLY_MARGIN_MS} ms`));
    assert.equal(transport.open, 0, 'its socket is closed');
  });

  test('AbortedError: before sending, and while waiting (the socket is closed)', GUARD, async () => {
    const setup = await startMarcod();
    await FakePolo.start(setup.net, '10.0.0.1', silent);
    const transport = new TrackedTransport(setup.clientHost);
    const client = new MarcodClient({ transport });
    await assert.rejects(client.marco({ signal: AbortSignal.abort() }), AbortedError);
    assert.equal(transport.opened, 0, 'nothing sent');
    const controller = new AbortController();
    const pending = client.marco({ timeout: NEVER, signal: controller.signal });
    await settle();
    controller.abort();
    await assert.rejects(pending, AbortedError);
    assert.equal(transport.open, 0);
    const instance = new AbortController();
    const aborted = new MarcodClient({ transport, signal: instance.signal });
    instance.abort();
    await assert.rejects(aborted.requestFor('web'), AbortedError);
    await setup.server.stop();
  });

  test('InvalidArgumentError before anything is sent', GUARD, async () => {
    const net = new MemoryNetwork();
    const transport = new TrackedTransport(net.host('127.0.0.9'));
    const client = new MarcodClient({ transport });
    const bad: Array<[string, () => Promise<unknown>]> = [
      ['port', () => client.marco({ port: 1337 } as MarcodQueryOptions)],
      ['interface', () => client.marco({ interface: '10.0.0.1' } as MarcodQueryOptions)],
      ['ttl', () => client.marco({ ttl: 1 } as MarcodQueryOptions)],
      ['timeout', () => client.marco({ timeout: 0 })],
      ['timeout', () => client.marco({ timeout: NEVER + 1 })],
      ['group', () => client.marco({ group: '10.0.0.1' })],
      ['exclude', () => client.marco({ exclude: ['h1'] })],
      ['maxNodes', () => client.marco({ maxNodes: -1 })],
      ['service', () => client.requestFor('')],
      ['node', () => client.services('')],
      ['limit', () => client.marco({ params: { pad: 'x'.repeat(9000) } })],
    ];
    for (const [name, call] of bad) {
      await assert.rejects(call(), (err: unknown) => err instanceof InvalidArgumentError && err.message.includes(name), name);
    }
    assert.equal(transport.opened, 0);
    assert.throws(() => new MarcodClient({ address: 'localhost' }), InvalidArgumentError);
    assert.throws(() => new MarcodClient({ port: 0 }), InvalidArgumentError);
    assert.throws(() => new MarcodClient({ timeout: -5 }), InvalidArgumentError);
  });
});

describe('over a real loopback socket', () => {
  test('a real API socket: MarcodClient and a raw C++-style request get their nodes', GUARD, async () => {
    const net = new MemoryNetwork();
    await FakePolo.start(net, '10.0.0.1', polod({ hostname: 'a' }));
    await FakePolo.start(net, '10.0.0.2', polod({ hostname: 'b' }));
    const server = new MarcodServer(settings({ bindAddress: '127.0.0.1', marcoPort: 0 }), {
      transport: new TrackedTransport(net.host(MARCOD_HOST)),
    });
    await server.start();
    try {
      const client = new MarcodClient({ address: '127.0.0.1', port: server.port });
      assert.deepEqual((await client.marco({ maxNodes: 2, timeout: NEVER })).sort(byAddress), [
        { address: '10.0.0.1', params: { hostname: 'a' } },
        { address: '10.0.0.2', params: { hostname: 'b' } },
      ]);

      const socket = dgram.createSocket('udp4');
      try {
        socket.bind(0, '127.0.0.1');
        await once(socket, 'listening');
        socket.send(`{"Command":"Marco","max_nodes":2,"exclude":[],"timeout":${NEVER},"group":"224.0.0.112"}`, server.port, '127.0.0.1');
        const [message] = (await once(socket, 'message')) as [Buffer];
        const nodes = (JSON.parse(message.toString('utf8')) as Array<{ Address: string }>).map((n) => n.Address).sort();
        assert.deepEqual(nodes, ['10.0.0.1', '10.0.0.2']);
      } finally {
        socket.close();
      }
    } finally {
      await server.stop();
    }
  });

  test('a second marcod on the same address and port fails to start', GUARD, async () => {
    const first = new MarcodServer(settings({ bindAddress: '127.0.0.1', marcoPort: 0 }), { transport: new MemoryNetwork().host(MARCOD_HOST) });
    await first.start();
    try {
      const second = new MarcodServer(settings({ bindAddress: '127.0.0.1', marcoPort: first.port }), {
        transport: new MemoryNetwork().host(MARCOD_HOST),
      });
      await assert.rejects(second.start(), /cannot listen on 127\.0\.0\.1:\d+: bind EADDRINUSE/);
      await second.stop();
    } finally {
      await first.stop();
    }
  });
});
