/**
 * Live discovery on a host on two LANs (no --interface anywhere): marcod's warm view covers both
 * LANs and answers from it, next to a polod on the same host whose announcements and Members
 * hints count each LAN apart (docs/protocol.md §9); `marco watch` there sees both LANs. Two
 * namespace LANs (r8wa, r8wb), host 3 of r8wa wired onto r8wb as well. And a `marco watch`
 * whose host joins a second LAN while it runs (r8wc, r8we) hears that LAN within seconds, not at
 * its next periodic query.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requireNetns } from '../helpers/netns.js';
import { attachHost } from '../helpers/multi-lan.js';
import { discoverToHint, lanFixture, logIs, MARCO, startPolod, waitWatchEvent, watchEvents } from '../helpers/lan-daemons.js';
import { json, rawRequests, sortedNodes, startMarcod } from '../helpers/marcod-lan.js';
import { waitFor } from '../helpers/wait.js';

const lanA = lanFixture({ name: 'r8wa', hosts: 3, subnet: 185 });
const lanB = lanFixture({ name: 'r8wb', hosts: 2, subnet: 186 });
const lanC = lanFixture({ name: 'r8wc', hosts: 2, subnet: 188 });
const lanE = lanFixture({ name: 'r8we', hosts: 2, subnet: 189 });
const MULTI_B = '10.201.186.50';
/** marcod's longest deadline: a reply within rawRequests' own 15 s wait proves no query ran to it. */
const LONG = 60_000;

test('a host on two LANs: marcod answers from a warm view of both, a polod there counts each LAN apart, marco watch sees both', async (t) => {
  if (!requireNetns(t)) return;
  const [a, b] = [await lanA.lan(), await lanB.lan()];
  const [nodeA, multi] = [a.host(1), a.host(3)];
  const nodeB = b.host(1);
  await attachHost(multi, b, 'eth1', [`${MULTI_B}/24`]);
  const web = (port: number): Record<string, unknown> => ({ web: { id: 'web', params: { port } } });
  const polods = await Promise.all([
    startPolod(lanA, nodeA, { interfaces: [], waitJoined: false, services: web(1), groups: ['224.0.0.112'] }),
    startPolod(lanB, nodeB, { interfaces: [], waitJoined: false, services: web(2), groups: ['224.0.0.112'] }),
    startPolod(lanA, multi, { interfaces: [], waitJoined: false, services: web(3), groups: ['224.0.0.112'] }),
  ]);
  t.after(() => Promise.all(polods.map((p) => p.stop())));
  for (const iface of [multi.address, MULTI_B]) {
    await polods[2]?.waitLog(logIs('joined group', { group: '224.0.0.112', iface }), `joined on ${iface}`, 20_000);
  }

  const marcod = await startMarcod(lanA, multi, { interface: false });
  t.after(() => marcod.proc.stop());
  const fromView = (): number => marcod.logs(logIs('request answered', { source: 'view' })).length;

  // Warm: a request is eventually answered from the view (each LAN's count matches what the
  // view holds there; the local polod's own count covers one LAN each).
  await waitFor(
    async () => {
      await rawRequests(multi, [json({ Command: 'Request-For', Params: 'web', timeout: 200 })]);
      return fromView() > 0;
    },
    { what: "marcod's view of both LANs to be warm", timeoutMs: 15_000 },
  );
  const before = fromView();
  const [found, all] = await rawRequests(multi, [json({ Command: 'Request-For', Params: 'web', timeout: LONG }), json({ Command: 'Marco', timeout: LONG })]);
  assert.equal(fromView(), before + 2, 'both answered from the view');
  // Every node at its address on each LAN, the local polod at both of its addresses.
  assert.deepEqual(sortedNodes(found?.reply), [
    { Address: nodeA.address, Params: { port: 1 } },
    { Address: multi.address, Params: { port: 3 } },
    { Address: nodeB.address, Params: { port: 2 } },
    { Address: MULTI_B, Params: { port: 3 } },
  ]);
  assert.deepEqual(
    sortedNodes(all?.reply).map((n) => n.Address),
    [nodeA.address, multi.address, nodeB.address, MULTI_B],
  );

  // From LAN A, a query with a 10-minute deadline ends on the Members hint: the two-LAN polod
  // counts LAN A's nodes only in its reply there.
  assert.deepEqual(await discoverToHint(a.host(2)), [nodeA.address, multi.address]);

  // marco watch with no flags on the same host: both LANs.
  const watch = multi.spawn([process.execPath, MARCO, 'watch', '--json']);
  t.after(() => watch.stop());
  for (const address of [nodeA.address, nodeB.address]) await waitWatchEvent(watch, 'up', address);
});

test('marco watch follows the links of its host: a LAN the host joins while it runs is heard within seconds', async (t) => {
  if (!requireNetns(t)) return;
  const [c, e] = [await lanC.lan(), await lanE.lan()];
  const [nodeC, watcher, nodeE] = [c.host(1), c.host(2), e.host(1)];
  const polods = await Promise.all([
    startPolod(lanC, nodeC, { interfaces: [], waitJoined: false, groups: ['224.0.0.112'] }),
    startPolod(lanE, nodeE, { interfaces: [], waitJoined: false, groups: ['224.0.0.112'] }),
  ]);
  t.after(() => Promise.all(polods.map((p) => p.stop())));
  const watch = watcher.spawn([process.execPath, MARCO, 'watch', '--json']);
  t.after(() => watch.stop());
  await waitWatchEvent(watch, 'up', nodeC.address);
  // The host gains a link onto LAN E. The watch's periodic query is 30 to 45 s away: only a
  // watch that follows its links listens and asks there within the 15 s waited for here.
  const link = await attachHost(watcher, e, 'eth1', ['10.201.189.50/24']);
  await waitWatchEvent(watch, 'up', nodeE.address, { timeoutMs: 15_000 });
  // The link goes away (LAN E's node expires from the view) and comes back: heard again.
  await link.remove();
  await waitWatchEvent(watch, 'down', nodeE.address, { timeoutMs: 15_000 });
  const upsOfE = (): number => watchEvents(watch).filter((ev) => ev.event === 'up' && ev.address === nodeE.address).length;
  const ups = upsOfE();
  await attachHost(watcher, e, 'eth1', ['10.201.189.50/24']);
  await waitFor(() => upsOfE() > ups, {
    what: `up ${nodeE.address} again on the link back`,
    timeoutMs: 15_000,
  });
});
