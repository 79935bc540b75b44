/**
 * Prometheus metrics of the real daemons across namespaces: polod (metrics from its polo.cfg) and
 * marcod (`--metrics`) serve /metrics on their namespace's 127.0.0.1; after real queries (marco,
 * a malformed datagram, publish API requests, marcod requests) the counters have moved, the grid gauges
 * show the members, and `promtool check metrics` (Debian's prometheus package, installed by
 * scripts/install-test-deps.sh) accepts every scrape.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { requireNetns, type LanHost } from '../helpers/netns.js';
import { GROUP_112, lanFixture, marcoNodes, startPolod } from '../helpers/lan-daemons.js';
import { json, MARCOD, rawRequests, startMarcod } from '../helpers/marcod-lan.js';
import { runProc } from '../helpers/proc.js';
import { ReplyLineClient } from '../helpers/reply-lines.js';
import { waitFor } from '../helpers/wait.js';

const fixture = lanFixture({ name: 'metr', hosts: 3, subnet: 121 });
const POLOD_METRICS = '127.0.0.1:9464';
const MARCOD_METRICS = '127.0.0.1:9465';

/** GETs `url` from inside `host`'s namespace: status and body. */
async function fetchIn(host: LanHost, url: string): Promise<{ status: number; body: string }> {
  const script =
    'fetch(process.argv[1]).then(async (r) => process.stdout.write(JSON.stringify({ status: r.status, body: await r.text() })),' +
    ' (e) => { console.error(String(e)); process.exit(1); })';
  const res = await host.run([process.execPath, '-e', script, url], { timeoutMs: 10_000 });
  if (res.code !== 0) throw new Error(`GET ${url} in ${host.name} failed: ${res.stderr}`);
  return JSON.parse(res.stdout) as { status: number; body: string };
}

/** The scrape of `address` in `host`, checked by promtool. */
async function scrape(host: LanHost, address: string): Promise<string> {
  const { status, body } = await fetchIn(host, `http://${address}/metrics`);
  assert.equal(status, 200);
  const check = await runProc(['promtool', 'check', 'metrics'], { input: body, timeoutMs: 20_000 });
  assert.equal(check.code, 0, `promtool check metrics rejected the scrape of ${address}:\n${check.stdout}${check.stderr}`);
  return body;
}

/** The value of the sample `name{labels}` (labels in any order), or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const found = new Map([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => found.get(k) === v)) return Number(m[3]);
  }
  return undefined;
}

/** Sends `text` as one UDP datagram from inside `host` to `address`:`port`. */
async function sendDatagram(host: LanHost, address: string, port: number, text: string): Promise<void> {
  const script =
    "const s = require('node:dgram').createSocket('udp4');" +
    's.send(process.argv[1], Number(process.argv[2]), process.argv[3], (e) => { s.close(); if (e) { console.error(String(e)); process.exit(1); } });';
  const res = await host.run([process.execPath, '-e', script, text, String(port), address]);
  assert.equal(res.code, 0, res.stderr);
}

test('polod and marcod serve metrics that count real queries, publishes and grid members', async (t) => {
  if (!requireNetns(t)) return;
  const lan = await fixture.lan();
  const [h1, h2, h3] = [lan.host(1), lan.host(2), lan.host(3)];
  const polod = await startPolod(fixture, h1, {
    groups: [GROUP_112],
    config: `[polo]\nmetrics = ${POLOD_METRICS}\n`,
    services: { web: { id: 'web', params: { port: 80 } } },
  });
  t.after(() => polod.stop());
  const other = await startPolod(fixture, h2, { groups: [GROUP_112] });
  t.after(() => other.stop());
  const marcod = await startMarcod(fixture, h3, { args: ['--metrics', MARCOD_METRICS] });
  t.after(() => marcod.proc.stop());

  const before = await scrape(h1, POLOD_METRICS);
  const group = { group: GROUP_112 };
  assert.equal(sample(before, 'marcopolo_polod_services', group), 1);
  assert.equal(sample(before, 'marcopolo_polod_malformed_datagrams_total', { ...group, reason: 'invalid-json' }), undefined);
  const marcoBefore = sample(before, 'marcopolo_polod_queries_received_total', { ...group, command: 'Marco' }) ?? 0;
  // Only polod's own endpoint is served: other paths are 404.
  assert.equal((await fetchIn(h1, `http://${POLOD_METRICS}/`)).status, 404);

  // Real queries from another node: Marco and Request-For (answered), Request-For of nothing (silent).
  assert.equal((await marcoNodes(h3, ['discover', '--group', GROUP_112, '--timeout', '500'])).nodes.length, 2);
  assert.equal((await marcoNodes(h3, ['request-for', 'web', '--group', GROUP_112, '--timeout', '500'])).nodes.length, 1);
  await marcoNodes(h3, ['request-for', 'nosuch', '--group', GROUP_112, '--timeout', '300']);
  await sendDatagram(h3, h1.address, 1337, 'not json');
  // Publish API requests on its Unix socket: a List (ok) and a Publish without a token (refused).
  const api = await ReplyLineClient.unix(path.join(polod.stateDir, 'polod.sock'));
  const replies = [await api.request({ Command: 'List' }), await api.request({ Command: 'Publish', Args: { service: 'x' } })];
  api.close();
  assert.deepEqual(replies.map((r) => Object.keys(r as Record<string, unknown>)[0]), ['OK', 'Error']);

  const after = await waitFor(
    async () => {
      const text = await scrape(h1, POLOD_METRICS);
      return (sample(text, 'marcopolo_polod_malformed_datagrams_total', { ...group, reason: 'invalid-json' }) ?? 0) >= 1 &&
        (sample(text, 'marcopolo_polod_grid_members', group) ?? 0) === 2
        ? text
        : undefined;
    },
    { what: "polod's metrics to show the datagram and both members", timeoutMs: 15_000, intervalMs: 200 },
  );
  assert.ok((sample(after, 'marcopolo_polod_queries_received_total', { ...group, command: 'Marco' }) ?? 0) > marcoBefore);
  assert.ok((sample(after, 'marcopolo_polod_queries_received_total', { ...group, command: 'Request-For' }) ?? 0) >= 2);
  assert.ok((sample(after, 'marcopolo_polod_queries_answered_total', { ...group, command: 'Marco' }) ?? 0) >= 1);
  assert.ok((sample(after, 'marcopolo_polod_queries_answered_total', { ...group, command: 'Request-For' }) ?? 0) >= 1);
  assert.ok((sample(after, 'marcopolo_polod_queries_unanswered_total', group) ?? 0) >= 1);
  assert.ok((sample(after, 'marcopolo_polod_replies_sent_total', group) ?? 0) >= 2);
  assert.ok((sample(after, 'marcopolo_polod_reply_bytes_total', group) ?? 0) > 0);
  assert.equal(sample(after, 'marcopolo_polod_publish_requests_total', { command: 'List', result: 'ok' }), 1);
  assert.equal(sample(after, 'marcopolo_polod_publish_requests_total', { command: 'Publish', result: 'refused' }), 1);
  assert.ok((sample(after, 'process_resident_memory_bytes') ?? 0) > 0);

  // marcod: requests by command with their latency, and the warm view's members.
  const [reply] = await rawRequests(h3, [json({ Command: 'Marco', timeout: 500 })]);
  assert.ok(Array.isArray(reply?.reply));
  await rawRequests(h3, [{ text: 'not json' }]);
  const m = await waitFor(
    async () => {
      const text = await scrape(h3, MARCOD_METRICS);
      return (sample(text, 'marcopolo_marcod_grid_members', group) ?? 0) === 2 ? text : undefined;
    },
    { what: "marcod's warm view of both members in its metrics", timeoutMs: 15_000, intervalMs: 200 },
  );
  assert.ok((sample(m, 'marcopolo_marcod_requests_total') ?? 0) >= 2);
  assert.ok((sample(m, 'marcopolo_marcod_request_duration_seconds_count', { command: 'Marco', outcome: 'nodes' }) ?? 0) >= 1);
  assert.ok((sample(m, 'marcopolo_marcod_request_duration_seconds_count', { command: 'invalid', outcome: 'error' }) ?? 0) >= 1);
  assert.ok((sample(m, 'marcopolo_marcod_error_replies_total') ?? 0) >= 1);

  // An address in use (polod's, in h1): the daemon does not start; one line names --metrics, exit 3.
  const cfg = path.join(await fixture.tmpDir(), 'marco.cfg');
  await writeFile(cfg, '[marco]\n');
  const clash = await h1.run([process.execPath, MARCOD, '--config', cfg, '--interface', h1.address, '--log-level', 'error', '--metrics', POLOD_METRICS], {
    timeoutMs: 20_000,
  });
  assert.equal(clash.code, 3, clash.stderr);
  assert.match(clash.stderr, /^marcod: --metrics 127\.0\.0\.1:9464: cannot listen \(EADDRINUSE\)\n$/);
});
