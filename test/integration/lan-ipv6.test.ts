/**
 * IPv6: with no flags at all, polod serves the IPv6 twins of its groups (ff02::224:0:0:112 for
 * 224.0.0.112) and `marco` finds it on an IPv6-only link, nodes listed at their link-local
 * addresses (and asked for their Services there, by unicast); an IPv6 group given with --group works in polod and marco; on a dual-stack link a
 * polod answers both families, marco lists it once at its IPv4 address, and the publish API
 * takes an IPv6 group; marcod, with no flags, answers from an IPv6-only link. Two namespace LANs: r8v6 (IPv6 only) and r8ds (dual stack), DAD off,
 * addresses link-local and fd00:201::/32 only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { requireNetns, type LanHost } from '../helpers/netns.js';
import { lanFixture, linkLocal, logIs, MARCO, POLOD, startPolod, type JsonNode } from '../helpers/lan-daemons.js';
import { json, rawRequests, startMarcod } from '../helpers/marcod-lan.js';

const v6only = lanFixture({ name: 'r8v6', hosts: 3, subnet: 182, ipv4: false, ipv6: true });
const dual = lanFixture({ name: 'r8ds', hosts: 3, subnet: 183, ipv6: true });
const TWIN_112 = 'ff02::224:0:0:112';
const OWN_GROUP = 'ff02::abcd:1';
const POLO = path.join(path.dirname(POLOD), 'polo.js');
const JOIN_MS = 20_000;

/** `marco <args> --json` on `host`, with exactly these flags (no --interface added). */
async function marco(host: LanHost, args: readonly string[]): Promise<JsonNode[]> {
  const run = await host.run([process.execPath, MARCO, ...args, '--json'], { timeoutMs: 20_000 });
  assert.equal(run.code, 0, `marco ${args.join(' ')}: ${run.stdout}${run.stderr}`);
  return (JSON.parse(run.stdout) as JsonNode[]).sort((a, b) => a.address.localeCompare(b.address));
}

test('on an IPv6-only link, polod and marco with no flags find each other; an IPv6 --group works in both', async (t) => {
  if (!requireNetns(t)) return;
  const lan = await v6only.lan();
  const [h1, h2, client] = [lan.host(1), lan.host(2), lan.host(3)];
  const services = { web: { id: 'web', params: { port: 80 } } };
  const polods = await Promise.all([
    startPolod(v6only, h1, { interfaces: [], waitJoined: false, services }),
    startPolod(v6only, h2, { interfaces: [], waitJoined: false, services, groups: ['224.0.0.112', OWN_GROUP] }),
  ]);
  t.after(() => Promise.all(polods.map((p) => p.stop())));
  for (const p of polods) await p.waitLog(logIs('joined group', { ipv6: TWIN_112, iface: 'eth0' }), `joined ${TWIN_112}`, JOIN_MS);
  await polods[1]?.waitLog(logIs('joined group', { ipv6: OWN_GROUP, iface: 'eth0' }), `joined ${OWN_GROUP}`, JOIN_MS);
  const [a1, a2] = [await linkLocal(h1), await linkLocal(h2)];
  const expected = [a1, a2].sort();

  const bounded = ['--timeout', '10000', '--max-nodes', '2'];
  const found = await marco(client, ['discover', ...bounded]);
  assert.deepEqual(
    found.map((n) => n.address),
    expected,
  );
  assert.deepEqual(found.find((n) => n.address === a1)?.params, { hostname: 'h1' });
  const web = await marco(client, ['request-for', 'web', '--group', TWIN_112, ...bounded]);
  assert.deepEqual(
    web.map((n) => [n.address, n.params]),
    expected.map((a) => [a, { port: 80 }]),
  );
  // Services by unicast to a node as marco lists it (link-local, with its interface).
  const listed = await client.run([process.execPath, MARCO, 'services', a1, '--json', '--timeout', '10000', '--retries', '9'], { timeoutMs: 20_000 });
  assert.equal(listed.code, 0, listed.stderr);
  assert.deepEqual(JSON.parse(listed.stdout), { address: a1, services: [{ id: 'web', params: { port: 80 } }] });
  // A grid of its own on an IPv6 group: only h2 serves it.
  const own = await marco(client, ['request-for', 'web', '--group', OWN_GROUP, '--timeout', '10000', '--max-nodes', '1']);
  assert.deepEqual(
    own.map((n) => n.address),
    [a2],
  );
});

test('on a dual-stack link, polod answers on both families; marco lists it once at IPv4; publish takes an IPv6 group', async (t) => {
  if (!requireNetns(t)) return;
  const lan = await dual.lan();
  const [node, client] = [lan.host(1), lan.host(3)];
  const polod = await startPolod(dual, node, { interfaces: [], waitJoined: false, services: {} });
  t.after(() => polod.stop());
  await polod.waitLog(logIs('joined group', { ipv6: TWIN_112, iface: 'eth0' }), `joined ${TWIN_112}`, JOIN_MS);
  await polod.waitLog(logIs('joined group', { group: '224.0.0.112', iface: node.address }), 'joined 224.0.0.112', JOIN_MS);

  // The publish API takes the IPv6 twin as the grid 224.0.0.112.
  const published = await node.run([process.execPath, POLO, '--state-dir', polod.stateDir, 'publish', 'db', '--root', '--group', TWIN_112, '--param', 'port=5432']);
  assert.equal(published.code, 0, published.stderr);

  // marco, no flags: over IPv4 on this link, the node once at its IPv4 address.
  const found = await marco(client, ['request-for', 'db', '--timeout', '10000', '--max-nodes', '1']);
  assert.deepEqual(found, [{ address: node.address, params: { port: 5432 } }]);

  // The same node answers the IPv6 twin too (a plain IPv6 client on the link asks it).
  const probe = [
    "const s = require('node:dgram').createSocket('udp6');",
    "s.on('message', (m, r) => { console.log(JSON.stringify({ from: r.address, reply: JSON.parse(String(m)) })); process.exit(0); });",
    `s.bind(0, () => s.send('{"Command":"Request-For","Params":"db"}', 1337, '${TWIN_112}%eth0'));`,
    'setTimeout(() => process.exit(1), 15000).unref();',
  ].join('\n');
  const run = await client.run([process.execPath, '-e', probe], { timeoutMs: 20_000 });
  assert.equal(run.code, 0, `no IPv6 answer: ${run.stderr}`);
  const answer = JSON.parse(run.stdout) as { from: string; reply: Record<string, unknown> };
  assert.equal(answer.from, await linkLocal(node));
  assert.equal(answer.reply['Command'], 'OK');
  assert.deepEqual(answer.reply['Params'], { port: 5432 });
});

test('marcod with no --interface answers from an IPv6-only link, an IPv6 group in the request', async (t) => {
  if (!requireNetns(t)) return;
  const lan = await v6only.lan();
  const [node, client] = [lan.host(1), lan.host(3)];
  const polod = await startPolod(v6only, node, { interfaces: [], waitJoined: false, services: { web: { id: 'web', params: { port: 80 } } } });
  t.after(() => polod.stop());
  await polod.waitLog(logIs('joined group', { ipv6: TWIN_112, iface: 'eth0' }), `joined ${TWIN_112}`, JOIN_MS);
  const marcod = await startMarcod(v6only, client, { interface: false });
  t.after(() => marcod.proc.stop());

  // One request, one reply (docs/protocol.md §4), from a local client in the namespace.
  const [found] = await rawRequests(client, [json({ Command: 'Request-For', Params: 'web', group: TWIN_112, timeout: 10000, max_nodes: 1 })], { barrier: false });
  assert.deepEqual(found?.reply, [{ Address: await linkLocal(node), Params: { port: 80 } }]);
});
