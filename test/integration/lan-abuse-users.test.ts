/**
 * Remote input never makes polod spawn processes or flood its log (src/responder/guard.ts):
 * h2 sends thousands of Request-For queries, each naming a different unknown `user:service`,
 * to h1's polod (running at debug level, where every datagram could make a line), and datagrams
 * from source port 0. polod runs `getent` through a wrapper that counts its runs; the test
 * checks that the runs stay within the configured lookup budget, the log within its line budget,
 * that no record carries a stack trace, and that h3's queries are still answered.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { requireNetns } from '../helpers/netns.js';
import { GROUP_112, lanFixture, logIs, marcoNodes, startPolod } from '../helpers/lan-daemons.js';
import { sendDatagrams, sendFromPortZero } from '../helpers/udp-tools.js';
import { waitFor } from '../helpers/wait.js';

const fixture = lanFixture({ name: 'abuseu', hosts: 3, subnet: 41 });
const addr = (i: number): string => `10.201.41.${i}`;
const WEB = { port: 8080 };
/** Unknown users named by the flood, each once (then the list again: the missing-user cache). */
const USERS = 1500;
const LOOKUPS_PER_SECOND = 1;
const LINES_PER_SECOND = 5;

test('a flood of unknown user ids runs getent within its budget and writes a bounded, stackless log', async (t) => {
  if (!requireNetns(t)) return;
  const lan = await fixture.lan();
  const [server, attacker, client] = [lan.host(1), lan.host(2), lan.host(3)];
  const dir = await fixture.tmpDir();
  const counter = path.join(dir, 'getent-runs');
  const wrapper = path.join(dir, 'getent');
  await writeFile(counter, '');
  await writeFile(wrapper, `#!/bin/sh\necho "$*" >> '${counter}'\nexec /usr/bin/env -S PATH=/usr/bin:/bin getent "$@"\n`);
  await chmod(wrapper, 0o755);
  const polod = await startPolod(fixture, server, {
    groups: [GROUP_112],
    services: { web: { id: 'web', params: WEB } },
    logLevel: 'debug',
    // The per-source datagram budget would drop most of the flood undecoded: raised here, so
    // that the lookup gate and the log budget are what is tested.
    config: `[polo]\nuser_lookups_per_second = ${LOOKUPS_PER_SECOND}\nremote_log_lines_per_second = ${LINES_PER_SECOND}\nquery_burst_per_source = 1000000\nquery_rate_per_source = 1000000\n`,
    env: { PATH: `${dir}:${process.env['PATH'] ?? '/usr/bin:/bin'}` },
  });

  // Port 0, by unicast and to the group: ignored, with one debug line and no stack.
  await sendFromPortZero(attacker, addr(2), addr(1), '{"Command": "Services"}');
  await sendFromPortZero(attacker, addr(2), GROUP_112, '{"Command": "Marco"}');
  await polod.waitLog(logIs('ignored datagram', { reason: 'source-port-0' }), 'the port-0 datagram ignored');

  const before = polod.proc.jsonLogs().length;
  const start = Date.now();
  const report = await sendDatagrams(attacker, {
    local: addr(2),
    targets: [GROUP_112],
    payloads: [{ template: '{"Command": "Request-For", "Params": "ghost%d:svc"}' }],
    count: USERS,
    batch: 8,
    quietMs: 200,
  });
  // The same names again: the users found missing cause no lookup.
  await sendDatagrams(attacker, {
    local: addr(2),
    targets: [GROUP_112],
    payloads: [{ template: '{"Command": "Request-For", "Params": "ghost%d:svc"}' }],
    count: 200,
    quietMs: 200,
  });
  const web = await marcoNodes(client, ['request-for', 'web', '--group', GROUP_112, '--timeout', '3000', '--max-nodes', '1']);
  const seconds = Math.ceil((Date.now() - start) / 1000) + 1;
  assert.equal(report.sent, USERS);
  assert.equal(report.replies, 0, 'no reply for an unknown user');
  assert.deepEqual(web.nodes, [{ address: addr(1), params: WEB }], 'a legitimate query is answered');

  const runs = (await readFile(counter, 'utf8')).split('\n').filter((l) => l.startsWith('passwd'));
  // The lookup budget: its burst (2) plus one a second, over the whole run. Unlimited, the
  // flood would have made one run per name (1500).
  assert.ok(runs.length >= 1, 'the gate lets some lookups through');
  assert.ok(runs.length <= 2 + LOOKUPS_PER_SECOND * seconds, `getent ran ${runs.length} times in about ${seconds} s`);

  // Every flood datagram polod receives makes one candidate line ('no reply'): written, or
  // counted in a summary line once its second is over. Wait for most of them to be accounted
  // for (a busy machine may drop some datagrams from polod's receive queue).
  const since = (): Record<string, unknown>[] => polod.proc.jsonLogs().slice(before);
  const suppressed = (): number => since().filter(logIs('log lines about remote input suppressed')).reduce((n, r) => n + Number(r['suppressed']), 0);
  const accounted = (): number => since().filter(logIs('no reply')).length + suppressed();
  await waitFor(() => accounted() >= (USERS + 200) / 2, { what: 'the flood accounted for in the log', timeoutMs: 10_000 });
  t.diagnostic(JSON.stringify({ accounted: accounted(), suppressed: suppressed(), noReply: since().filter(logIs('no reply')).length }));
  const records = since();
  assert.ok(records.length <= (LINES_PER_SECOND + 1) * (seconds + 2), `${records.length} records in about ${seconds} s`);
  assert.ok(suppressed() >= USERS / 4, `lines were left out and counted (${suppressed()})`);
  const stderr = polod.proc.lines('stderr').join('\n');
  assert.doesNotMatch(stderr, /"stack"|\\n\s+at /, 'no stack trace in the log');
  assert.ok(polod.alive());
});
