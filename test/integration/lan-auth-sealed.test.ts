/**
 * Sealed params across namespaces (docs/protocol.md §2.4, policy `sealed`): h1 runs polod with
 * `--auth sealed`. A key holder on h2 reads the node params and a service's params through
 * `marco discover`, `request-for`, `services` and `marco watch`, all verified; on the wire a reply
 * to a signed query carries the params sealed, not in clear; an eavesdropper's `marco watch` on
 * h3 (no key) sees only sealed values in the announcements.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { signDatagram } from '../../src/auth/gridAuth.js';
import { requireNetns, type LanHost } from '../helpers/netns.js';
import { GROUP_112, gridKeyFile, lanFixture, MARCO, marcoNodes, runMarco, startPolod, waitWatchEvent, type WatchLine } from '../helpers/lan-daemons.js';
import { groupReplies } from '../helpers/udp-tools.js';

const fixture = lanFixture({ name: 'k10seal', hosts: 3, subnet: 201 });
const addr = (i: number): string => `10.201.201.${i}`;

/** The first reply's text to `payload` sent to the group from `host` (empty after 3 s). */
async function rawReply(host: LanHost, payload: Buffer): Promise<string> {
  const replies = await groupReplies(host, { local: host.address, to: GROUP_112, payload: payload.toString('latin1'), expect: 1, limitMs: 3000 });
  return replies[0] ?? '';
}

test('sealed params: key holders read them, verified; the wire and an eavesdropper see them sealed', async (t) => {
  if (!requireNetns(t)) return;
  const lan = await fixture.lan();
  const [h1, h2, h3] = [lan.host(1), lan.host(2), lan.host(3)];
  const { file, key } = await gridKeyFile(fixture, 'grid.key', 0x5e);
  const polod = await startPolod(fixture, h1, { groups: [GROUP_112], services: { web: { id: 'web', params: { port: 8080 } } }, extraArgs: ['--key', file, '--auth', 'sealed'] });
  t.after(() => polod.stop());
  const eavesdropper = h3.spawn([process.execPath, MARCO, 'watch', '--json', '--interface', h3.address]);
  t.after(() => eavesdropper.stop());
  const watcher = h2.spawn([process.execPath, MARCO, 'watch', '--json', '--interface', h2.address, '--key', file]);
  t.after(() => watcher.stop());

  const discover = await marcoNodes(h2, ['discover', '--group', GROUP_112, '--timeout', '1500', '--key', file]);
  assert.deepEqual(discover.nodes, [{ address: addr(1), params: { hostname: 'h1' }, verified: true }]);
  const web = await marcoNodes(h2, ['request-for', 'web', '--group', GROUP_112, '--timeout', '1500', '--key', file]);
  assert.deepEqual(web.nodes, [{ address: addr(1), params: { port: 8080 }, verified: true }]);
  const services = await runMarco(h2, ['services', addr(1), '--key', file, '--timeout', '3000', '--json']);
  assert.deepEqual(services.json, { address: addr(1), services: [{ id: 'web', params: { port: 8080 } }], verified: true });

  // On the wire: the reply to a signed Request-For holds the params sealed under the grid key.
  const reply = await rawReply(h2, signDatagram(Buffer.from('{"Command":"Request-For","Params":"web"}'), key).bytes);
  assert.match(reply, new RegExp(`^\\{"Command":"OK","Params":\\{"Sealed":"[A-Za-z0-9_-]+","k":"${key.id}"\\},("Providers":1,)?"Auth":`), reply);
  assert.ok(!reply.includes('8080'), reply);

  // Announcements: opened for the key holder, sealed for the eavesdropper.
  const seen = JSON.parse(await waitWatchEvent(watcher, 'up', addr(1), { timeoutMs: 20_000 })) as WatchLine;
  assert.deepEqual(seen.params, { hostname: 'h1' });
  assert.equal(seen.verified, true);
  const overheard = JSON.parse(await waitWatchEvent(eavesdropper, 'up', addr(1), { timeoutMs: 20_000 })) as WatchLine;
  assert.deepEqual(Object.keys(overheard.params).sort(), ['Sealed', 'k']);
  assert.ok(!JSON.stringify(overheard).includes('h1"'), JSON.stringify(overheard));
});
