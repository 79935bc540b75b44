/**
 * Storms (docs/protocol.md §7): a real LAN of hundreds of nodes answers a Marco query in one
 * tight burst, which this 2-core machine cannot make with real polods (they answer one after the
 * other). A stand-in host models it: 500 addresses, one socket each, a Polo reply from every one
 * back to back. `marco discover --max-nodes 500` must keep ≥ 99.9 % of them (its receive buffer
 * is sized for the grid). A polod told it serves a large grid (`grid_size`) spreads its replies
 * to multicast queries over a short random delay; one serving a small grid answers at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requireNetns } from '../helpers/netns.js';
import { GROUP_112, lanFixture, logIs, marcoNodes, startPolod } from '../helpers/lan-daemons.js';
import { startStormStandIn } from '../helpers/udp-tools.js';

const fixture = lanFixture({ name: 'storm', hosts: 3, subnet: 44 });
const addr = (i: number): string => `10.201.44.${i}`;
/** The stand-in's addresses: two /24 networks the client reaches through a route. */
const NODES = Array.from({ length: 500 }, (_, k) => `10.201.${45 + Math.floor(k / 250)}.${(k % 250) + 1}`);
const ROUNDS = 3;

test('marco discover keeps a burst of 500 replies from 500 addresses', async (t) => {
  if (!requireNetns(t)) return;
  const lan = await fixture.lan();
  const [grid, client] = [lan.host(1), lan.host(2)];
  const batch = NODES.map((a) => `address add ${a}/24 dev ${grid.iface}`).join('\n');
  const added = await grid.run(['ip', '-batch', '-'], { input: `${batch}\n`, timeoutMs: 30_000 });
  assert.equal(added.code, 0, added.stderr);
  for (const net of ['10.201.45.0/24', '10.201.46.0/24']) {
    const r = await client.run(['ip', 'route', 'add', net, 'dev', client.iface]);
    assert.equal(r.code, 0, r.stderr);
  }
  const standIn = await startStormStandIn(grid, { addresses: NODES, group: GROUP_112, iface: addr(1) });
  try {
    let kept = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const { nodes } = await marcoNodes(client, ['discover', '--group', GROUP_112, '--max-nodes', String(NODES.length), '--timeout', '5000']);
      kept += nodes.length;
      t.diagnostic(`round ${round + 1}: ${nodes.length} of ${NODES.length}`);
    }
    assert.ok(standIn.bursts() >= ROUNDS);
    assert.ok(kept >= ROUNDS * NODES.length * 0.999, `${kept} of ${ROUNDS * NODES.length} replies kept`);
  } finally {
    await standIn.stop();
  }
});

test('a polod of a large grid spreads its replies to multicast queries; a small grid answers at once', async (t) => {
  if (!requireNetns(t)) return;
  const lan = await fixture.lan();
  const [client, node] = [lan.host(2), lan.host(3)];
  const large = await startPolod(fixture, node, { groups: [GROUP_112], config: '[polo]\ngrid_size = 500\n' });
  assert.equal(large.logs(logIs('polod started'))[0]?.['replySpreadMs'], 250);
  for (let k = 0; k < 3; k++) {
    const { nodes } = await marcoNodes(client, ['discover', '--group', GROUP_112, '--max-nodes', '1', '--timeout', '5000']);
    assert.deepEqual(nodes, [{ address: addr(3), params: { hostname: 'h3' } }], 'the spread reply arrives');
  }
  await large.stop();
  const small = await startPolod(fixture, node, { groups: [GROUP_112] });
  assert.equal(small.logs(logIs('polod started'))[0]?.['replySpreadMs'], 0);
  await small.stop();
});
