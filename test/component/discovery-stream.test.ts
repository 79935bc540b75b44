/**
 * Query streams: arrival order, live stats, closing by break/close/abort, the bounded queue, and
 * socket failures. Order is controlled by when the fakes answer, never by timers.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Marco, STREAM_QUEUE_LIMIT, type NodeResult } from '../../src/discovery/index.js';
import { AbortedError, MarcoPoloError } from '../../src/errors.js';
import { MemoryNetwork } from '../../src/transport/memory.js';
import type { DatagramSocket, Transport } from '../../src/transport/transport.js';
import { FakePolo, holdEventLoop, querySource, settle, silent, TrackedTransport } from '../helpers/fake-polod.js';

holdEventLoop();

const NEVER = 600_000;
const GUARD = { timeout: 20_000 };
const polo = (hostname: string) => ({ Command: 'Polo', Params: { hostname } });

async function threeSilentPolos(net: MemoryNetwork): Promise<FakePolo[]> {
  return Promise.all(['10.0.0.2', '10.0.0.3', '10.0.0.4'].map((a) => FakePolo.start(net, a, silent)));
}

describe('QueryStream', () => {
  test('yields each node in arrival order, with stats readable during iteration', GUARD, async () => {
    const net = new MemoryNetwork();
    const marco = new Marco({ transport: net.host('10.0.0.1') });
    const [a, b, c] = await threeSilentPolos(net);
    assert.ok(a && b && c);

    const stream = marco.discover({ timeout: NEVER, maxNodes: 3 });
    await Promise.all([a, b, c].map((p) => p.waitForQueries(1)));
    // Answer in the order c, a, b: the stream must yield them in that order.
    await c.answerQuery(0, polo('c'));
    await a.answerQuery(0, polo('a'));
    await b.answerQuery(0, polo('b'));
    await settle();

    const seen: string[] = [];
    const acceptedWhenYielded: number[] = [];
    for await (const node of stream) {
      seen.push(String(node.params['hostname']));
      acceptedWhenYielded.push(stream.stats.accepted);
    }
    assert.deepEqual(seen, ['c', 'a', 'b']);
    // All three had arrived before the first read; the counters say so while iterating.
    assert.deepEqual(acceptedWhenYielded, [3, 3, 3]);
    assert.equal(stream.stats.received, 3);
  });

  test('yields a node while the query is still running', GUARD, async () => {
    const net = new MemoryNetwork();
    const marco = new Marco({ transport: net.host('10.0.0.1') });
    const [a, b] = await threeSilentPolos(net);
    assert.ok(a && b);
    const stream = marco.discover({ timeout: NEVER });
    const iterator = stream[Symbol.asyncIterator]();
    await a.waitForQueries(1);
    await a.answerQuery(0, polo('a'));
    assert.deepEqual((await iterator.next()).value, { address: '10.0.0.2', params: { hostname: 'a' } });
    await b.answerQuery(0, polo('b'));
    assert.deepEqual((await iterator.next()).value, { address: '10.0.0.3', params: { hostname: 'b' } });
    await stream.close();
    assert.deepEqual(await iterator.next(), { done: true, value: undefined });
  });

  test('breaking out of for-await closes the socket', GUARD, async () => {
    const net = new MemoryNetwork();
    const transport = new TrackedTransport(net.host('10.0.0.1'));
    const marco = new Marco({ transport });
    const p = await FakePolo.start(net, '10.0.0.2', () => polo('a'));

    const stream = marco.discover({ timeout: NEVER });
    for await (const node of stream) {
      assert.equal(node.address, '10.0.0.2');
      break;
    }
    assert.equal(transport.open, 0);
    const before = stream.stats.received;
    await p.answerQuery(0, polo('again'));
    await settle();
    assert.equal(stream.stats.received, before, 'nothing is received after the break');
    await stream.close(); // idempotent
  });

  test('close() ends the iteration and the query', GUARD, async () => {
    const net = new MemoryNetwork();
    const marco = new Marco({ transport: net.host('10.0.0.1') });
    const [a] = await threeSilentPolos(net);
    assert.ok(a);
    const stream = marco.discover({ timeout: NEVER });
    const collected = (async () => {
      const nodes: NodeResult[] = [];
      for await (const node of stream) nodes.push(node);
      return nodes;
    })();
    await a.waitForQueries(1);
    await a.answerQuery(0, polo('a'));
    await settle();
    await stream.close();
    assert.deepEqual(await collected, [{ address: '10.0.0.2', params: { hostname: 'a' } }]);
  });

  test('abort ends the iteration with AbortedError and closes the socket', GUARD, async () => {
    const net = new MemoryNetwork();
    const transport = new TrackedTransport(net.host('10.0.0.1'));
    const marco = new Marco({ transport });
    const p = await FakePolo.start(net, '10.0.0.2', () => polo('a'));
    const controller = new AbortController();
    const stream = marco.discover({ timeout: NEVER, signal: controller.signal });

    await assert.rejects(async () => {
      for await (const node of stream) {
        assert.equal(node.address, '10.0.0.2');
        controller.abort();
      }
    }, AbortedError);
    await stream.close(); // resolves once the socket is closed
    assert.equal(transport.open, 0);

    const before = stream.stats.received;
    await p.answerQuery(0, polo('again'));
    await settle();
    assert.equal(stream.stats.received, before);
  });

  test('the unread queue is bounded; overflow is counted as dropped', GUARD, async () => {
    const net = new MemoryNetwork();
    const marco = new Marco({ transport: net.host('10.0.0.1') });
    const stream = marco.discover({ timeout: NEVER });
    await settle();
    const client = querySource(net, '224.0.0.112');
    // More distinct nodes answer than the queue holds, before anyone reads.
    const extra = 5;
    for (let i = 0; i < STREAM_QUEUE_LIMIT + extra; i++) {
      const host = net.host(`10.1.${Math.floor(i / 250)}.${(i % 250) + 1}`);
      const socket = await host.openQuerySocket({ ttl: 1 }, () => undefined);
      await socket.send(new TextEncoder().encode(JSON.stringify(polo(`n${i}`))), client.port, client.address);
    }
    await settle();

    assert.equal(stream.stats.accepted, STREAM_QUEUE_LIMIT);
    assert.equal(stream.stats.dropped, extra);
    let read = 0;
    for await (const node of stream) {
      assert.equal(node.params['hostname'], `n${read}`);
      if (++read === STREAM_QUEUE_LIMIT) break;
    }
    assert.equal(read, STREAM_QUEUE_LIMIT);
  });
});

describe('socket failures', () => {
  const failing = (what: 'open' | 'send', closed: string[]): Transport => ({
    bindGroup: () => Promise.reject(new Error('unused')),
    bindUnicast: () => Promise.reject(new Error('unused')),
    localAddresses: () => ['10.0.0.1'],
    openQuerySocket: async () => {
      if (what === 'open') throw Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' });
      const socket: DatagramSocket = {
        port: 40000,
        send: () => Promise.reject(new Error('ENETUNREACH')),
        close: async () => {
          closed.push('closed');
        },
      };
      return socket;
    },
  });

  test('a socket that cannot be opened rejects with an I/O error', async () => {
    const marco = new Marco({ transport: failing('open', []) });
    await assert.rejects(
      marco.marco({ timeout: NEVER }),
      (err: unknown) => err instanceof MarcoPoloError && err.code === 'MP_ERR_IO' && /EMFILE/.test(err.message),
    );
  });

  test('a failed send ends the stream with an I/O error and closes the socket', async () => {
    const closed: string[] = [];
    const marco = new Marco({ transport: failing('send', closed) });
    const stream = marco.requestForStream('web', { timeout: NEVER });
    await assert.rejects(async () => {
      for await (const node of stream) assert.fail(`unexpected ${node.address}`);
    }, /could not send the Request-For web query to 224\.0\.0\.112:1337: ENETUNREACH/);
    await stream.close();
    assert.deepEqual(closed, ['closed']);
  });
});
