/**
 * marcod as a real process facing bad input and overload: datagrams that are not JSON, not an
 * object, unknown commands, bad key values, a huge datagram, invalid UTF-8 and deep nesting each
 * get exactly one reply and marcod keeps serving; past 256 requests in flight the rest get
 * "busy"; a second marcod on the same address exits 3; SIGTERM answers the requests still in
 * progress and exits 0. LAN: a polod on h1, marcod on h2.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requireNetns } from '../helpers/netns.js';
import { GROUP_112, lanFixture, logIs, startPolod, type Polod } from '../helpers/lan-daemons.js';
import { json, MARCOD, rawRequests, startMarcod, type MarcodProc, type RawRequest } from '../helpers/marcod-lan.js';

const fixture = lanFixture({ name: 'md2', hosts: 2, subnet: 91 });
const H1 = { Address: '10.201.91.1', Params: { hostname: 'h1' } };

let started: Promise<{ polod: Polod; marcod: MarcodProc }> | undefined;

function setup(): Promise<{ polod: Polod; marcod: MarcodProc }> {
  started ??= (async () => {
    const lan = await fixture.lan();
    const polod = await startPolod(fixture, lan.host(1), { groups: [GROUP_112] });
    const marcod = await startMarcod(fixture, lan.host(2));
    return { polod, marcod };
  })();
  return started;
}

const base64 = (bytes: Buffer): RawRequest => ({ base64: bytes.toString('base64') });

test('bad input: each datagram gets exactly one reply, and marcod keeps serving', async (t) => {
  if (!requireNetns(t)) return;
  const { marcod } = await setup();
  const cases: Array<[RawRequest, unknown]> = [
    [{ text: 'not json' }, /not valid JSON/],
    [{ text: '{"Command": "Marco"' }, /not valid JSON/],
    [{ text: '' }, /not valid JSON/],
    [{ text: '[]' }, /not a JSON object/],
    [{ text: '"Marco"' }, /not a JSON object/],
    [{ text: 'null' }, /not a JSON object/],
    [json({ Command: 'Polo' }), { Error: true }],
    [json({ Command: 'Discover' }), { Error: true }],
    [json({ command: 'Marco' }), { Error: true }],
    [json({}), { Error: true }],
    [json({ Command: 'Marco', timeout: 'soon' }), /invalid timeout "soon"/],
    [json({ Command: 'Marco', timeout: -100 }), /invalid timeout -100/],
    [json({ Command: 'Marco', timeout: 1e12 }), /invalid timeout/],
    [json({ Command: 'Marco', max_nodes: 'all' }), /invalid max_nodes "all"/],
    [json({ Command: 'Marco', 'max-nodes': 1.5 }), /invalid max-nodes 1\.5/],
    [json({ Command: 'Marco', exclude: '10.201.91.1' }), /invalid exclude "10\.201\.91\.1"/],
    [json({ Command: 'Marco', exclude: { a: 1 } }), /invalid exclude/],
    [json({ Command: 'Request-for' }), /missing Params/],
    [json({ Command: 'Services', node: 12 }), /invalid node 12/],
    [json({ Command: 'Marco', params: [] }), /invalid params/],
    [json({ Command: 'Marco', group: '10.0.0.1' }), /invalid group/],
    [base64(Buffer.concat([Buffer.from('{"Command": "Marco", "pad": "'), Buffer.alloc(60_000, 0x78), Buffer.from('"}')])), /request of 60031 bytes exceeds the 8192-byte limit/],
    [base64(Buffer.concat([Buffer.from('{"Command": "Marco", "x": "'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')])), /not valid UTF-8/],
    [{ text: `{"Command": "Marco", "params": ${'['.repeat(1000)}${']'.repeat(1000)}}` }, /nested deeper/],
    [{ text: '{"Command": "Marco", "__proto__": {"timeout": "x"}, "constructor": {"prototype": {"x": 1}}, "max_nodes": 1, "timeout": 10000}' }, [H1]],
  ];
  const outcomes = await rawRequests(
    marcod.host,
    cases.map(([request]) => request),
  );
  outcomes.forEach((outcome, i) => {
    const [request, expected] = cases[i] as [RawRequest, unknown];
    const what = 'text' in request ? request.text.slice(0, 60) : `${request.base64.length} base64 chars`;
    assert.equal(outcome.extra, 0, `${what}: exactly one reply`);
    if (expected instanceof RegExp) {
      const reply = outcome.reply as { Error?: unknown };
      assert.equal(typeof reply?.Error, 'string', `${what}: an error reply`);
      assert.match(reply.Error as string, expected, what);
    } else {
      assert.deepEqual(outcome.reply, expected, what);
    }
  });
  // Still serving, with no error logged and no crash.
  const [after] = await rawRequests(marcod.host, [json({ Command: 'Marco', max_nodes: 1, timeout: 10_000 })]);
  assert.deepEqual(after?.reply, [H1]);
  assert.ok(marcod.alive());
  assert.deepEqual(marcod.logs((r) => (r['level'] as number) >= 50), [], 'nothing logged at error level');
});

test('past --max-requests in flight, the rest get {"Error": "busy"} at once; the others complete', async (t) => {
  if (!requireNetns(t)) return;
  const { marcod } = await setup();
  // A second marcod with a small bound (the default, 256, is more datagrams than the kernel's
  // default receive queue holds in one burst): 30 requests at once, 20 served, 10 refused.
  const small = await startMarcod(fixture, marcod.host, { args: ['--port', '1339', '--max-requests', '20'] });
  // Nobody offers this service: each request stays in flight until its deadline.
  const request = json({ Command: 'Request-For', Params: 'nobody-offers-this', timeout: 3000 });
  // No barrier: a refused client's barrier would be refused too.
  const outcomes = await rawRequests(small.host, Array.from({ length: 30 }, () => request), { port: 1339, barrier: false });
  const replies = outcomes.map((o) => JSON.stringify(o.reply));
  assert.equal(replies.filter((r) => r === '{"Error":"busy"}').length, 10, replies.join(' '));
  assert.equal(replies.filter((r) => r === '[]').length, 20, replies.join(' '));
  const [after] = await rawRequests(small.host, [json({ Command: 'Marco', max_nodes: 1, timeout: 10_000 })], { port: 1339 });
  assert.deepEqual(after?.reply, [H1]);
  assert.equal((await small.proc.stop()).code, 0);
});

test('a second marcod on the same address exits 3; SIGTERM answers requests in progress and exits 0', async (t) => {
  if (!requireNetns(t)) return;
  const { marcod } = await setup();
  const second = await marcod.host.run([process.execPath, MARCOD, '--log-level', 'silent'], { timeoutMs: 10_000 });
  assert.equal(second.code, 3);
  assert.match(second.stderr, /^marcod: cannot listen on 127\.0\.1\.1:1338: bind EADDRINUSE/);

  // fresh: a network query even though marcod's warm view could answer at once (nobody offers it).
  const pending = rawRequests(marcod.host, [json({ Command: 'Request-For', Params: 'stop-test', timeout: 60_000, fresh: true })], {
    barrier: false,
  });
  await marcod.proc.waitForJsonLog(
    logIs('request received', { request: 'Request-For "stop-test"' }),
    'the request to be in progress',
  );
  marcod.proc.kill('SIGTERM');
  const [outcome] = await pending;
  assert.deepEqual(outcome?.reply, { Error: 'marcod is stopping' });
  const exit = await marcod.proc.exited;
  assert.equal(exit.code, 0);
  assert.equal(marcod.logs(logIs('marcod stopped')).length, 1);
});
