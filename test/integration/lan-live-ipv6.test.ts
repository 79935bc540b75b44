/**
 * Live discovery over IPv6 (docs/protocol.md §9): on an IPv6-only link, with no flags, polods
 * announce on the IPv6 twin and see each other, a Marco query ends on the Members hint of IPv6
 * replies, and `marco watch` sees a polod arrive, change a service and leave; on a dual-stack
 * link a node is one member (at its IPv4 address) in a watch and in the Members count, and a
 * polod given --interface serves the twin on that interface too. Two namespace LANs: r8w6
 * (IPv6 only) and r8wd (dual stack), DAD off, addresses link-local and fd00:201::/32 only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requireNetns } from '../helpers/netns.js';
import { discoverToHint, lanFixture, linkLocal, logIs, MARCO, startPolod, waitWatchEvent, watchEvents } from '../helpers/lan-daemons.js';

const v6only = lanFixture({ name: 'r8w6', hosts: 4, subnet: 184, ipv4: false, ipv6: true });
const dual = lanFixture({ name: 'r8wd', hosts: 3, subnet: 187, ipv6: true });
const TWIN_112 = 'ff02::224:0:0:112';
const JOIN_MS = 20_000;
test('on an IPv6-only link: polods see each other, a Marco query ends on the Members hint, marco watch follows a node', async (t) => {
  if (!requireNetns(t)) return;
  const lan = await v6only.lan();
  const [h1, h2, h3, client] = [lan.host(1), lan.host(2), lan.host(3), lan.host(4)];
  const web = (port: number): Record<string, unknown> => ({ web: { id: 'web', params: { port } } });
  const polods = await Promise.all([
    startPolod(v6only, h1, { interfaces: [], waitJoined: false, services: web(81), logLevel: 'debug' }),
    startPolod(v6only, h2, { interfaces: [], waitJoined: false, services: {} }),
  ]);
  t.after(() => Promise.all(polods.map((p) => p.stop())));
  const [a1, a2, a3] = await Promise.all([linkLocal(h1), linkLocal(h2), linkLocal(h3)]);
  // polod's own view, from announcements on the twin.
  await polods[0]?.waitLog(logIs('membership', { event: 'up', address: a2, kind: 'announcing' }), 'h2 in the view of h1', JOIN_MS);

  // No --max-nodes, a deadline of 10 minutes: the query ends once both members answered.
  assert.deepEqual(await discoverToHint(client), [a1, a2].sort());

  // A watch of the service (no flags): h1 at once, then h3 arrives, changes it and leaves.
  const watch = client.spawn([process.execPath, MARCO, 'watch', '--service', 'web', '--json']);
  t.after(() => watch.stop());
  await waitWatchEvent(watch, 'up', a1);
  const p3 = await startPolod(v6only, h3, { interfaces: [], waitJoined: false, services: web(83) });
  t.after(() => p3.stop());
  await waitWatchEvent(watch, 'up', a3);
  await p3.writeService('web', { id: 'web', params: { port: 8083 } });
  await p3.reload();
  await waitWatchEvent(watch, 'update', a3);
  await p3.stop();
  await waitWatchEvent(watch, 'down', a3, { reason: 'goodbye' });
  assert.deepEqual(
    watchEvents(watch).filter((e) => e.address === a3).map((e) => [e.event, e.params['port']]),
    [['up', 83], ['update', 8083], ['down', 8083]],
  );
  assert.ok(watchEvents(watch).every((e) => e.address.startsWith('fe80:') && e.address.endsWith('%eth0')), 'nodes at their link-local address');
});

test('on a dual-stack link a node is one member, at IPv4, in a watch and in the Members count; --interface serves the twin', async (t) => {
  if (!requireNetns(t)) return;
  const lan = await dual.lan();
  const [h1, h2, client] = [lan.host(1), lan.host(2), lan.host(3)];
  const p1 = await startPolod(dual, h1, { interfaces: [], waitJoined: false, services: {}, logLevel: 'debug' });
  t.after(() => p1.stop());
  const watch = client.spawn([process.execPath, MARCO, 'watch', '--json']);
  t.after(() => watch.stop());
  await waitWatchEvent(watch, 'up', h1.address);

  // h2 names its interface by its IPv4 address: the twin is served there too (and announced on).
  const p2 = await startPolod(dual, h2, { services: {} });
  t.after(() => p2.stop());
  await p2.waitLog(logIs('joined group', { ipv6: TWIN_112, iface: 'eth0' }), `joined ${TWIN_112} on eth0`, JOIN_MS);
  await waitWatchEvent(watch, 'up', h2.address);
  // h1 hears h2 over both families (two links of its view: IPv4 and IPv6), so both kinds of
  // announcement have been on the link while the watch listened.
  await p1.waitLog(logIs('membership', { event: 'up', address: await linkLocal(h2), kind: 'announcing' }), 'h2 over IPv6 in the view of h1', JOIN_MS);
  await p1.waitLog(logIs('membership', { event: 'up', address: h2.address, kind: 'announcing' }), 'h2 over IPv4 in the view of h1', JOIN_MS);

  // Each count is of one family: an IPv4 query ends on a hint of 2, not 4.
  assert.deepEqual(await discoverToHint(client), [h1.address, h2.address].sort());
  const seen = watchEvents(watch);
  assert.ok(
    seen.every((e) => e.address === h1.address || e.address === h2.address),
    `each node at its IPv4 address only: ${JSON.stringify(seen)}`,
  );
  assert.deepEqual([...new Set(seen.filter((e) => e.event === 'up').map((e) => e.address))], [h1.address, h2.address]);
});
