/**
 * Live discovery with the real commands across namespaces: polods announce themselves and keep a
 * membership view that includes a reference-like polod (test/helpers/reference-polod.ts: it
 * answers queries, never announces, ignores unknown commands); `marco discover` without
 * --max-nodes ends once every member answered; `marco watch` follows nodes and services, sees a
 * goodbye and the expiry of a SIGKILLed node, and ends with exit 0 on Ctrl-C.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireNetns, type LanHost } from '../helpers/netns.js';
import { GROUP_112, lanFixture, logIs, MARCO, marcoNodes, startPolod, waitWatchEvent, watchEvents, type Polod } from '../helpers/lan-daemons.js';
import type { Proc } from '../helpers/proc.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const REFERENCE = path.resolve(here, '..', 'helpers', 'reference-polod.js');
const fixture = lanFixture({ name: 'live', hosts: 5, subnet: 37 });
const addr = (i: number): string => `10.201.37.${i}`;
/** Failure deadlines, not measurements: the documented bounds (5 s, 10 s) plus slack for a loaded machine. */
const FIND_REFERENCE_MS = 15_000;
const EXPIRY_MS = 20_000;

function startReference(host: LanHost): Promise<Proc> {
  const proc = host.spawn([
    process.execPath, REFERENCE, '--group', GROUP_112, '--interface', host.address,
    '--params', JSON.stringify({ hostname: 'ref' }), '--service', 'web={"port": 8000}',
  ]);
  return proc.waitForLine((l) => l === 'ready', 'the reference stand-in to join', 20_000).then(() => proc);
}

function startWatch(host: LanHost, extra: readonly string[] = []): Proc {
  return host.spawn([process.execPath, MARCO, 'watch', '--json', '--interface', host.address, ...extra]);
}

test('a mixed grid: views, early-ending discovery, watches of nodes and services, goodbye and expiry', async (t) => {
  if (!requireNetns(t)) return;
  const lan = await fixture.lan();
  const reference = await startReference(lan.host(4));
  t.after(() => reference.stop());
  const polods: Polod[] = [];
  for (const i of [1, 2, 3]) {
    const polod = await startPolod(fixture, lan.host(i), {
      groups: [GROUP_112],
      logLevel: 'debug',
      services: i === 1 ? { web: { id: 'web', params: { port: 8001 } } } : {},
    });
    t.after(() => polod.stop());
    polods.push(polod);
  }
  const [p1, p2, p3] = polods as [Polod, Polod, Polod];

  // Every polod's view: the other two from their announcements, the reference node by query.
  for (const p of polods) {
    for (const i of [1, 2, 3].filter((j) => addr(j) !== p.host.address)) {
      await p.waitLog(logIs('membership', { event: 'up', address: addr(i), kind: 'announcing' }), `${addr(i)} in the view`);
    }
    await p.waitLog(logIs('membership', { event: 'up', address: addr(4), kind: 'reference' }), 'the reference node', FIND_REFERENCE_MS);
  }
  // The reference stand-in received the announcements and ignored them, answering nothing.
  await reference.waitForLine((l) => l.includes('"command":"Announce"'), 'an ignored Announce', 10_000, 'stderr');

  // A deadline far beyond marco's own kill timeout (15 s): only the Members hint ends this query.
  const found = await marcoNodes(lan.host(5), ['discover', '--timeout', '600000']);
  assert.equal(found.code, 0);
  assert.deepEqual(found.nodes.map((n) => [n.address, n.params['hostname']]), [
    [addr(1), 'h1'], [addr(2), 'h2'], [addr(3), 'h3'], [addr(4), 'ref'],
  ]);

  // Watches on a host with no polod: the current state first.
  const nodes = startWatch(lan.host(5));
  const web = startWatch(lan.host(5), ['--service', 'web']);
  t.after(() => nodes.stop());
  t.after(() => web.stop());
  for (const i of [1, 2, 3, 4]) await waitWatchEvent(nodes, 'up', addr(i));
  await waitWatchEvent(web, 'up', addr(1));
  await waitWatchEvent(web, 'up', addr(4));
  assert.deepEqual(watchEvents(web).find((e) => e.address === addr(1))?.params, { port: 8001 });

  // h2 gets web (a file and a reload): announced at once, seen by the service watch.
  await p2.writeService('web', { id: 'web', params: { port: 8002 } });
  await p2.reload();
  await waitWatchEvent(web, 'up', addr(2));
  // h1 changes its params of web: an update.
  await p1.writeService('web', { id: 'web', params: { port: 9001 } });
  await p1.reload();
  await waitWatchEvent(web, 'update', addr(1));
  assert.deepEqual(watchEvents(web).filter((e) => e.event === 'update').map((e) => e.params), [{ port: 9001 }]);
  // h2 withdraws it.
  await p2.removeService('web');
  await p2.reload();
  await waitWatchEvent(web, 'down', addr(2), { reason: 'unpublished' });

  // A graceful stop is a goodbye: every view drops the node.
  await p3.stop();
  await waitWatchEvent(nodes, 'down', addr(3), { reason: 'goodbye' });
  await p1.waitLog(logIs('membership', { event: 'down', address: addr(3) }), 'h3 leaving the view of h1');
  // A SIGKILLed node says nothing: it expires.
  p2.proc.kill('SIGKILL');
  await waitWatchEvent(nodes, 'down', addr(2), { reason: 'expired', timeoutMs: EXPIRY_MS });
  await p1.waitLog(logIs('membership', { event: 'down', address: addr(2) }), 'h2 expiring in the view of h1', EXPIRY_MS);

  // The readable form, and Ctrl-C ends a watch with exit 0.
  const readable = lan.host(5).spawn([process.execPath, MARCO, 'watch', '--interface', addr(5)]);
  await readable.waitForLine((l) => / up +10\.201\.37\.1 hostname=h1$/.test(l), 'a readable up line');
  for (const w of [readable, nodes]) {
    w.kill('SIGINT');
    assert.deepEqual(await w.exited, { code: 0, signal: null });
  }
  assert.deepEqual(watchEvents(nodes).filter((e) => e.address === addr(4)).map((e) => e.event), ['up'], 'the reference node stays');
});
