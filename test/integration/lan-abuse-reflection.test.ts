/**
 * No reflection, no amplification (src/responder/guard.ts, docs/protocol.md §7): h1's polod
 * (default scope `on-link`) ignores a unicast query from an address off its link; h3's polod
 * (`--unicast-scope any`) answers it only with a reply no larger than the query, so an off-link
 * client must pad its query; and a burst of thousands of queries from one source, unicast and
 * multicast, of every type, gets back fewer bytes than it sent (reply budgets set small here, so
 * the bound holds whatever the machine's speed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requireNetns } from '../helpers/netns.js';
import { GROUP_112, lanFixture, logIs, runMarco, startPolod } from '../helpers/lan-daemons.js';
import { sendDatagrams } from '../helpers/udp-tools.js';

const fixture = lanFixture({ name: 'abuser', hosts: 3, subnet: 42 });
const addr = (i: number): string => `10.201.42.${i}`;
/** An address of h2 on no network of h1 or h3 (they get a route to it, not an address). */
const OFF_LINK = '10.201.99.2';
const SERVICES = Object.fromEntries(Array.from({ length: 10 }, (_, k) => [`svc${k}`, { id: `svc${k}`, params: { port: 8000 + k, path: `/service/${k}` } }]));
const SERVICES_QUERY = '{"Command": "Services"}';
const LIMITS = '[polo]\nreply_burst_per_source = 4096\nreply_rate_per_source = 1024\n';

test('unicast from off-link is ignored by default, and answered no larger than the query with scope any', async (t) => {
  if (!requireNetns(t)) return;
  const lan = await fixture.lan();
  const [h1, h2, h3] = [lan.host(1), lan.host(2), lan.host(3)];
  await lan.addAddress(h2, `${OFF_LINK}/24`);
  for (const h of [h1, h3]) await h.run(['ip', 'route', 'add', '10.201.99.0/24', 'dev', h.iface]);
  const [strict, open] = await Promise.all([
    startPolod(fixture, h1, { groups: [GROUP_112], services: SERVICES, logLevel: 'debug' }),
    startPolod(fixture, h3, { groups: [GROUP_112], services: SERVICES, config: '[polo]\nunicast_scope = any\n' }),
  ]);

  // On-link: a reference-style unicast Services query is answered in full by both.
  for (const i of [1, 3]) {
    const run = await runMarco(h2, ['services', addr(i), '--timeout', '3000', '--json']);
    assert.equal((run.json as { services: unknown[] }).services.length, 10, `services of h${i} from on-link`);
  }

  // Off-link to h1: ignored (the debug line says so), nothing comes back.
  const toStrict = await sendDatagrams(h2, { local: OFF_LINK, targets: [addr(1)], payloads: [SERVICES_QUERY, '{"Command": "Marco"}'], count: 4 });
  await strict.waitLog(logIs('unicast query from off-link source ignored', { from: OFF_LINK }), 'the off-link query ignored');
  assert.equal(toStrict.replies, 0);

  // Off-link to h3 (scope any): small queries get nothing (their replies are larger); padded
  // ones are answered, each reply no larger than its query. The padded ones go last, so their
  // replies arriving means the earlier queries were handled.
  const pad = (query: string, size: number): string => `${query.slice(0, -1)}, "Pad": "${'x'.repeat(size)}"}`;
  const toOpen = await sendDatagrams(h2, {
    local: OFF_LINK,
    targets: [addr(3)],
    payloads: [SERVICES_QUERY, '{"Command": "Marco"}', pad(SERVICES_QUERY, 1500), pad('{"Command": "Marco"}', 100)],
    count: 4,
  });
  assert.equal(toOpen.replies, 2, 'only the padded queries are answered');
  assert.ok(toOpen.bytesReceived <= toOpen.bytesSent, `${toOpen.bytesReceived} bytes back for ${toOpen.bytesSent}`);
  assert.ok(open.alive() && strict.alive());
  await Promise.all([strict.stop(), open.stop()]);
});

test('a burst of thousands of queries from one source gets back fewer bytes than it sent', async (t) => {
  if (!requireNetns(t)) return;
  const lan = await fixture.lan();
  const [h1, h2, h3] = [lan.host(1), lan.host(2), lan.host(3)];
  const polods = await Promise.all([h1, h3].map((h) => startPolod(fixture, h, { groups: ['224.0.0.114'], services: SERVICES, config: LIMITS })));
  const queries = [
    ['unicast Services', [addr(1)], SERVICES_QUERY],
    ['unicast Marco', [addr(1)], '{"Command": "Marco"}'],
    ['unicast Request-For', [addr(1)], '{"Command": "Request-For", "Params": "svc3"}'],
    ['multicast Services', ['224.0.0.114'], SERVICES_QUERY],
    ['multicast Marco', ['224.0.0.114'], '{"Command": "Marco"}'],
    ['multicast Request-For', ['224.0.0.114'], '{"Command": "Request-For", "Params": "svc3"}'],
  ] as const;
  for (const [what, targets, payload] of queries) {
    const r = await sendDatagrams(h2, { local: addr(2), targets, payloads: [payload], count: 3000 });
    assert.ok(r.replies > 0, `${what}: the first queries are answered`);
    assert.ok(r.bytesReceived < r.bytesSent, `${what}: ${r.bytesReceived} bytes back for ${r.bytesSent} sent`);
  }
  assert.ok(polods.every((p) => p.alive()));
});
