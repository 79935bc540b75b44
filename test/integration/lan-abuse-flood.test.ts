/**
 * Floods do not starve legitimate users (src/responder/guard.ts): while h2 floods h1's polod,
 * h3's queries, sent one at a time, are still answered (≥ 99 %), and polod's memory stays
 * bounded. Two floods: valid and malformed queries to the group as fast as the sender goes, and
 * Services queries by unicast at about 100/s to a polod offering 200 services with large params.
 * The floods are bounded in count and end when h3's queries are done.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requireNetns } from '../helpers/netns.js';
import { GROUP_112, lanFixture, startPolod, type Polod } from '../helpers/lan-daemons.js';
import { probe, startFlood } from '../helpers/udp-tools.js';
import { memoryOf } from '../../bench/lib/procfs.js';

const fixture = lanFixture({ name: 'abusef', hosts: 3, subnet: 43 });
const addr = (i: number): string => `10.201.43.${i}`;
const WEB = { port: 8080 };
/** h3's queries per scenario, and how long one waits for its answer (a failure deadline). */
const PROBES = 300;
const WAIT_MS = 2000;
/** Most memory polod may grow by during a flood (its idle RSS is about 60 MB). */
const MAX_GROWTH_KIB = 48 * 1024;

/** 200 services whose params are about 3.9 KB each. */
const BIG_SERVICES = Object.fromEntries(
  Array.from({ length: 200 }, (_, k) => [`big${k}`, { id: `big${k}`, params: { port: 9000 + k, blob: 'p'.repeat(3850) } }]),
);

/** polod's resident memory now and at its peak (bench/lib/procfs.ts). */
const memoryKiB = (polod: Polod): { rss: number; hwm: number } => {
  const m = memoryOf(polod.proc.child.pid as number);
  return { rss: m.rssKiB, hwm: m.hwmKiB };
};

/**
 * h3's queries: Request-For and Marco to the group, and one Services by unicast in ten (a
 * Services reply is up to 4 KB: a client asking for one several times a second would pass its
 * own reply budget, docs/operations.md "Abuse limits").
 */
const LEGIT = [
  ...Array.from({ length: 9 }, (_, k) =>
    k % 2 === 0 ? { to: GROUP_112, payload: '{"Command": "Request-For", "Params": "web"}' } : { to: GROUP_112, payload: '{"Command": "Marco"}' },
  ),
  { to: addr(1), payload: '{"Command": "Services"}' },
];

test('a full-speed flood of valid and malformed queries to the group leaves a second host answered', async (t) => {
  if (!requireNetns(t)) return;
  const lan = await fixture.lan();
  const [server, attacker, client] = [lan.host(1), lan.host(2), lan.host(3)];
  const polod = await startPolod(fixture, server, { groups: [GROUP_112], services: { web: { id: 'web', params: WEB } } });
  t.after(() => polod.stop());
  const before = memoryKiB(polod);
  const flood = startFlood(attacker, {
    local: addr(2),
    targets: [GROUP_112, addr(1)],
    payloads: [
      '{"Command": "Marco"}',
      '{"Command": "Request-For", "Params": "web"}',
      '{"Command": "Services"}',
      '{"Command": "Marco"',
      'not json',
      '{"Command": "Nope"}',
      `{"Command": "Marco", "pad": "${'x'.repeat(3000)}"}`,
      '['.repeat(2000),
    ],
    count: 2_000_000,
    batch: 64,
    quietMs: 100,
  });
  // The legitimate queries start once the flood is under way.
  await flood.sent(4096);
  const result = await probe(client, { local: addr(3), queries: LEGIT, count: PROBES, waitMs: WAIT_MS });
  const sent = await flood.stop();
  const after = memoryKiB(polod);
  t.diagnostic(JSON.stringify({ result, flood: sent, before, after }));
  assert.ok(sent.bytesReceived < sent.bytesSent, `the flooder got ${sent.bytesReceived} bytes back for ${sent.bytesSent}`);
  assert.ok(result.answered >= PROBES * 0.99, `${result.answered} of ${result.sent} legitimate queries answered`);
  assert.ok(after.hwm - before.rss <= MAX_GROWTH_KIB, `polod grew from ${before.rss} to a peak of ${after.hwm} kB`);
  assert.ok(polod.alive());
});

test('Services queries at 100/s to a polod with 200 large services leave a second host answered', async (t) => {
  if (!requireNetns(t)) return;
  const lan = await fixture.lan();
  const [server, attacker, client] = [lan.host(1), lan.host(2), lan.host(3)];
  const polod = await startPolod(fixture, server, { groups: [GROUP_112], services: { web: { id: 'web', params: WEB }, ...BIG_SERVICES } });
  t.after(() => polod.stop());
  const before = memoryKiB(polod);
  const flood = startFlood(attacker, {
    local: addr(2),
    targets: [addr(1)],
    payloads: ['{"Command": "Services"}'],
    count: 100_000,
    batch: 1,
    intervalMs: 10,
    quietMs: 100,
  });
  await flood.sent(1);
  const result = await probe(client, { local: addr(3), queries: LEGIT, count: PROBES, waitMs: WAIT_MS, intervalMs: 10 });
  const sent = await flood.stop();
  const after = memoryKiB(polod);
  t.diagnostic(JSON.stringify({ result, flood: sent, before, after }));
  assert.ok(sent.sent >= PROBES / 4, `the flood sent ${sent.sent} queries`);
  assert.ok(sent.replies > 0, 'the Services queries were answered within the budget');
  assert.ok(result.answered >= PROBES * 0.99, `${result.answered} of ${result.sent} legitimate queries answered`);
  assert.ok(after.hwm - before.rss <= MAX_GROWTH_KIB, `polod grew from ${before.rss} to a peak of ${after.hwm} kB`);
  assert.ok(polod.alive());
});
