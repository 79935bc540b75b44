/**
 * Hostile datagrams: h2 floods h1's polod (both groups and its unicast port) with malformed and
 * malicious datagrams — invalid JSON, `[]`, 64 KiB datagrams (IP fragments), deep nesting,
 * invalid UTF-8, `__proto__` keys, missing or non-string Params, unknown commands, unknown and
 * root user ids — while h3 keeps querying with the marco command. Every legitimate query is
 * answered (with the marco's own resends: the flood can fill polod's receive queue), polod never
 * exits, logs no error, and its answers are the same afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requireNetns } from '../helpers/netns.js';
import { GROUP_112, GROUP_113, lanFixture, logIs, marcoNodes, runMarco, startPolod } from '../helpers/lan-daemons.js';

const fixture = lanFixture({ name: 'hostile', hosts: 3, subnet: 35 });
const addr = (i: number): string => `10.201.35.${i}`;
/** Datagrams the flood sends at least (it goes on until the queries are done)… */
const FLOOD_MIN = 20_000;
/** …and at most. */
const FLOOD_CAP = 400_000;
const WEB = { port: 8080 };

/**
 * The flood, from address argv[1] to the targets argv[2] (JSON list) on port 1337: every payload
 * to every target in turn, 32 datagrams in flight, until stdin has ended and argv[4] datagrams
 * were sent, or argv[3] were. Prints `sent N` every 1024, then a JSON summary.
 */
const FLOOD = `
const dgram = require('node:dgram');
const [local, targetsJson, cap, min] = process.argv.slice(1);
const targets = JSON.parse(targetsJson);
const text = (s) => Buffer.from(s, 'utf8');
const big = (n, head, fill, tail) => Buffer.concat([text(head), Buffer.alloc(n - head.length - tail.length, fill), text(tail)]);
const q = (params) => text(JSON.stringify({ Command: 'Request-For', Params: params }));
const payloads = [
  // Invalid JSON, non-objects, empty.
  text('{"Command": "Marco"'), text('not json'), text('{,}'), text(''), text('[]'), text('null'), text('"Marco"'),
  text('[{"Command": "Marco"}]'),
  // 64 KiB datagrams (about 45 IP fragments each): valid JSON too large, and deep nesting.
  big(65000, '{"Command": "Marco", "pad": "', 0x78, '"}'),
  big(65000, '', 0x5b, ''),
  // Deeply nested JSON within the 4 KiB limit, as arrays and as objects.
  text('['.repeat(4000)),
  text('{"Command": "Marco", "x": ' + '{"a": '.repeat(600) + '1' + '}'.repeat(600) + '}'),
  // Invalid UTF-8: stray continuation bytes, an overlong encoding, a lone surrogate.
  Buffer.concat([text('{"Command": "Marco", "x": "'), Buffer.from([0xff, 0xfe, 0x80]), text('"}')]),
  Buffer.concat([text('{"Command": "Request-For", "Params": "'), Buffer.from([0xc0, 0xaf]), text('"}')]),
  Buffer.concat([text('{"Command": "Marco", "x": "'), Buffer.from([0xed, 0xa0, 0x80]), text('"}')]),
  // __proto__ and friends.
  text('{"__proto__": {"Command": "Marco"}}'),
  text('{"Command": "Marco", "__proto__": {"Params": "web", "polluted": true}}'),
  text('{"Command": "Request-For", "Params": "web", "__proto__": {"Command": "Services"}}'),
  text('{"Command": "Marco", "constructor": {"prototype": {"polluted": true}}}'),
  text('{"Command": "Request-For", "Params": "__proto__"}'),
  text('{"Command": "Request-For", "Params": "constructor"}'),
  text('{"Command": "Services", "Group": "__proto__"}'),
  // Missing or non-string Params.
  text('{"Command": "Request-For"}'), q(null), q(1), q(''), q(['web']), q({ id: 'web' }), q(true),
  text('{"Command": "Request-for", "Params": {"__proto__": {"x": 1}}}'),
  q('x'.repeat(4000)),
  // Unknown commands.
  text('{"Command": "Polo"}'), text('{"Command": "OK", "Params": {}}'), text('{"Command": "marco"}'),
  text('{"Command": "toString"}'), text('{"Command": "__proto__"}'), text('{"Command": "hasOwnProperty"}'),
  text('{"Command": 1}'), text('{"Command": null}'), text('{"Command": ["Marco"]}'), text('{"command": "Marco"}'),
  // User ids: an unknown user (a few names), root, and malformed ones.
  q('nosuchuser:svc'), q('nosuchuser:web'), q('root:x'), q('root:web'), q('nosuchuser:'), q(':svc'), q('a:b:c'),
  ...Array.from({ length: 8 }, (_, k) => q('nosuchuser' + k + ':svc')),
];
let sent = 0, errors = 0, replies = 0, stop = false;
process.stdin.on('data', () => {});
process.stdin.on('end', () => { stop = true; });
const s = dgram.createSocket('udp4');
s.on('message', () => { replies++; });
const send = (buf, to) => new Promise((resolve) => s.send(buf, 1337, to, (err) => { if (err) errors++; resolve(); }));
s.bind(0, local, async () => {
  s.setMulticastInterface(local);
  s.setMulticastTTL(2);
  console.log('flooding ' + payloads.length);
  while (sent < Number(cap) && !(stop && sent >= Number(min))) {
    const batch = [];
    for (let k = 0; k < 32; k++, sent++) {
      batch.push(send(payloads[sent % payloads.length], targets[Math.floor(sent / payloads.length) % targets.length]));
    }
    await Promise.all(batch);
    // A timer tick between batches paces the flood (the test machine runs other tests too) and
    // lets stdin's end be seen: sends often complete at once, without a trip through the loop.
    await new Promise((resolve) => setTimeout(resolve, 2));
    if (sent % 1024 === 0) console.log('sent ' + sent);
  }
  console.log(JSON.stringify({ sent, errors, replies, stopped: stop }));
  s.close();
});
`;

test('hostile datagrams never stop polod from answering legitimate queries', async (t) => {
  if (!requireNetns(t)) return;
  const lan = await fixture.lan();
  const [server, attacker, client] = [lan.host(1), lan.host(2), lan.host(3)];
  const polod = await startPolod(fixture, server, {
    groups: [GROUP_112, GROUP_113],
    services: { web: { id: 'web', params: WEB } },
  });

  /** One round of legitimate queries from h3, all at once; each must be answered exactly. */
  const round = async (): Promise<void> => {
    // Resent while unanswered: the flood may overflow polod's socket queue, which drops queries.
    const opts = ['--timeout', '6000', '--retries', '5', '--max-nodes', '1'];
    const [d112, d113, web112, web113, services] = await Promise.all([
      marcoNodes(client, ['discover', '--group', GROUP_112, ...opts]),
      marcoNodes(client, ['discover', '--group', GROUP_113, ...opts]),
      marcoNodes(client, ['request-for', 'web', '--group', GROUP_112, ...opts]),
      marcoNodes(client, ['request-for', 'web', '--group', GROUP_113, ...opts]),
      runMarco(client, ['services', addr(1), '--timeout', '6000', '--retries', '5', '--json']),
    ]);
    const h1 = { hostname: 'h1' };
    assert.deepEqual(d112.nodes, [{ address: addr(1), params: h1 }], `discover in ${GROUP_112}`);
    assert.deepEqual(d113.nodes, [{ address: addr(1), params: h1 }], `discover in ${GROUP_113}`);
    assert.deepEqual(web112.nodes, [{ address: addr(1), params: WEB }], `request-for in ${GROUP_112}`);
    assert.deepEqual(web113.nodes, [{ address: addr(1), params: WEB }], `request-for in ${GROUP_113}`);
    assert.deepEqual(services.json, { address: addr(1), services: [{ id: 'web', params: WEB }] }, 'services by unicast');
  };
  await round();

  const flood = attacker.spawn([
    process.execPath,
    '-e',
    FLOOD,
    attacker.address,
    JSON.stringify([GROUP_112, addr(1), GROUP_113]),
    String(FLOOD_CAP),
    String(FLOOD_MIN),
  ]);
  t.after(() => flood.stop());
  await flood.waitForLine((l) => l.startsWith('flooding '), 'the flood to start');
  const sent = (): number => Number(flood.lines().filter((l) => l.startsWith('sent ')).at(-1)?.slice(5) ?? 0);

  // Query rounds for as long as the flood has not reached its minimum, and at least three.
  let rounds = 0;
  while (rounds < 3 || sent() < FLOOD_MIN) {
    await round();
    rounds++;
    assert.ok(flood.child.exitCode === null, `the flood was still running during query round ${rounds}`);
    assert.ok(polod.alive(), `polod is alive after query round ${rounds}`);
    assert.ok(rounds < 50, `the flood sent only ${sent()} datagrams in ${rounds} query rounds`);
  }
  flood.child.stdin?.end();
  const done = await flood.exited;
  assert.equal(done.code, 0, flood.stderr);
  const summary = JSON.parse(flood.lines().at(-1) ?? '{}') as { sent: number; errors: number; stopped: boolean };
  assert.ok(summary.sent >= FLOOD_MIN, `the flood sent ${summary.sent} datagrams`);
  assert.ok(summary.stopped, 'the flood ran until the queries were done');
  assert.equal(summary.errors, 0, 'every hostile datagram went out');

  // Still the same polod, same answers; nothing reached its prototypes or its error log.
  assert.ok(polod.alive(), 'polod did not exit');
  await round();
  assert.deepEqual(polod.logs((r) => Number(r['level']) >= 50), [], 'no error or fatal record');
  assert.deepEqual(polod.logs(logIs('query failed')), []);
  const stopped = await polod.stop();
  assert.deepEqual(stopped, { code: 0, signal: null }, 'polod stops cleanly on SIGTERM after the flood');
});
