/**
 * Group joins that fail and succeed later. A polod told to use an interface address that does
 * not exist yet cannot join (ENODEV): it says so, keeps running and retrying, and joins once the
 * address is added, after which another host finds it. And a polod given no interface joins
 * every group by interface address, whatever the routes to the groups.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requireNetns } from '../helpers/netns.js';
import {
  GROUP_112,
  GROUP_113,
  ipIn,
  lanFixture,
  logIs,
  marcoNodes,
  runMarco,
  startPolod,
} from '../helpers/lan-daemons.js';

const fixture = lanFixture({ name: 'join', hosts: 4, subnet: 34 });
const addr = (i: number): string => `10.201.34.${i}`;
/** h1's second address, added to eth0 only after its polod has started. */
const LATE = '10.201.34.101';
const RETRY = 'could not join the group; will retry';
/** The join back-off doubles from 500 ms: allow a few attempts after the address appears. */
const JOIN_WAIT_MS = 20_000;

test('a join that fails with ENODEV is retried, and succeeds once the interface address exists', async (t) => {
  if (!requireNetns(t)) return;
  const lan = await fixture.lan();
  const [server, client] = [lan.host(1), lan.host(2)];
  const polod = await startPolod(fixture, server, {
    interfaces: [LATE],
    waitJoined: false,
    services: { web: { id: 'web', params: { port: 8080 } } },
  });
  t.after(() => polod.stop());

  // Both groups fail to join on the missing address, and polod runs on.
  for (const group of [GROUP_112, GROUP_113]) {
    const failed = await polod.waitLog(logIs(RETRY, { group, iface: LATE }), `${RETRY} in ${group}`);
    assert.match(String(failed['cause']), /ENODEV/);
    assert.equal(failed['level'], 40, 'a failed join is a warning');
  }
  assert.ok(polod.alive(), 'polod keeps running after a failed join');
  const [before] = await Promise.all([
    // Not a member of the group: a query from another host reaches nobody (in a whole second).
    marcoNodes(client, ['discover', '--timeout', '1000']),
    // It retries: a second attempt fails the same way.
    polod.waitLog(logIs(RETRY, { group: GROUP_112, iface: LATE, attempts: 2 }), 'a second failed attempt'),
  ]);
  assert.deepEqual({ code: before.code, nodes: before.nodes }, { code: 1, nodes: [] });
  assert.ok(polod.alive());
  assert.equal(polod.logs(logIs('joined group')).length, 0);

  await lan.addAddress(server, `${LATE}/24`);
  for (const group of [GROUP_112, GROUP_113]) {
    await polod.waitLog(logIs('joined group', { group, iface: LATE }), `joined ${group} on ${LATE}`, JOIN_WAIT_MS);
  }
  assert.ok(polod.alive());

  // The kernel picks the reply's source address: h1's primary one, with h1's params. Each query
  // ends at its first node; the deadline only bounds a failure.
  const [found, web] = await Promise.all([
    marcoNodes(client, ['discover', '--max-nodes', '1', '--timeout', '10000']),
    marcoNodes(client, ['request-for', 'web', '--group', GROUP_113, '--max-nodes', '1', '--timeout', '10000']),
  ]);
  assert.equal(found.code, 0);
  assert.deepEqual(found.nodes, [{ address: addr(1), params: { hostname: 'h1' } }]);
  assert.deepEqual(web.nodes, [{ address: addr(1), params: { port: 8080 } }]);
});

test(
  'Services by unicast reaches a polod whose --interface address appeared after it started',
  async (t) => {
    if (!requireNetns(t)) return;
    const lan = await fixture.lan();
    const [server, client] = [lan.host(3), lan.host(4)];
    const late = '10.201.34.103';
    const polod = await startPolod(fixture, server, {
      interfaces: [late],
      waitJoined: false,
      services: { web: { id: 'web', params: { port: 8080 } } },
    });
    t.after(() => polod.stop());
    // The unicast listener failed at start (the address was missing); the join retries.
    await lan.addAddress(server, `${late}/24`);
    await polod.waitLog(logIs('joined group', { group: GROUP_112, iface: late }), `joined on ${late}`, JOIN_WAIT_MS);
    // Ends at the first reply; resent every 500 ms until then, up to a deadline that only bounds a failure.
    const services = await runMarco(client, ['services', late, '--timeout', '10000', '--retries', '19', '--json']);
    assert.equal(services.code, 0, `no Services reply from ${late}: ${services.stderr}`);
    assert.deepEqual(services.json, { address: late, services: [{ id: 'web', params: { port: 8080 } }] });
  },
);

test('without --interface, groups are joined by interface address, so a group with no route still joins', async (t) => {
  if (!requireNetns(t)) return;
  const lan = await fixture.lan();
  const [server, client] = [lan.host(2), lan.host(1)];
  // The system's choice of interface would follow the route to each group address (and fail
  // with ENODEV for 224.0.0.113 here, the LAN having no default route); polod joins every
  // multicast interface by its address instead (docs/operations.md, "Networking"), so neither
  // group depends on a route. Namespaces hold nothing but lo and the LAN's eth0 either way.
  await ipIn(server, ['route', 'del', '224.0.0.0/4', 'dev', server.iface]);
  await ipIn(server, ['route', 'add', `${GROUP_112}/32`, 'dev', server.iface]);
  const polod = await startPolod(fixture, server, {
    groups: [GROUP_112, GROUP_113],
    interfaces: [],
    waitJoined: false,
    services: { web: { id: 'web', params: { port: 8080 } } },
  });
  t.after(() => polod.stop());
  for (const group of [GROUP_112, GROUP_113]) {
    await polod.waitLog(logIs('joined group', { group, iface: server.address }), `joined ${group} on eth0`);
  }
  assert.equal(polod.logs(logIs(RETRY)).length, 0);
  const [in112, web113] = await Promise.all([
    marcoNodes(client, ['discover', '--group', GROUP_112, '--timeout', '10000', '--max-nodes', '1']),
    marcoNodes(client, ['request-for', 'web', '--group', GROUP_113, '--timeout', '10000', '--max-nodes', '1']),
  ]);
  assert.deepEqual(in112.nodes, [{ address: server.address, params: { hostname: 'h2' } }]);
  assert.deepEqual(web113.nodes, [{ address: server.address, params: { port: 8080 } }]);
});
