/**
 * marcod's warm view over the in-memory network: what it answers on its own (every member
 * announcing, services known), and when it says "not sure" so that marcod queries instead; in a
 * keyed grid, from signed announcements only.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { gridKey, type GridKey } from '../../src/auth/gridAuth.js';
import { PoloDaemon } from '../../src/daemon/poloDaemon.js';
import { Marco } from '../../src/discovery/marco.js';
import { fromView } from '../../src/marcod/warmView.js';
import type { MarcoRequest, RequestForRequest } from '../../src/marcod/request.js';
import { FAST_TIMING } from '../../src/membership/timing.js';
import { MemoryNetwork } from '../../src/transport/memory.js';
import { fileService } from '../helpers/fakes.js';
import { FakePolo, poloNode } from '../helpers/fake-polod.js';
import { startMemoryPolod } from '../helpers/memory-polod.js';
import { waitFor } from '../helpers/wait.js';

const keepAlive = setInterval(() => undefined, 1000);
const running: Array<{ stop(): Promise<void> }> = [];
after(async () => {
  clearInterval(keepAlive);
  for (const r of running) await r.stop();
});

async function daemon(net: MemoryNetwork, address: string, port: number | undefined, key?: GridKey): Promise<PoloDaemon> {
  const d = await startMemoryPolod(net, address, { services: port === undefined ? [] : [fileService('web', { port })], ...(key && { key }) });
  running.push(d);
  return d;
}

const base = { maxNodes: 0, exclude: [], params: undefined, timeout: undefined, group: undefined, retries: 0 };
const marco: MarcoRequest = { command: 'Marco', ...base };
const web: RequestForRequest = { command: 'Request-For', service: 'web', ...base };
const addresses = (nodes: Array<{ address: string }> | undefined) => nodes?.map((n) => n.address).sort();

describe('marcod warm view', () => {
  it('answers Marco and Request-For from announcements, with the filters, and forgets a node that said goodbye', async () => {
    const net = new MemoryNetwork();
    await daemon(net, '10.0.0.1', 8001);
    const b = await daemon(net, '10.0.0.2', 8002);
    await daemon(net, '10.0.0.3', undefined);
    const controller = new AbortController();
    const watch = new Marco({ transport: net.host('10.0.0.100'), timing: FAST_TIMING }).watch({ signal: controller.signal, queueEvents: false });
    await waitFor(() => addresses(fromView(watch, web))?.join() === '10.0.0.1,10.0.0.2', { what: 'the view to know both providers' });
    assert.deepEqual(addresses(fromView(watch, marco)), ['10.0.0.1', '10.0.0.2', '10.0.0.3']);
    assert.deepEqual(fromView(watch, { ...web, exclude: ['10.0.0.1'] }), [{ address: '10.0.0.2', params: { port: 8002 } }]);
    assert.equal(fromView(watch, { ...web, params: { port: 8001 } })?.length, 1);
    assert.equal(fromView(watch, { ...marco, maxNodes: 2 })?.length, 2);
    assert.deepEqual(fromView(watch, { ...web, service: 'printer' }), [], 'nobody offers it: an empty answer, for sure');
    assert.equal(fromView(watch, { ...web, service: 'alice:web' }), undefined, 'user services are loaded on demand: query');

    const downs: string[] = [];
    watch.view.onEvent((e) => {
      if (e.event === 'down') downs.push(`${e.member.address} ${e.reason}`);
    });
    await b.stop();
    // The goodbye is sent before stop() resolves; delivered a turn later. Expiry would say 'expired'.
    await waitFor(() => addresses(fromView(watch, web))?.join() === '10.0.0.1', { what: 'b to leave the answers' });
    assert.deepEqual(downs, ['10.0.0.2 goodbye']);
    controller.abort();
  });

  it('is not sure (marcod queries) while a reference node is in the grid, or before its first query ended', async () => {
    const net = new MemoryNetwork();
    await daemon(net, '10.0.0.1', 8001);
    const controller = new AbortController();
    const watch = new Marco({ transport: net.host('10.0.0.100'), timing: FAST_TIMING }).watch({ signal: controller.signal, queueEvents: false });
    assert.equal(fromView(watch, marco), undefined, 'not warm yet');
    await waitFor(() => fromView(watch, marco) !== undefined, { what: 'the view to be warm' });
    const reference = await FakePolo.start(net, '10.0.0.9', poloNode({ hostname: 'ref' }));
    await waitFor(() => watch.view.member('10.0.0.9') !== undefined, { what: 'the reference node in the view' });
    assert.equal(fromView(watch, marco), undefined);
    assert.equal(fromView(watch, web), undefined);
    controller.abort();
    await reference.close();
  });
});

describe('marcod warm view in a keyed grid', () => {
  it('keeps a warm view when it has grid keys, from signed announcements only', async () => {
    const { MarcodServer } = await import('../../src/marcod/server.js');
    const { settings } = await import('../helpers/marcod-fixture.js');
    const key = gridKey(Buffer.alloc(32, 7));
    const keyed = new MarcodServer(settings({ bindAddress: '127.0.0.1', marcoPort: 0, keys: [key] }), { transport: new MemoryNetwork().host('127.0.0.1'), warmViews: true });
    assert.notEqual(keyed.warm, undefined);
    await keyed.stop();

    const net = new MemoryNetwork();
    const signed = await daemon(net, '10.0.0.1', 8001, key);
    await daemon(net, '10.0.0.2', 8002);
    const controller = new AbortController();
    const watch = new Marco({ transport: net.host('10.0.0.100'), timing: FAST_TIMING, keys: [key] }).watch({ signal: controller.signal, queueEvents: false });
    await waitFor(() => addresses(fromView(watch, web))?.join() === '10.0.0.1', { what: 'the view to know the keyed provider' });
    assert.deepEqual(fromView(watch, marco), [{ address: '10.0.0.1', params: { hostname: '10.0.0.1' }, verified: true }]);
    // The unkeyed node announces too, unsigned: refused, never in the view.
    await waitFor(() => (watch.verifier?.refused['unsigned'] ?? 0) > 0, { what: 'an unsigned announcement refused' });
    assert.equal(watch.view.member('10.0.0.2'), undefined);
    const downs: string[] = [];
    watch.view.onEvent((e) => {
      if (e.event === 'down') downs.push(`${e.member.address} ${e.reason}`);
    });
    await signed.stop();
    // The signed goodbye removes the member at once; expiry would say 'expired'.
    await waitFor(() => downs.length > 0, { what: 'the signed goodbye to be taken' });
    assert.deepEqual(downs, ['10.0.0.1 goodbye']);
    assert.equal(fromView(watch, web), undefined, 'an empty view proves nothing: marcod queries');
    controller.abort();
  });
});
