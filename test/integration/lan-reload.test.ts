/**
 * Reload while queries run: h2 runs a client loop of Request-For `web` (one query after another,
 * bounded count) while the service files of h1's polod change and SIGUSR1, then SIGHUP, are sent
 * again and again. The unchanged service is answered by every single query; a new service is
 * answered after the reload that read it; a file switched to "disabled": true, or removed, is
 * no longer answered. h3 checks each reload with the marco command.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { pathToFileURL } from 'node:url';
import { requireNetns } from '../helpers/netns.js';
import { GROUP_112, lanFixture, logIs, marcoNodes, POLOD, startPolod } from '../helpers/lan-daemons.js';
import { waitFor } from '../helpers/wait.js';

const fixture = lanFixture({ name: 'reload', hosts: 3, subnet: 33 });
const addr = (i: number): string => `10.201.33.${i}`;

const WEB = { port: 8080, path: '/index' };
/** Filler files, so that every reload reads enough to take a while. */
const FILLERS = 100;
const CYCLES = 8;
/** The loop's cap: it normally stops long before, when told to. */
const MAX_QUERIES = 100_000;

/** The library's Marco, built next to polod (src/discovery/ beside src/cli/). */
const MARCO_LIB = pathToFileURL(path.resolve(path.dirname(POLOD), '..', 'discovery', 'marco.js')).href;

/**
 * Request-For argv[2] from address argv[1], one query after the other (a timer tick apart, to
 * leave some CPU to the rest), until stdin ends or after argv[3] queries. One line per query:
 * when it was sent and done (ms since the epoch, like pino's `time`) and the nodes that answered
 * (maxNodes 1, 5 s deadline, no retries, so an unanswered query shows as []).
 */
const LOOP = `
const { Marco } = await import(${JSON.stringify(MARCO_LIB)});
const [local, service, max] = process.argv.slice(1);
const marco = new Marco({ interface: local, group: '${GROUP_112}', timeout: 5000, maxNodes: 1 });
let stop = false;
process.stdin.on('data', () => {});
process.stdin.on('end', () => { stop = true; });
for (let i = 0; i < Number(max) && !stop; i++) {
  const sent = Date.now();
  const nodes = await marco.requestFor(service);
  const done = Date.now();
  console.log(JSON.stringify({ sent, done, nodes: nodes.map((n) => ({ address: n.address, params: n.params })) }));
  await new Promise((resolve) => setTimeout(resolve, 1));
}
console.log('end');
`;

test('a reload never leaves an unchanged service unanswered; new, disabled and removed files take effect', async (t) => {
  if (!requireNetns(t)) return;
  const lan = await fixture.lan();
  const [server, looper, checker] = [lan.host(1), lan.host(2), lan.host(3)];
  const services: Record<string, unknown> = {
    web: { id: 'web', params: WEB },
    old: { id: 'old', params: { v: 1 } },
  };
  for (let k = 0; k < FILLERS; k++) services[`fill-${k}`] = { id: `fill${k}`, params: { k } };
  // The loop asks as fast as it is answered, several hundred queries a second from one address:
  // about the per-source reply budget (src/responder/rateLimit.ts), which this test is not about.
  const config = '[polo]\nreply_burst_per_source = 1000000000\nreply_rate_per_source = 1000000000\n';
  const polod = await startPolod(fixture, server, { groups: [GROUP_112], services, config });

  const loop = looper.spawn([process.execPath, '--input-type=module', '-e', LOOP, looper.address, 'web', String(MAX_QUERIES)]);
  t.after(() => loop.stop());
  const answers = (): string[] => loop.lines().filter((l) => l !== 'end');
  /** Waits until the loop has completed `n` more queries than it had at the call. */
  const moreQueries = async (n: number, what: string): Promise<void> => {
    const target = answers().length + n;
    await waitFor(() => answers().length >= target, { what: `${n} more loop queries ${what}`, timeoutMs: 10_000 });
  };
  await moreQueries(3, 'before the first reload');

  /** Request-For from h3, expected answered by h1 with `params`, or (params undefined) by nobody. */
  const check = async (service: string, params: Record<string, unknown> | undefined): Promise<void> => {
    const args = ['request-for', service, '--group', GROUP_112];
    if (params === undefined) {
      const { code, nodes } = await marcoNodes(checker, [...args, '--timeout', '1000']);
      assert.deepEqual({ service, code, nodes }, { service, code: 1, nodes: [] });
    } else {
      const { code, nodes } = await marcoNodes(checker, [...args, '--timeout', '10000', '--max-nodes', '1']);
      assert.deepEqual({ service, code, nodes }, { service, code: 0, nodes: [{ address: addr(1), params }] });
    }
  };

  for (let c = 0; c < CYCLES; c++) {
    if (c === 0) await polod.writeService('new', { id: 'new', params: { fresh: true } });
    if (c === 1) await polod.writeService('old', { id: 'old', params: { v: 1 }, disabled: true });
    // The unchanged service's file is replaced by an identical one (as config tools do).
    if (c % 2 === 1) await polod.writeService('web', { id: 'web', params: WEB });
    await polod.writeService(`churn-${c}`, { id: `churn${c}`, params: { c } });
    if (c > 0) await polod.removeService(`churn-${c - 1}`);

    const signal = c < CYCLES / 2 ? 'SIGUSR1' : 'SIGHUP';
    const reloaded = await polod.reload(signal);
    const counts = reloaded['services'] as Record<string, number>;
    // web, the fillers, new, this cycle's churn, and old until it is disabled in cycle 1.
    assert.equal(counts[GROUP_112], FILLERS + (c === 0 ? 4 : 3), `services offered after reload ${c} (${signal})`);
    await check(`churn${c}`, { c });
    if (c === 0) await check('new', { fresh: true });
    if (c === 1) await check('old', undefined);
    await moreQueries(3, `after reload ${c} (${signal})`);
  }

  await Promise.all([check('old', undefined), check(`churn${CYCLES - 2}`, undefined), check('new', { fresh: true })]);

  loop.child.stdin?.end();
  const exit = await loop.exited;
  assert.equal(exit.code, 0, loop.stderr);
  assert.equal(loop.lines().at(-1), 'end');
  const results = answers().map((l) => JSON.parse(l) as { sent: number; done: number; nodes: unknown });
  assert.ok(results.length >= 3 * (CYCLES + 1), `the loop ran ${results.length} queries`);
  assert.ok(results.length < MAX_QUERIES, 'the loop ran until told to stop, through every reload');
  const expected = [{ address: addr(1), params: WEB }];
  const gaps = results.map((r, i) => ({ i, nodes: r.nodes })).filter((r) => !isDeepStrictEqual(r.nodes, expected));
  assert.deepEqual(gaps, [], `every one of the ${results.length} queries for web was answered`);

  // The loop really ran through the reloads: queries were in flight while polod re-read files.
  const starts = polod.logs(logIs('reloading services')).map((r) => Number(r['time']));
  const ends = polod.logs(logIs('services reloaded')).map((r) => Number(r['time']));
  assert.equal(ends.length, CYCLES);
  assert.equal(starts.length, CYCLES);
  const during = results.filter((q) => starts.some((s, k) => q.done >= s && q.sent <= (ends[k] ?? 0))).length;
  assert.ok(during > 0, `no query overlapped any of the ${CYCLES} reloads (of ${results.length} queries)`);
  assert.equal(polod.logs(logIs('reload failed')).length, 0);
});
