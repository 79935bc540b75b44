/**
 * services(): a unicast Services query to one node. The list is read from `Services` (our
 * polod) or `Params` (what the reference client expected, B2); first valid reply wins.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Marco, MAX_RETRIES, type HostLookup } from '../../src/discovery/index.js';
import { AbortedError, InvalidArgumentError, MarcoPoloError } from '../../src/errors.js';
import { MemoryNetwork } from '../../src/transport/memory.js';
import { FakePolo, holdEventLoop, silent, TrackedTransport, type Behaviour } from '../helpers/fake-polod.js';

holdEventLoop();

const NEVER = 600_000;
const GUARD = { timeout: 20_000 };
const LIST = [
  { id: 'web', params: { port: 8080, path: '/index' } },
  { id: 'printer', params: {} },
];

async function setup(
  behaviour: Behaviour,
  lookup?: HostLookup,
): Promise<{ net: MemoryNetwork; polo: FakePolo; transport: TrackedTransport; marco: Marco }> {
  const net = new MemoryNetwork();
  const polo = await FakePolo.start(net, '10.0.0.2', behaviour, { unicast: true });
  const transport = new TrackedTransport(net.host('10.0.0.1'));
  const marco = new Marco(lookup === undefined ? { transport } : { transport, lookup });
  return { net, polo, transport, marco };
}

describe('services()', () => {
  test('reads the list from "Services" (our polod sends it under both keys)', GUARD, async () => {
    const { polo, transport, marco } = await setup(() => ({ Command: 'OK', Services: LIST, Params: LIST }));
    const result = await marco.services('10.0.0.2', { timeout: NEVER });
    assert.deepEqual(result, { address: '10.0.0.2', services: LIST });
    assert.deepEqual(
      polo.queries.map((q) => q.query),
      [{ Command: 'Services' }],
    );
    assert.equal(transport.open, 0);
  });

  test('reads the list from "Params" as the reference client did (B2), reference formatting', GUARD, async () => {
    const { marco } = await setup(
      () => '{"Command": "OK", "Params": [{"id": "web", "params": {"port": 8080, "path": "/index"}}, {"id": "printer"}]}',
    );
    assert.deepEqual(await marco.services('10.0.0.2', { timeout: NEVER }), { address: '10.0.0.2', services: LIST });
  });

  test('reports a list the node cut to fit one datagram', GUARD, async () => {
    const { marco } = await setup(() => ({ Command: 'OK', Services: LIST.slice(0, 1), Truncated: true, Total: 2 }));
    assert.deepEqual(await marco.services('10.0.0.2', { timeout: NEVER }), {
      address: '10.0.0.2',
      services: LIST.slice(0, 1),
      truncated: true,
    });
  });

  test('skips malformed and wrong-kind replies; the first valid one wins', GUARD, async () => {
    const { marco } = await setup(() => [
      'nope',
      { Command: 'Polo', Params: {} },
      { Command: 'OK', Params: { port: 1 } },
      { Command: 'OK', Services: [] },
      { Command: 'OK', Services: LIST },
    ]);
    assert.deepEqual(await marco.services('10.0.0.2', { timeout: NEVER }), { address: '10.0.0.2', services: [] });
  });

  test('resolves undefined when nobody answered by the deadline', async () => {
    const { marco } = await setup(silent);
    assert.equal(await marco.services('10.0.0.2', { timeout: 20 }), undefined);
    assert.equal(await marco.services('10.0.0.3', { timeout: 20 }), undefined);
  });

  test('resends while nobody answered', GUARD, async () => {
    const { polo, marco } = await setup((_q, _f, index) => (index === 0 ? undefined : { Command: 'OK', Services: LIST }));
    // The most resends over a deadline that only bounds a failure: one every ~100 ms until the
    // first valid reply ends the query. How many go out before that depends on the machine's pace.
    assert.deepEqual(await marco.services('10.0.0.2', { timeout: 10_000, retries: MAX_RETRIES }), {
      address: '10.0.0.2',
      services: LIST,
    });
    assert.ok(polo.queries.length >= 2, `${polo.queries.length} queries`);
  });

  test('sends an explicit group as the "Group" extension key, and to the given port', GUARD, async () => {
    const net = new MemoryNetwork();
    const polo = await FakePolo.start(net, '10.0.0.2', () => ({ Command: 'OK', Services: [] }), {
      unicast: true,
      port: 4000,
    });
    const marco = new Marco({ transport: net.host('10.0.0.1') });
    await marco.services('10.0.0.2', { group: '224.0.0.113', port: 4000, timeout: NEVER });
    assert.deepEqual(polo.queries[0]?.query, { Command: 'Services', Group: '224.0.0.113' });
  });

  test('aborts with AbortedError', GUARD, async () => {
    const { polo, transport, marco } = await setup(silent);
    const controller = new AbortController();
    const pending = marco.services('10.0.0.2', { timeout: NEVER, signal: controller.signal });
    await polo.waitForQueries(1);
    controller.abort();
    await assert.rejects(pending, AbortedError);
    assert.equal(transport.open, 0);
  });
});

describe('services() with a host name', () => {
  test('resolves the name (IPv4) and asks that address', GUARD, async () => {
    const asked: string[] = [];
    const { marco } = await setup(
      () => ({ Command: 'OK', Services: LIST }),
      async (name) => {
        asked.push(name);
        return '10.0.0.2';
      },
    );
    assert.deepEqual(await marco.services('polo-a.lan', { timeout: NEVER }), { address: '10.0.0.2', services: LIST });
    assert.deepEqual(asked, ['polo-a.lan']);
  });

  test('an unknown name is an InvalidArgumentError naming it', async () => {
    const notFound: HostLookup = () =>
      Promise.reject(Object.assign(new Error('getaddrinfo ENOTFOUND nowhere'), { code: 'ENOTFOUND' }));
    const { net, marco } = await setup(silent, notFound);
    await assert.rejects(
      marco.services('nowhere', { timeout: NEVER }),
      (err: unknown) => err instanceof InvalidArgumentError && /node "nowhere"/.test(err.message),
    );
    assert.equal(net.sent.length, 0);
  });

  test('other resolver failures are I/O errors', async () => {
    const broken: HostLookup = () => Promise.reject(Object.assign(new Error('EAI_AGAIN'), { code: 'EAI_AGAIN' }));
    const { marco } = await setup(silent, broken);
    await assert.rejects(
      marco.services('polo-a', { timeout: NEVER }),
      (err: unknown) => err instanceof MarcoPoloError && err.code === 'MP_ERR_IO',
    );
  });

  test('a resolver slower than the deadline gives undefined (the deadline covers the lookup)', async () => {
    const { net, marco } = await setup(silent, () => new Promise<string>(() => undefined));
    assert.equal(await marco.services('polo-a', { timeout: 20 }), undefined);
    assert.equal(net.sent.length, 0);
  });

  test('an abort during the lookup rejects with AbortedError', async () => {
    const controller = new AbortController();
    const { marco } = await setup(silent, () => {
      controller.abort();
      return new Promise<string>(() => undefined);
    });
    await assert.rejects(marco.services('polo-a', { timeout: NEVER, signal: controller.signal }), AbortedError);
  });
});
