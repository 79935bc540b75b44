/**
 * The Providers hint across namespaces (docs/protocol.md §8.4): real polods add to their OK reply
 * to a Request-For how many nodes of the link offer the service, so `marco request-for` without
 * --max-nodes ends once every provider answered, not at its deadline. Where a reference node
 * (test/helpers/reference-polod.ts: it answers, never announces) might offer the service unseen,
 * no polod gives the hint and the query runs to its deadline, reference provider included.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireNetns, type LanHost } from '../helpers/netns.js';
import { GROUP_112, lanFixture, logIs, marcoNodes, startPolod, type Polod } from '../helpers/lan-daemons.js';
import { groupReplies } from '../helpers/udp-tools.js';
import { waitFor } from '../helpers/wait.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const REFERENCE = path.resolve(here, '..', 'helpers', 'reference-polod.js');
const fixture = lanFixture({ name: 'prov', hosts: 5, subnet: 48 });
const addr = (i: number): string => `10.201.48.${i}`;
/** A failure deadline for the views to converge, not a measurement. */
const CONVERGE_MS = 20_000;

/** The replies to one Request-For of `service` sent to the group from `host`: `expect` of them, or fewer after 3 s. */
function okReplies(host: LanHost, service: string, expect: number): Promise<string[]> {
  const payload = JSON.stringify({ Command: 'Request-For', Params: service });
  // A short window after the expected replies: one more would show.
  return groupReplies(host, { local: host.address, to: GROUP_112, payload, expect, windowMs: 300, limitMs: 3000 });
}

test('Request-For ends once every provider answered, and runs to its deadline where a reference node may provide', async (t) => {
  if (!requireNetns(t)) return;
  const lan = await fixture.lan();
  const polods: Polod[] = [];
  for (const i of [1, 2, 3]) {
    const services = i === 3 ? { ftp: { id: 'ftp', params: { port: 21 } } } : { web: { id: 'web', params: { port: 8000 + i } } };
    const polod = await startPolod(fixture, lan.host(i), { groups: [GROUP_112], logLevel: 'debug', services });
    t.after(() => polod.stop());
    polods.push(polod);
  }
  const asker = lan.host(5);

  // Once the views hold each other's announcements, both providers of web say there are two.
  await waitFor(
    async () => {
      const replies = await okReplies(asker, 'web', 2);
      return replies.length === 2 && replies.every((r) => r.endsWith(',"Providers":2}'));
    },
    { what: 'both providers of web to count two', timeoutMs: CONVERGE_MS, intervalMs: 200 },
  );
  // A deadline far beyond marco's own kill timeout (15 s): only the Providers hint ends these.
  const web = await marcoNodes(asker, ['request-for', 'web', '--timeout', '600000']);
  assert.equal(web.code, 0);
  assert.deepEqual(web.nodes.map((n) => [n.address, n.params['port']]), [[addr(1), 8001], [addr(2), 8002]]);
  const ftp = await marcoNodes(asker, ['request-for', 'ftp', '--timeout', '600000']);
  assert.deepEqual(ftp.nodes.map((n) => n.address), [addr(3)]);

  // A reference node joins and offers web: once the polods know it, none gives the hint.
  const reference = lan.host(4).spawn([
    process.execPath, REFERENCE, '--group', GROUP_112, '--interface', addr(4),
    '--params', JSON.stringify({ hostname: 'ref' }), '--service', 'web={"port": 8004}',
  ]);
  t.after(() => reference.stop());
  await reference.waitForLine((l) => l === 'ready', 'the reference stand-in to join', 20_000);
  for (const p of polods) await p.waitLog(logIs('membership', { event: 'up', address: addr(4), kind: 'reference' }), 'the reference node', CONVERGE_MS);
  const replies = await okReplies(asker, 'web', 3);
  assert.equal(replies.length, 3, replies.join('\n'));
  for (const r of replies) assert.doesNotMatch(r, /Providers/);
  // So the query runs to its deadline and the reference provider is in.
  const all = await marcoNodes(asker, ['request-for', 'web', '--timeout', '1500']);
  assert.deepEqual(all.nodes.map((n) => n.address), [addr(1), addr(2), addr(4)]);
});
