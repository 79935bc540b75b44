/**
 * Marco and Request-For queries against fake polods on a memory network: collection, maxNodes,
 * exclude, params filter, retries, concurrency, malformed replies, deadline, abort, arguments.
 * Nothing here sleeps or measures time: early returns are proven with long deadlines, so a query
 * that must hear nodes ends at maxNodes, never at a deadline the fakes would have to beat. A node
 * a filter must drop is shown absent by a fake answering last (FakeOptions.last) that the query
 * ends with. Short deadlines remain only where nothing can answer, and the resend schedule is
 * checked on a mocked clock.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { Marco, MAX_RETRIES } from '../../src/discovery/index.js';
import { AbortedError, InvalidArgumentError } from '../../src/errors.js';
import { MemoryNetwork } from '../../src/transport/memory.js';
import {
  FakePolo,
  holdEventLoop,
  offering,
  poloNode,
  queriesTo,
  settle,
  silent,
  TrackedTransport,
} from '../helpers/fake-polod.js';

holdEventLoop();

/** A deadline no test may reach: a call that returns proves it returned early. */
const NEVER = 600_000;
/** Safety net so a regression fails instead of hanging; never a timing assertion. */
const GUARD = { timeout: 20_000 };

function setup(): { net: MemoryNetwork; transport: TrackedTransport; marco: Marco } {
  const net = new MemoryNetwork();
  const transport = new TrackedTransport(net.host('10.0.0.1'));
  return { net, transport, marco: new Marco({ transport }) };
}

const byAddress = (a: { address: string }, b: { address: string }): number => a.address.localeCompare(b.address);

describe('marco()', () => {
  test('collects one result per polod in the group, with its node params', GUARD, async () => {
    const { net, transport, marco } = setup();
    await FakePolo.start(net, '10.0.0.2', poloNode({ hostname: 'polo-a' }));
    await FakePolo.start(net, '10.0.0.3', poloNode({ hostname: 'polo-b', rack: 4 }));
    await FakePolo.start(net, '10.0.0.4', poloNode({ hostname: 'polo-c' }));
    await FakePolo.start(net, '10.0.0.5', poloNode({ hostname: 'elsewhere' }), { group: '224.0.0.113' });
    // Answers last: the query ends with it, having heard everything else there was to hear.
    await FakePolo.start(net, '10.0.0.6', poloNode({ hostname: 'polo-d' }), { last: true });

    const nodes = await marco.marco({ maxNodes: 4, timeout: NEVER });

    assert.deepEqual(nodes.sort(byAddress), [
      { address: '10.0.0.2', params: { hostname: 'polo-a' } },
      { address: '10.0.0.3', params: { hostname: 'polo-b', rack: 4 } },
      { address: '10.0.0.4', params: { hostname: 'polo-c' } },
      { address: '10.0.0.6', params: { hostname: 'polo-d' } },
    ]);
    assert.deepEqual(queriesTo(net, '224.0.0.112'), [{ Command: 'Marco' }]);
    assert.deepEqual(transport.options, [{ ttl: 2, receiveBufferBytes: 1024 * 1024 }], 'a receive queue sized for the grid (at least 1 MiB)');
    assert.equal(transport.open, 0, 'the query socket is closed when the call resolves');
  });

  test('queries the group, port, interface and TTL it is given', async () => {
    const { net, transport, marco } = setup();
    await FakePolo.start(net, '10.0.0.2', poloNode({ hostname: 'a' }), { group: '224.0.0.113', port: 4000 });
    const nodes = await marco.marco({
      group: '224.0.0.113',
      port: 4000,
      interface: '10.0.0.1',
      ttl: 1,
      maxNodes: 1,
      timeout: NEVER,
    });
    assert.deepEqual(nodes, [{ address: '10.0.0.2', params: { hostname: 'a' } }]);
    assert.deepEqual(transport.options, [{ ttl: 1, iface: '10.0.0.1', receiveBufferBytes: 1024 * 1024 }]);
  });

  test('resolves with [] at the deadline when nobody answers', async () => {
    const { marco } = setup();
    assert.deepEqual(await marco.marco({ timeout: 20 }), []);
  });

  test('a reply with non-object Params still counts as a live node, with {} params (B10)', async () => {
    const { net, marco } = setup();
    await FakePolo.start(net, '10.0.0.2', () => '{"Command":"Polo","Params":"{\'hostname\': \'martin\'}"}');
    assert.deepEqual(await marco.marco({ maxNodes: 1, timeout: NEVER }), [{ address: '10.0.0.2', params: {} }]);
  });
});

describe('maxNodes', () => {
  test('resolves as soon as that many nodes were accepted, counting accepted nodes only (B11)', GUARD, async () => {
    const { net, transport, marco } = setup();
    // Non-accepted replies arrive first: counting datagrams would stop before any node.
    await FakePolo.start(net, '10.0.0.9', () => ['garbage', { Command: 'OK', Params: {} }]);
    await FakePolo.start(net, '10.0.0.8', poloNode({ role: 'db' }));
    await FakePolo.start(net, '10.0.0.2', poloNode({ role: 'web' }));
    await FakePolo.start(net, '10.0.0.3', poloNode({ role: 'web' }));
    const late = await FakePolo.start(net, '10.0.0.4', silent);

    const nodes = await marco.marco({ maxNodes: 2, params: { role: 'web' }, timeout: NEVER });

    assert.deepEqual(nodes.map((n) => n.address).sort(), ['10.0.0.2', '10.0.0.3']);
    assert.equal(transport.open, 0);
    // The late node got the query; answering now reaches a closed socket and changes nothing.
    assert.equal(late.queries.length, 1);
    await late.answerQuery(0, { Command: 'Polo', Params: { role: 'web' } });
    await settle();
  });

  test('requestOne returns the first node offering the service, or undefined', GUARD, async () => {
    const { net, marco } = setup();
    await FakePolo.start(net, '10.0.0.2', offering({ web: { port: 8080 } }));
    await FakePolo.start(net, '10.0.0.3', silent);
    assert.deepEqual(await marco.requestOne('web', { timeout: NEVER }), { address: '10.0.0.2', params: { port: 8080 } });
    assert.equal(await marco.requestOne('printer', { timeout: 20 }), undefined);
  });
});

describe('requestFor()', () => {
  test('hears only the nodes offering the service, with the service params', GUARD, async () => {
    const { net, marco } = setup();
    await FakePolo.start(net, '10.0.0.2', offering({ web: { port: 8080, path: '/index' } }));
    await FakePolo.start(net, '10.0.0.3', offering({ printer: { queue: 'lp0' } }));
    await FakePolo.start(net, '10.0.0.4', offering({ web: { port: 9090 }, printer: {} }));

    // Answers last: the query ends with it, so 10.0.0.3 had its chance to answer before.
    await FakePolo.start(net, '10.0.0.5', offering({ web: { port: 1 } }), { last: true });

    const nodes = await marco.requestFor('web', { maxNodes: 3, timeout: NEVER });

    assert.deepEqual(nodes.sort(byAddress), [
      { address: '10.0.0.2', params: { port: 8080, path: '/index' } },
      { address: '10.0.0.4', params: { port: 9090 } },
      { address: '10.0.0.5', params: { port: 1 } },
    ]);
    assert.deepEqual(queriesTo(net, '224.0.0.112'), [{ Command: 'Request-For', Params: 'web' }]);
  });

  test('accepts reference-style replies: spaces, \\u escapes, any key order', GUARD, async () => {
    const { net, marco } = setup();
    await FakePolo.start(
      net,
      '10.0.0.2',
      () => '{"Params": {"name": "caf\\u00e9 \\u2615", "port": 8080}, "Command": "OK"}',
    );
    const nodes = await marco.requestFor('web', { maxNodes: 1, timeout: NEVER });
    assert.deepEqual(nodes, [{ address: '10.0.0.2', params: { name: 'café ☕', port: 8080 } }]);
  });
});

describe('filters', () => {
  test('exclude drops replies by IP string (B9)', GUARD, async () => {
    const { net, marco } = setup();
    await FakePolo.start(net, '10.0.0.2', poloNode({ n: 2 }));
    await FakePolo.start(net, '10.0.0.3', poloNode({ n: 3 }));
    await FakePolo.start(net, '10.0.0.4', poloNode({ n: 4 }));
    // Answers last: cut at the second node, the query has heard the excluded two first.
    await FakePolo.start(net, '10.0.0.5', poloNode({ n: 5 }), { last: true });

    const stream = marco.discover({ exclude: ['10.0.0.3', '10.0.0.4'], maxNodes: 2, timeout: NEVER });
    const nodes = [];
    for await (const node of stream) nodes.push(node);

    assert.deepEqual(nodes, [
      { address: '10.0.0.2', params: { n: 2 } },
      { address: '10.0.0.5', params: { n: 5 } },
    ]);
    assert.equal(stream.stats.excluded, 2);
    assert.equal(stream.stats.received, 4);
  });

  test('params keeps nodes whose params contain every key with an equal (deep) value', GUARD, async () => {
    const { net, marco } = setup();
    await FakePolo.start(net, '10.0.0.2', offering({ web: { port: 8080, tags: ['a', 'b'], tls: true } }));
    await FakePolo.start(net, '10.0.0.3', offering({ web: { port: '8080', tags: ['a', 'b'] } }));
    await FakePolo.start(net, '10.0.0.4', offering({ web: { port: 9090, tags: ['b', 'a'], tls: true } }));
    // Matches both filters and answers last: each query is cut at it, after the two it drops.
    await FakePolo.start(net, '10.0.0.5', offering({ web: { port: 8080, tags: ['a', 'b'], tls: true, n: 5 } }), { last: true });

    const byPort = await marco.requestFor('web', { params: { port: 8080 }, maxNodes: 2, timeout: NEVER });
    assert.deepEqual(
      byPort.map((n) => n.address),
      ['10.0.0.2', '10.0.0.5'],
    );

    const stream = marco.requestForStream('web', { params: { tags: ['a', 'b'], tls: true }, maxNodes: 2, timeout: NEVER });
    const nodes = [];
    for await (const node of stream) nodes.push(node.address);
    assert.deepEqual(nodes, ['10.0.0.2', '10.0.0.5']);
    assert.equal(stream.stats.filtered, 2);
  });
});

describe('retries', () => {
  test('really resend the query while nobody was accepted (B12)', GUARD, async () => {
    const { net, marco } = setup();
    // This polod ignores the first query, as if it had been lost.
    const shy = await FakePolo.start(net, '10.0.0.2', (query, _from, index) =>
      index === 0 ? undefined : poloNode({ hostname: 'shy' })(query, _from, index),
    );

    // The most resends over a deadline that only bounds a failure: one every ~100 ms until the
    // shy node is accepted. How many go out before that depends on the machine's pace.
    const nodes = await marco.marco({ retries: MAX_RETRIES, timeout: 10_000, maxNodes: 1 });

    assert.deepEqual(nodes, [{ address: '10.0.0.2', params: { hostname: 'shy' } }]);
    assert.ok(shy.queries.length >= 2, `${shy.queries.length} queries`);
    const sent = queriesTo(net, '224.0.0.112');
    assert.equal(sent.length, shy.queries.length);
    assert.ok(sent.every((q) => isDeepStrictEqual(q, { Command: 'Marco' })));
  });

  test('stop once a node was accepted; a node answering twice is one result', GUARD, async (t) => {
    // The subject is the resend schedule, so the clock is mocked: the resends fall due exactly
    // when the test says, after the first node was accepted, however slow the machine is.
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { net, marco } = setup();
    const quick = await FakePolo.start(net, '10.0.0.2', poloNode({ hostname: 'quick' }));
    // Answers late, and twice (as a node hearing a query and its resend would).
    const slow = await FakePolo.start(net, '10.0.0.3', silent);

    const stream = marco.discover({ retries: 3, timeout: 400 });
    const nodes: string[] = [];
    const read = (async () => {
      for await (const node of stream) nodes.push(node.address);
    })();
    await slow.waitForQueries(1);
    await settle();
    assert.deepEqual(nodes, ['10.0.0.2']);
    // The three resends (at 100, 200 and 300 ms) fall due; a node was accepted, so none goes out.
    for (let k = 0; k < 3; k++) {
      t.mock.timers.tick(100);
      await settle();
    }
    assert.equal(quick.queries.length, 1, 'no resend after a node was accepted');
    assert.equal(slow.queries.length, 1);
    await slow.answerQuery(0, [
      { Command: 'Polo', Params: { hostname: 'slow' } },
      { Command: 'Polo', Params: { hostname: 'slow' } },
    ]);
    await settle();
    t.mock.timers.tick(100); // the deadline
    await read;

    assert.deepEqual(nodes, ['10.0.0.2', '10.0.0.3']);
    assert.equal(stream.stats.duplicates, 1);
  });
});

describe('concurrency', () => {
  test('concurrent queries each get only their own replies (one socket per query, B14)', GUARD, async () => {
    const { net, transport, marco } = setup();
    const echo = (query: Record<string, unknown> | undefined) =>
      query?.['Command'] === 'Request-For'
        ? { Command: 'OK', Params: { asked: String(query['Params']) } }
        : { Command: 'Polo', Params: { asked: 'Marco' } };
    for (const address of ['10.0.0.2', '10.0.0.3', '10.0.0.4']) await FakePolo.start(net, address, echo);

    // Each with its own deadline, none reached: each ends once the three polods answered it.
    const [a, b, all] = await Promise.all([
      marco.requestFor('a', { maxNodes: 3, timeout: NEVER }),
      marco.requestFor('b', { maxNodes: 3, timeout: NEVER - 1 }),
      marco.marco({ maxNodes: 3, timeout: NEVER - 2 }),
    ]);

    assert.equal(a.length, 3);
    assert.equal(b.length, 3);
    assert.equal(all.length, 3);
    assert.ok(a.every((n) => n.params['asked'] === 'a'));
    assert.ok(b.every((n) => n.params['asked'] === 'b'));
    assert.ok(all.every((n) => n.params['asked'] === 'Marco'));
    assert.equal(transport.opened, 3);
    assert.equal(transport.open, 0);
  });
});

describe('malformed replies', () => {
  test('are skipped and counted, never fatal (B18)', GUARD, async () => {
    const { net, marco } = setup();
    await FakePolo.start(net, '10.0.0.2', () => [
      'not json',
      '[]',
      '{"Command":"Polo","Params":{}}', // a Marco reply: wrong kind for Request-For
      '{"Command":"OK","Params":"web"}', // OK without object params
      '{"Command":"OK","Services":[{"id":"web","params":{}}]}', // a Services reply
      new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), // not UTF-8
      '{"Command": "OK", "Params": {"port": 8080}}',
    ]);

    const stream = marco.requestForStream('web', { maxNodes: 1, timeout: NEVER });
    const nodes = [];
    for await (const node of stream) nodes.push(node);

    assert.deepEqual(nodes, [{ address: '10.0.0.2', params: { port: 8080 } }]);
    assert.deepEqual(stream.stats, {
      received: 7,
      accepted: 1,
      malformed: 6,
      excluded: 0,
      filtered: 0,
      duplicates: 0,
      dropped: 0,
    });
  });

  test('do not abort a Marco query either', GUARD, async () => {
    const { net, marco } = setup();
    await FakePolo.start(net, '10.0.0.2', () => ['{"Command":', '{"Command":"Polo","Params":{"ok":true}}']);
    assert.deepEqual(await marco.marco({ maxNodes: 1, timeout: NEVER }), [{ address: '10.0.0.2', params: { ok: true } }]);
  });
});

describe('abort', () => {
  test('rejects with AbortedError while waiting, and closes the socket', GUARD, async () => {
    const { net, transport, marco } = setup();
    const polo = await FakePolo.start(net, '10.0.0.2', silent);
    const controller = new AbortController();
    const pending = marco.marco({ signal: controller.signal, timeout: NEVER });
    await polo.waitForQueries(1);
    controller.abort();
    await assert.rejects(pending, AbortedError);
    assert.equal(transport.opened, 1);
    assert.equal(transport.open, 0);
  });

  test('an already aborted signal rejects without sending anything', async () => {
    const { net, marco } = setup();
    await assert.rejects(marco.requestFor('web', { signal: AbortSignal.abort() }), AbortedError);
    assert.equal(net.sent.length, 0);
  });

  test("the instance's signal aborts its calls too", GUARD, async () => {
    const net = new MemoryNetwork();
    const polo = await FakePolo.start(net, '10.0.0.2', silent);
    const controller = new AbortController();
    const marco = new Marco({ transport: net.host('10.0.0.1'), signal: controller.signal, timeout: NEVER });
    const pending = marco.requestFor('web', { signal: new AbortController().signal });
    await polo.waitForQueries(1);
    controller.abort(new Error('shutting down'));
    await assert.rejects(pending, (err: unknown) => err instanceof AbortedError && err.code === 'MP_ERR_ABORTED');
  });
});

describe('invalid arguments', () => {
  const cases: Array<[string, (m: Marco) => Promise<unknown>, RegExp]> = [
    ['empty service', (m) => m.requestFor(''), /service/],
    ['non-multicast group', (m) => m.marco({ group: '10.0.0.1' }), /group "10\.0\.0\.1"/],
    ['malformed group', (m) => m.marco({ group: '224.0.0' }), /group/],
    ['negative timeout', (m) => m.marco({ timeout: -1 }), /timeout -1/],
    ['fractional timeout', (m) => m.marco({ timeout: 1.5 }), /timeout/],
    ['negative maxNodes', (m) => m.marco({ maxNodes: -1 }), /maxNodes -1/],
    ['non-IPv4 exclude entry', (m) => m.marco({ exclude: ['10.0.0.2', 'polo-a'] }), /exclude "polo-a"/],
    ['negative retries', (m) => m.marco({ retries: -1 }), /retries/],
    ['port 0', (m) => m.marco({ port: 0 }), /port 0/],
    ['ttl 256', (m) => m.marco({ ttl: 256 }), /ttl 256/],
    ['interface not on this host', (m) => m.marco({ interface: '10.9.9.9' }), /interface "10\.9\.9\.9"/],
    ['empty node', (m) => m.services(''), /node/],
    ['IPv6 unicast address as group', (m) => m.marco({ group: 'fe80::1' }), /group "fe80::1"/],
  ];
  for (const [name, call, message] of cases) {
    test(`${name} → InvalidArgumentError naming it`, async () => {
      const { net, marco } = setup();
      await assert.rejects(call(marco), (err: unknown) => err instanceof InvalidArgumentError && message.test(err.message));
      assert.equal(net.sent.length, 0, 'nothing was sent');
    });
  }

  test('streams throw at the call, and bad constructor defaults throw at construction', () => {
    const { marco } = setup();
    assert.throws(() => marco.discover({ maxNodes: -2 }), InvalidArgumentError);
    assert.throws(() => marco.requestForStream(''), InvalidArgumentError);
    assert.throws(() => new Marco({ group: '1.2.3.4' }), /group/);
  });
});
