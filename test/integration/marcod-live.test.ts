/**
 * marcod's warm view and watch socket, with the real commands across namespaces: once warm,
 * Marco and Request-For are answered from the view (a 60 s deadline does not delay them), a
 * node that stopped is never in an answer, `"fresh": true` runs a query, a grid with a
 * reference-like node is answered by query again; the watch socket streams events, one JSON line
 * each, and refuses a bad request with one error line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireNetns } from '../helpers/netns.js';
import { GROUP_112, lanFixture, logIs, startPolod, type Polod } from '../helpers/lan-daemons.js';
import { json, rawRequests, sortedNodes, startMarcod } from '../helpers/marcod-lan.js';
import { waitFor } from '../helpers/wait.js';
import { watchSocketClient } from '../helpers/watch-socket-client.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const REFERENCE = path.resolve(here, '..', 'helpers', 'reference-polod.js');
const fixture = lanFixture({ name: 'mdlive', hosts: 5, subnet: 38 });
const addr = (i: number): string => `10.201.38.${i}`;
/** marcod's longest deadline, beyond rawRequests' own 15 s wait: a reply at all proves no query ran to it. */
const LONG = 60_000;


test('marcod answers from its warm view, never with a node that left, and streams watch events', async (t) => {
  if (!requireNetns(t)) return;
  const lan = await fixture.lan();
  const polods: Polod[] = [];
  for (const i of [1, 2, 3]) {
    const polod = await startPolod(fixture, lan.host(i), {
      groups: [GROUP_112],
      services: i === 3 ? {} : { web: { id: 'web', params: { port: 8000 + i } } },
    });
    t.after(() => polod.stop());
    polods.push(polod);
  }
  const [, p2, p3] = polods as [Polod, Polod, Polod];
  const socketFile = path.join(await fixture.tmpDir(), 'watch.sock');
  const marcod = await startMarcod(fixture, lan.host(4), { args: ['--watch-socket', socketFile] });
  t.after(() => marcod.proc.stop());
  const host = marcod.host;
  const answered = (source: string): number => marcod.logs(logIs('request answered', { source })).length;

  // Warm: a short request is eventually answered from the view.
  await waitFor(
    async () => {
      await rawRequests(host, [json({ Command: 'Request-For', Params: 'web', timeout: 200 })]);
      return answered('view') > 0;
    },
    { what: "marcod's view to be warm", timeoutMs: 15_000 },
  );
  const [web, all] = await rawRequests(host, [
    json({ Command: 'Request-For', Params: 'web', timeout: LONG }),
    json({ Command: 'Marco', timeout: LONG }),
  ]);
  assert.deepEqual(sortedNodes(web?.reply), [
    { Address: addr(1), Params: { port: 8001 } },
    { Address: addr(2), Params: { port: 8002 } },
  ]);
  assert.deepEqual(sortedNodes(all?.reply).map((n) => n.Address), [addr(1), addr(2), addr(3)]);
  // Filters apply to view answers as to queries.
  const [filtered] = await rawRequests(host, [json({ Command: 'Request-For', Params: 'web', timeout: LONG, exclude: [addr(1)], max_nodes: 1 })]);
  assert.deepEqual(sortedNodes(filtered?.reply).map((n) => n.Address), [addr(2)]);

  // fresh: a network query even though the view could answer.
  const queries = answered('query');
  const [fresh] = await rawRequests(host, [json({ Command: 'Request-For', Params: 'web', timeout: 300, fresh: true })]);
  assert.deepEqual(sortedNodes(fresh?.reply).map((n) => n.Address), [addr(1), addr(2)]);
  assert.equal(answered('query'), queries + 1);

  // The watch socket: the providers of web now, then a new one.
  const watcher = await watchSocketClient(socketFile, '{"service": "web"}');
  t.after(() => watcher.close());
  const event = (e: string, a: string): (() => Record<string, unknown> | undefined) => () =>
    watcher.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((x) => x['event'] === e && x['address'] === a);
  await waitFor(event('up', addr(1)), { what: 'up 10.201.38.1 on the watch socket' });
  await waitFor(event('up', addr(2)), { what: 'up 10.201.38.2 on the watch socket' });
  await p3.writeService('web', { id: 'web', params: { port: 8003 } });
  await p3.reload();
  const up3 = await waitFor(event('up', addr(3)), { what: 'up 10.201.38.3 on the watch socket' });
  assert.deepEqual(up3['params'], { port: 8003 });
  assert.equal(up3['reason'], null);

  // A node that stops is in no answer once it has gone.
  await p2.stop();
  const [after] = await rawRequests(host, [json({ Command: 'Request-For', Params: 'web', timeout: LONG })]);
  assert.deepEqual(sortedNodes(after?.reply).map((n) => n.Address), [addr(1), addr(3)]);
  const down2 = await waitFor(event('down', addr(2)), { what: 'down 10.201.38.2 on the watch socket' });
  assert.equal(down2['reason'], 'goodbye');

  // A bad watch request: one error line naming the key, then the end.
  const bad = await watchSocketClient(socketFile, '{"group": "10.0.0.1"}');
  await bad.closed;
  assert.equal(bad.lines.length, 1);
  assert.match(String((JSON.parse(bad.lines[0] ?? '{}') as Record<string, unknown>)['Error']), /^invalid group "10\.0\.0\.1"/);

  // A reference-like node joins (it never announces): its services are unknown, so marcod queries.
  const reference = lan.host(5).spawn([
    process.execPath, REFERENCE, '--group', GROUP_112, '--interface', addr(5), '--service', 'web={"port": 8005}',
  ]);
  t.after(() => reference.stop());
  await reference.waitForLine((l) => l === 'ready', 'the reference stand-in', 20_000);
  const mixed = await waitFor(
    async () => {
      const before = answered('query');
      const [r] = await rawRequests(host, [json({ Command: 'Request-For', Params: 'web', timeout: 500 })]);
      return answered('query') > before ? r : undefined;
    },
    { what: 'marcod to answer by query once the reference node is in its view', timeoutMs: 40_000 },
  );
  assert.deepEqual(sortedNodes(mixed.reply).map((n) => n.Address), [addr(1), addr(3), addr(5)]);
});
