/**
 * Every interface: a polod given no --interface serves every up, multicast-capable interface of
 * its host and follows them (an interface added, its address changed, removed) without a
 * restart; each LAN gets answers from the host's address on that LAN; a polod with no usable
 * interface starts anyway and serves once one comes up; and marco with no --interface asks every
 * LAN its host is on. Two namespace LANs (r8a, r8b), one host of r8a wired onto r8b as well.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requireNetns } from '../helpers/netns.js';
import { attachHost } from '../helpers/multi-lan.js';
import { GROUP_112, GROUP_113, lanFixture, logIs, MARCO, marcoNodes, startPolod, type JsonNode } from '../helpers/lan-daemons.js';

const lanA = lanFixture({ name: 'r8a', hosts: 3, subnet: 180 });
const lanB = lanFixture({ name: 'r8b', hosts: 4, subnet: 181 });
/** Short, so a change is followed quickly; the waits below allow far more than one interval. */
const POLL = ['--interface-poll-ms', '200'];
/** A failure deadline for following a change (the promise is about 5 s; CI may be slow). */
const FOLLOW_MS = 20_000;

const addresses = (nodes: readonly JsonNode[]): string[] => nodes.map((n) => n.address);

test('a polod on two LANs, with no --interface, answers each LAN from its address there; marco on it asks both LANs', async (t) => {
  if (!requireNetns(t)) return;
  const [a, b] = [await lanA.lan(), await lanB.lan()];
  const [multi, nodeA, clientA] = [a.host(1), a.host(2), a.host(3)];
  const [clientB, nodeB] = [b.host(1), b.host(2)];
  await attachHost(multi, b, 'eth1', ['10.201.181.50/24']);
  const svc = { web: { id: 'web', params: { port: 80 } } };
  const polod = await startPolod(lanA, multi, { interfaces: [], waitJoined: false, services: svc, extraArgs: POLL });
  t.after(() => polod.stop());
  for (const group of [GROUP_112, GROUP_113]) {
    for (const iface of ['10.201.180.1', '10.201.181.50']) {
      await polod.waitLog(logIs('joined group', { group, iface }), `joined ${group} on ${iface}`, FOLLOW_MS);
    }
  }
  const others = await Promise.all([startPolod(lanA, nodeA, { services: svc }), startPolod(lanB, nodeB, { services: svc })]);
  t.after(() => Promise.all(others.map((p) => p.stop())));

  // Each LAN finds the multi-homed node at its address on that LAN, next to its own node.
  const timeout = ['--timeout', '10000', '--max-nodes', '2'];
  const [fromA, fromB, fromA113] = await Promise.all([
    marcoNodes(clientA, ['request-for', 'web', ...timeout]),
    marcoNodes(clientB, ['request-for', 'web', ...timeout]),
    marcoNodes(clientA, ['discover', '--group', GROUP_113, ...timeout]),
  ]);
  assert.deepEqual(addresses(fromA.nodes), ['10.201.180.1', '10.201.180.2']);
  assert.deepEqual(addresses(fromB.nodes), ['10.201.181.2', '10.201.181.50']);
  assert.deepEqual(addresses(fromA113.nodes), ['10.201.180.1', '10.201.180.2']);

  // marco on the multi-homed host, with no --interface, asks both LANs and merges the answers.
  const run = await multi.run([process.execPath, MARCO, 'request-for', 'web', '--json', '--timeout', '3000'], { timeoutMs: 15_000 });
  assert.equal(run.code, 0, run.stderr);
  const found = new Set(addresses(JSON.parse(run.stdout) as JsonNode[]));
  assert.ok(found.has('10.201.180.2') && found.has('10.201.181.2'), `both LANs' nodes found: ${[...found].join(', ')}`);
  assert.equal(found.size, (JSON.parse(run.stdout) as JsonNode[]).length, 'one entry per node address');
});

test('a polod follows an interface that appears, changes address and goes away, without a restart', async (t) => {
  if (!requireNetns(t)) return;
  const [a, b] = [await lanA.lan(), await lanB.lan()];
  const [node, clientA] = [b.host(3), a.host(3)];
  const polod = await startPolod(lanB, node, {
    interfaces: [],
    waitJoined: false,
    services: { db: { id: 'db', params: { port: 5432 } } },
    extraArgs: POLL,
  });
  t.after(() => polod.stop());
  await polod.waitLog(logIs('joined group', { group: GROUP_112, iface: '10.201.181.3' }), 'joined on eth0', FOLLOW_MS);
  const query = ['request-for', 'db', '--timeout', '10000', '--max-nodes', '1'];

  const link = await attachHost(node, a, 'eth1', ['10.201.180.70/24']);
  t.after(() => link.remove());
  await polod.waitLog(logIs('joined group', { group: GROUP_112, iface: '10.201.180.70' }), 'joined on the new eth1', FOLLOW_MS);
  assert.deepEqual(addresses((await marcoNodes(clientA, query)).nodes), ['10.201.180.70']);

  // A new address on the same interface: the group follows it, and replies come from it. (The
  // old one goes first: removing a primary address takes its secondaries with it.)
  await link.delAddress('10.201.180.70/24');
  await link.addAddress('10.201.180.71/24');
  await polod.waitLog(logIs('joined group', { group: GROUP_112, iface: '10.201.180.71' }), 'joined on the new address', FOLLOW_MS);
  assert.deepEqual(addresses((await marcoNodes(clientA, query)).nodes), ['10.201.180.71']);

  // The interface goes away: polod leaves the group there and serves on.
  await link.remove();
  await polod.waitLog(logIs('left group', { group: GROUP_112, iface: '10.201.180.71' }), 'left the group on the removed eth1', FOLLOW_MS);
  assert.ok(polod.alive());
  assert.deepEqual(addresses((await marcoNodes(b.host(1), query)).nodes), ['10.201.181.3']);
});

test('a polod with no usable interface starts, warns, and serves once one comes up', async (t) => {
  if (!requireNetns(t)) return;
  const b = await lanB.lan();
  const [node, client] = [b.host(4), b.host(1)];
  await b.setLinkDown(node);
  const polod = await startPolod(lanB, node, {
    interfaces: [],
    waitJoined: false,
    services: { cache: { id: 'cache', params: {} } },
    extraArgs: POLL,
  });
  t.after(() => polod.stop());
  const warning = await polod.waitLog(logIs('no multicast interface is up (loopback is not served); waiting for one'), 'the no-interface warning');
  assert.equal(warning['level'], 40);
  assert.ok(polod.alive());

  await b.setLinkUp(node);
  await polod.waitLog(logIs('joined group', { group: GROUP_112, iface: '10.201.181.4' }), 'joined once eth0 is up', FOLLOW_MS);
  const found = await marcoNodes(client, ['request-for', 'cache', '--timeout', '10000', '--max-nodes', '1']);
  assert.deepEqual(addresses(found.nodes), ['10.201.181.4']);
});
