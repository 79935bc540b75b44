/**
 * marcod's request handling on a memory network, with fake polods: every key's effect on the
 * query that goes out and on the one reply that comes back, aliases, errors, group honoured for
 * Request-For, Services, oversize replies, independence of concurrent requests, the in-flight
 * bound and stopping. Nothing sleeps or measures time: early replies are proven with deadlines
 * no test can reach, so a query that must hear nodes ends at max_nodes, never at a deadline the
 * fakes would have to beat. A node a filter must drop is shown absent by a fake answering last
 * (FakeOptions.last) that the query ends with. The few queries that do end at their deadline
 * either expect nothing (no fake can answer them) or give the fakes a second, and the time they
 * wait is their own subject: max_nodes null or 0 meaning no limit.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BUSY, MAX_REQUEST_TIMEOUT_MS, STOPPING } from '../../src/marcod/limits.js';
import { MAX_RETRIES } from '../../src/discovery/options.js';
import { ClosedError } from '../../src/errors.js';
import type { JsonObject } from '../../src/protocol/json.js';
import { FakePolo, holdEventLoop, offering, poloNode, queriesTo, settle, silent, TrackedTransport, type Behaviour } from '../helpers/fake-polod.js';
import { MARCOD_HOST, sortNodes, startMarcod, type MarcodSetup } from '../helpers/marcod-fixture.js';

holdEventLoop();

/** A deadline no test may reach: a reply that arrives proves marcod answered early. */
const NEVER = MAX_REQUEST_TIMEOUT_MS;
/**
 * The deadline of the queries that can only end at one (no max_nodes) and still expect nodes:
 * the memory network answers within a few event-loop turns, so this only matters on a machine
 * stalled for a whole second.
 */
const GENEROUS = 1000;
const GUARD = { timeout: 20_000 };

/** Answers Marco with `params` and Request-For for `services`. */
function polod(params: JsonObject, services: Record<string, JsonObject> = {}): Behaviour {
  const node = poloNode(params);
  const offers = offering(services);
  return (query, from, index) => node(query, from, index) ?? offers(query, from, index);
}

/** Three polods in 224.0.0.112 (one of them also in .113 with other services) and one only in .113. */
async function lan(): Promise<MarcodSetup> {
  const setup = await startMarcod();
  const { net } = setup;
  await FakePolo.start(net, '10.0.0.1', polod({ hostname: 'a' }, { web: { port: 8080 } }));
  await FakePolo.start(net, '10.0.0.2', polod({ hostname: 'b', role: 'db' }, { web: { port: 9090 } }));
  await FakePolo.start(net, '10.0.0.3', polod({ hostname: 'c' }, { web: { port: 8080, path: '/alt' } }));
  await FakePolo.start(net, '10.0.0.1', polod({ hostname: 'a' }, { printer: { queue: 'lp0' } }), { group: '224.0.0.113' });
  await FakePolo.start(net, '10.0.0.4', polod({ hostname: 'd' }, { web: { port: 1 } }), { group: '224.0.0.113' });
  return setup;
}

const A = { Address: '10.0.0.1', Params: { hostname: 'a' } };
const B = { Address: '10.0.0.2', Params: { hostname: 'b', role: 'db' } };
const C = { Address: '10.0.0.3', Params: { hostname: 'c' } };
const D = { Address: '10.0.0.4', Params: { hostname: 'd' } };

describe('Marco', () => {
  test('the Python binding datagram gets every node of the group, as [{"Address","Params"}]', GUARD, async () => {
    const { ask, net, transport } = await lan();
    // max_nodes null: only the deadline ends it (the Python binding's default is 1000 ms too).
    const exchange = await ask(`{"Command": "Marco", "max_nodes": null, "exclude": [], "params": {}, "timeout": ${GENEROUS}, "group": "224.0.0.112"}`);
    assert.deepEqual(sortNodes(await exchange.only()), [A, B, C]);
    assert.deepEqual(queriesTo(net, '224.0.0.112'), [{ Command: 'Marco' }]);
    assert.equal(transport.opened, 1);
    assert.equal(transport.open, 0, 'the query socket is closed once the reply is out');
  });

  test('group selects the grid; a request without group uses the configured one', GUARD, async () => {
    const { ask } = await lan();
    const [other, none] = await Promise.all([
      ask({ Command: 'Marco', max_nodes: 2, timeout: NEVER, group: '224.0.0.113' }),
      ask({ Command: 'Marco', max_nodes: 3, timeout: NEVER }),
    ]);
    // D is only in .113, B and C only in .112: each reply holds its own grid's nodes.
    assert.deepEqual(sortNodes(await other.only()), [A, D]);
    assert.deepEqual(sortNodes(await none.only()), [A, B, C]);
  });

  test('max_nodes (and Java max-nodes) replies as soon as that many nodes answered (bug B11)', GUARD, async () => {
    const { ask } = await lan();
    const [one, two, all] = await Promise.all([
      ask({ Command: 'Marco', max_nodes: 1, timeout: NEVER }),
      ask({ Command: 'Marco', 'max-nodes': 2, timeout: NEVER }),
      ask({ Command: 'Marco', max_nodes: 0, timeout: GENEROUS }),
    ]);
    assert.equal(((await one.only()) as unknown[]).length, 1);
    assert.equal(((await two.only()) as unknown[]).length, 2);
    assert.equal(((await all.only()) as unknown[]).length, 3, 'max_nodes 0 is no limit');
  });

  test('exclude matches reply source IPs given as strings (bug B9)', GUARD, async () => {
    const { ask, net } = await lan();
    await FakePolo.start(net, '10.0.0.9', poloNode({ hostname: 'last' }), { last: true });
    // Cut at the second node, which is the last to answer: B and C answered before it.
    const exchange = await ask({ Command: 'Marco', exclude: ['10.0.0.2', '10.0.0.3'], max_nodes: 2, timeout: NEVER });
    assert.deepEqual(await exchange.only(), [A, { Address: '10.0.0.9', Params: { hostname: 'last' } }]);
  });

  test('params keeps only nodes whose params contain every key with an equal value', GUARD, async () => {
    const { ask, net } = await lan();
    // Two more nodes, answering after A, B and C: each query is cut at the one it matches, so
    // every node it had to drop answered before that.
    const lastDb = { Address: '10.0.0.8', Params: { hostname: 'e', role: 'db' } };
    const lastWebC = { Address: '10.0.0.9', Params: { hostname: 'c', role: 'web' } };
    await FakePolo.start(net, lastDb.Address, poloNode(lastDb.Params), { last: true });
    await FakePolo.start(net, lastWebC.Address, poloNode(lastWebC.Params), { last: true });
    const [db, c, web] = await Promise.all([
      ask({ Command: 'Marco', params: { role: 'db' }, max_nodes: 2, timeout: NEVER }),
      ask({ Command: 'Marco', params: { hostname: 'c' }, max_nodes: 2, timeout: NEVER }),
      ask({ Command: 'Marco', params: { role: 'web' }, max_nodes: 1, timeout: NEVER }),
    ]);
    assert.deepEqual(await db.only(), [B, lastDb]);
    assert.deepEqual(await c.only(), [C, lastWebC]);
    assert.deepEqual(await web.only(), [lastWebC], 'none of A, B, C has role web');
  });

  test('retries really resends the query while nobody answered (bug B12)', GUARD, async () => {
    const setup = await startMarcod();
    // A polod that misses the first query (as on a lossy link) and answers the second.
    const late = await FakePolo.start(setup.net, '10.0.0.7', (query, _from, index) =>
      index >= 1 && query?.['Command'] === 'Marco' ? { Command: 'Polo', Params: { hostname: 'late' } } : undefined,
    );
    // The most resends over a deadline that only bounds a failure: one every ~100 ms, until the
    // late node is accepted (max_nodes). How many went out before its answer depends on the
    // machine's pace; that one did is the point.
    const exchange = await setup.ask({ Command: 'Marco', retries: MAX_RETRIES, timeout: 10_000, max_nodes: 1 });
    assert.deepEqual(await exchange.only(), [{ Address: '10.0.0.7', Params: { hostname: 'late' } }]);
    assert.ok(late.queries.length >= 2, `${late.queries.length} queries reached the late node`);
    assert.ok(late.queries.every((q) => q.query?.['Command'] === 'Marco'));
  });

  test('a missing, null or 0 timeout means the configured default', GUARD, async () => {
    // Fractional, as marco.cfg may say ("timeout = 1000.0" in the reference's file).
    const setup = await startMarcod({ timeoutMs: 20.5 });
    await FakePolo.start(setup.net, '10.0.0.1', silent);
    for (const timeout of [undefined, null, 0, '0']) {
      const exchange = await setup.ask({ Command: 'Marco', timeout });
      assert.deepEqual(await exchange.only(), [], `timeout ${String(timeout)}`);
    }
    // And the default is what they get: with a default nobody reaches, 0 stays in progress.
    const long = await startMarcod({ timeoutMs: NEVER });
    const pending = await long.ask({ Command: 'Marco', timeout: 0 });
    await settle();
    assert.equal(long.server.inFlight, 1);
    await long.server.stop();
    assert.deepEqual(await pending.only(), { Error: STOPPING });
  });
});

describe('Request-For', () => {
  test('the Python datagram (Request-for, no group) asks the configured group', GUARD, async () => {
    const { ask, net } = await lan();
    const exchange = await ask(
      `{"Command": "Request-for", "Params": "web", "node": null, "max_nodes": null, "exclude": [], "params": {}, "timeout": ${GENEROUS}}`,
    );
    assert.deepEqual(sortNodes(await exchange.only()), [
      { Address: '10.0.0.1', Params: { port: 8080 } },
      { Address: '10.0.0.2', Params: { port: 9090 } },
      { Address: '10.0.0.3', Params: { port: 8080, path: '/alt' } },
    ]);
    assert.deepEqual(queriesTo(net, '224.0.0.112'), [{ Command: 'Request-For', Params: 'web' }]);
  });

  test('group is honoured (bug B16: the reference always asked its configured group)', GUARD, async () => {
    const { ask, net } = await lan();
    // A printer in .112 too, answering last: the .112 query ends with it, after hearing every
    // other .112 node, and A's .113 printer is not among them.
    await FakePolo.start(net, '10.0.0.9', offering({ printer: { queue: 'late' } }), { last: true });
    const [printer113, printer112, web113] = await Promise.all([
      ask({ Command: 'Request-For', Params: 'printer', group: '224.0.0.113', max_nodes: 1, timeout: NEVER }),
      ask({ Command: 'Request-For', Params: 'printer', max_nodes: 1, timeout: NEVER }),
      ask({ Command: 'Request-For', Params: 'web', group: '224.0.0.113', max_nodes: 1, timeout: NEVER }),
    ]);
    assert.deepEqual(await printer113.only(), [{ Address: '10.0.0.1', Params: { queue: 'lp0' } }]);
    assert.deepEqual(await printer112.only(), [{ Address: '10.0.0.9', Params: { queue: 'late' } }]);
    assert.deepEqual(await web113.only(), [{ Address: '10.0.0.4', Params: { port: 1 } }]);
  });

  test('the params filter applies to the service params; max_nodes and exclude apply', GUARD, async () => {
    const { ask, net } = await lan();
    // A fourth web node answering last, which both filters keep: each query ends with it.
    await FakePolo.start(net, '10.0.0.9', offering({ web: { port: 8080, path: '/last' } }), { last: true });
    const [port8080, first, excluded] = await Promise.all([
      ask({ Command: 'Request-For', Params: 'web', params: { port: 8080 }, max_nodes: 3, timeout: NEVER }),
      ask({ Command: 'Request-For', Params: 'web', max_nodes: 1, timeout: NEVER }),
      ask({ Command: 'Request-For', Params: 'web', exclude: ['10.0.0.1'], max_nodes: 3, timeout: NEVER }),
    ]);
    assert.deepEqual(sortNodes(await port8080.only()), [
      { Address: '10.0.0.1', Params: { port: 8080 } },
      { Address: '10.0.0.3', Params: { port: 8080, path: '/alt' } },
      { Address: '10.0.0.9', Params: { port: 8080, path: '/last' } },
    ]);
    assert.equal(((await first.only()) as unknown[]).length, 1);
    assert.deepEqual(
      ((await excluded.only()) as Array<{ Address: string }>).map((n) => n.Address).sort(),
      ['10.0.0.2', '10.0.0.3', '10.0.0.9'],
    );
  });
});

describe('Services', () => {
  async function withServices(): Promise<MarcodSetup> {
    const setup = await startMarcod();
    await FakePolo.start(
      setup.net,
      '10.0.0.5',
      (query) =>
        query?.['Command'] === 'Services'
          ? { Command: 'OK', Services: [{ id: 'web', params: { port: 80 } }, { id: 'ssh', params: {} }] }
          : undefined,
      { unicast: true },
    );
    return setup;
  }

  test('replies with a JSON array of {"id","params"} (bug B3: the reference crashed)', GUARD, async () => {
    const { ask, net } = await withServices();
    // Services ends at the first valid reply: the deadline only bounds a failure.
    const exchange = await ask(`{"Command": "Services", "node": "10.0.0.5", "timeout": ${NEVER}}`);
    assert.deepEqual(await exchange.only(), [
      { id: 'web', params: { port: 80 } },
      { id: 'ssh', params: {} },
    ]);
    assert.deepEqual(queriesTo(net, '10.0.0.5'), [{ Command: 'Services' }]);
  });

  test('a node that does not answer gives []; the Envelope extension tells the two apart', GUARD, async () => {
    const { ask } = await withServices();
    const [silentNode, envelope, silentEnvelope] = await Promise.all([
      ask({ Command: 'Services', node: '10.0.0.6', timeout: 50 }),
      ask({ Command: 'Services', node: '10.0.0.5', timeout: NEVER, Envelope: true }),
      ask({ Command: 'Services', node: '10.0.0.6', timeout: 50, Envelope: true }),
    ]);
    assert.deepEqual(await silentNode.only(), []);
    assert.deepEqual(await envelope.only(), {
      Address: '10.0.0.5',
      Services: [
        { id: 'web', params: { port: 80 } },
        { id: 'ssh', params: {} },
      ],
    });
    assert.deepEqual(await silentEnvelope.only(), { Address: null, Services: [] });
  });

  test('group is passed on as the Group extension; a host name that does not resolve is an error', GUARD, async () => {
    const setup = await startMarcod({}, { lookup: async () => Promise.reject(Object.assign(new Error('nope'), { code: 'ENOTFOUND' })) });
    const grouped = await setup.ask({ Command: 'Services', node: '10.0.0.5', group: '224.0.0.113', timeout: 20 });
    assert.deepEqual(await grouped.only(), []);
    assert.deepEqual(queriesTo(setup.net, '10.0.0.5'), [{ Command: 'Services', Group: '224.0.0.113' }]);
    const unknown = await setup.ask({ Command: 'Services', node: 'no-such-host', timeout: NEVER });
    assert.match(String(((await unknown.only()) as { Error?: unknown }).Error), /no IPv4 address found/);
  });
});

describe('errors: every request gets one reply', () => {
  test('missing or unknown Command: exactly {"Error": true}', GUARD, async () => {
    const { ask, net } = await lan();
    for (const payload of [{}, { Command: 'Discover' }, { Command: 'Nope', Params: 'web' }, { Command: 7 }]) {
      const exchange = await ask(payload);
      assert.deepEqual(await exchange.only(), { Error: true }, JSON.stringify(payload));
    }
    assert.deepEqual(queriesTo(net, '224.0.0.112'), [], 'nothing went to the network');
  });

  test('not JSON, not an object, a bad value: {"Error": "<reason>"} naming it, and no query', GUARD, async () => {
    const { ask, net } = await lan();
    const cases: Array<[unknown, RegExp]> = [
      ['not json', /not valid JSON/],
      ['[1,2]', /not a JSON object/],
      [{ Command: 'Marco', timeout: 'soon' }, /\btimeout\b/],
      [{ Command: 'Marco', timeout: -1 }, /\btimeout\b/],
      [{ Command: 'Marco', timeout: 1e9 }, /\btimeout\b/],
      [{ Command: 'Marco', max_nodes: 'all' }, /\bmax_nodes\b/],
      [{ Command: 'Marco', 'max-nodes': -2 }, /\bmax-nodes\b/],
      [{ Command: 'Marco', exclude: '10.0.0.1' }, /\bexclude\b/],
      [{ Command: 'Marco', params: 'x' }, /\bparams\b/],
      [{ Command: 'Marco', group: '10.0.0.1' }, /\bgroup\b/],
      [{ Command: 'Request-For' }, /\bParams\b/],
      [{ Command: 'Services' }, /\bnode\b/],
    ];
    for (const [payload, reason] of cases) {
      const reply = (await (await ask(payload)).only()) as { Error?: unknown };
      assert.equal(typeof reply.Error, 'string', JSON.stringify(payload));
      assert.match(reply.Error as string, reason);
    }
    assert.deepEqual(queriesTo(net, '224.0.0.112'), []);
    // And marcod keeps serving.
    assert.deepEqual(sortNodes(await (await ask({ Command: 'Marco', max_nodes: 3, timeout: NEVER })).only()), [A, B, C]);
  });

  test('an interface that is not local is an error reply, not silence', GUARD, async () => {
    const setup = await startMarcod({ interfaces: ['10.9.9.9'] });
    const reply = (await (await setup.ask({ Command: 'Marco', timeout: NEVER })).only()) as { Error?: string };
    assert.match(String(reply.Error), /interface/);
  });
});

describe('oversize replies', () => {
  test('keep the longest prefix of whole nodes that fits frame_size, and log the count dropped', GUARD, async () => {
    const setup = await startMarcod({ frameSize: 2048 });
    for (let i = 1; i <= 12; i++) {
      await FakePolo.start(setup.net, `10.0.1.${i}`, poloNode({ hostname: `n${i}`, blob: 'z'.repeat(300) }));
    }
    // Every node answers before the reply is built: max_nodes is all twelve.
    const exchange = await setup.ask({ Command: 'Marco', max_nodes: 12, timeout: NEVER });
    const reply = (await exchange.only()) as Array<{ Address: string; Params: { blob: string } }>;
    assert.ok(reply.length > 0 && reply.length < 12, `kept ${reply.length}`);
    for (const node of reply) assert.equal(node.Params.blob.length, 300, 'whole nodes only');
    assert.ok(new TextEncoder().encode(JSON.stringify(reply)).byteLength <= 2048);
    assert.equal(setup.server.stats.truncated, 1);
    const warning = setup.records.find((r) => r['msg'] === 'reply cut to fit frame_size: entries dropped from the end');
    assert.equal(warning?.['dropped'], 12 - reply.length);
  });
});

describe('independent requests (bug B14)', () => {
  test('50 concurrent requests with different keys each get exactly their own nodes', GUARD, async () => {
    const { ask, net, transport } = await lan();
    // A db node serving web on 9090, answering last in .112: the filtered queries end with it
    // (max_nodes), after every node they had to drop; the others are cut before it answers.
    const last = { Address: '10.0.0.9', Params: { hostname: 'last', role: 'db' } };
    await FakePolo.start(net, last.Address, polod(last.Params, { web: { port: 9090 } }), { last: true });
    type Case = { payload: JsonObject; expect: (reply: unknown) => void };
    const addresses = (reply: unknown): string[] => (reply as Array<{ Address: string }>).map((n) => n.Address).sort();
    // Every request has its own deadline, none of which is reached: each ends at its max_nodes.
    const kinds: Array<(i: number) => Case> = [
      (i) => ({ payload: { Command: 'Marco', max_nodes: 3, timeout: NEVER - i }, expect: (r) => assert.deepEqual(sortNodes(r), [A, B, C]) }),
      (i) => ({
        payload: { Command: 'Marco', group: '224.0.0.113', max_nodes: 2, timeout: NEVER - i },
        expect: (r) => assert.deepEqual(sortNodes(r), [A, D]),
      }),
      (i) => ({
        payload: { Command: 'Marco', params: { role: 'db' }, max_nodes: 2, timeout: NEVER - i },
        expect: (r) => assert.deepEqual(r, [B, last]),
      }),
      () => ({ payload: { Command: 'Marco', max_nodes: 2, timeout: NEVER }, expect: (r) => assert.equal(addresses(r).length, 2) }),
      (i) => ({
        payload: { Command: 'Marco', exclude: ['10.0.0.1'], max_nodes: 3, timeout: NEVER - i },
        expect: (r) => assert.deepEqual(addresses(r), ['10.0.0.2', '10.0.0.3', '10.0.0.9']),
      }),
      (i) => ({
        payload: { Command: 'Request-For', Params: 'printer', group: '224.0.0.113', max_nodes: 1, timeout: NEVER - i },
        expect: (r) => assert.deepEqual(r, [{ Address: '10.0.0.1', Params: { queue: 'lp0' } }]),
      }),
      (i) => ({
        payload: { Command: 'Request-for', Params: 'web', params: { port: 9090 }, max_nodes: 2, timeout: NEVER - i },
        expect: (r) =>
          assert.deepEqual(r, [
            { Address: '10.0.0.2', Params: { port: 9090 } },
            { Address: '10.0.0.9', Params: { port: 9090 } },
          ]),
      }),
    ];
    const cases = Array.from({ length: 50 }, (_, i) => (kinds[i % kinds.length] as (i: number) => Case)(i));
    const exchanges = await Promise.all(cases.map((c) => ask(c.payload)));
    const replies = await Promise.all(exchanges.map((e) => e.only()));
    replies.forEach((reply, i) => cases[i]?.expect(reply));
    assert.equal(transport.opened, 50, 'one query socket per request');
    assert.equal(transport.open, 0);
  });

  test("one request's long timeout does not hold another's reply", GUARD, async () => {
    const { ask, server } = await lan();
    const long = await ask({ Command: 'Request-For', Params: 'nobody-offers-this', timeout: NEVER });
    // Nobody answers this one either: its reply is due at its own short deadline, not the other's.
    const short = await ask({ Command: 'Request-For', Params: 'nor-this', timeout: 30 });
    assert.deepEqual(await short.only(), []);
    assert.equal(server.inFlight, 1, 'the long one is still waiting for its own deadline');
    await server.stop();
    assert.deepEqual(await long.only(), { Error: STOPPING });
  });

  test('with several interfaces, one query each, merged by address and cut at max_nodes', GUARD, async () => {
    // Two "interfaces" on one memory host: both queries reach the same polods.
    class TwoInterfaces extends TrackedTransport {
      override localAddresses(): string[] {
        return [MARCOD_HOST, '10.0.0.200'];
      }
    }
    let transport: TwoInterfaces | undefined;
    const both = await startMarcod(
      { interfaces: [MARCOD_HOST, '10.0.0.200'] },
      { makeTransport: (host) => (transport = new TwoInterfaces(host)) },
    );
    assert.ok(transport);
    await FakePolo.start(both.net, '10.0.0.1', poloNode({ hostname: 'a' }));
    await FakePolo.start(both.net, '10.0.0.2', poloNode({ hostname: 'b' }));
    // Answers both queries after a and b answered both: `all` ends with it, so the second
    // answers of a and b were merged first.
    await FakePolo.start(both.net, '10.0.0.3', poloNode({ hostname: 'c' }), { last: true });
    const [all, one] = await Promise.all([
      both.ask({ Command: 'Marco', max_nodes: 3, timeout: NEVER }),
      both.ask({ Command: 'Marco', max_nodes: 1, timeout: NEVER }),
    ]);
    assert.deepEqual(
      ((await all.only()) as Array<{ Address: string }>).map((n) => n.Address).sort(),
      ['10.0.0.1', '10.0.0.2', '10.0.0.3'],
      'each node once although it answered both queries',
    );
    assert.equal(((await one.only()) as unknown[]).length, 1);
    assert.deepEqual(
      transport.options.map((o) => o.iface),
      [MARCOD_HOST, '10.0.0.200', MARCOD_HOST, '10.0.0.200'],
    );
    assert.equal(transport.open, 0, 'every query socket closed, the cut ones included');
  });
});

describe('bounds and lifecycle', () => {
  test(`beyond maxInFlight requests, the next gets {"Error": "${BUSY}"} at once`, GUARD, async () => {
    const setup = await startMarcod({}, { maxInFlight: 2 });
    await FakePolo.start(setup.net, '10.0.0.1', silent);
    const first = await setup.ask({ Command: 'Marco', timeout: NEVER });
    const second = await setup.ask({ Command: 'Marco', timeout: NEVER });
    await settle();
    const third = await setup.ask({ Command: 'Marco', timeout: NEVER });
    assert.deepEqual(await third.only(), { Error: BUSY });
    assert.equal(setup.server.stats.busy, 1);
    await setup.server.stop();
    assert.deepEqual(await first.only(), { Error: STOPPING });
    assert.deepEqual(await second.only(), { Error: STOPPING });
  });

  test('stop is idempotent, start after stop fails, requests after stop get nothing', GUARD, async () => {
    const setup = await startMarcod();
    await Promise.all([setup.server.stop(), setup.server.stop()]);
    await setup.server.stop();
    await assert.rejects(setup.server.start(), ClosedError);
    const late = await setup.ask({ Command: 'Marco' });
    await settle();
    assert.deepEqual(late.replies, [], 'the API socket is closed');
  });
});
