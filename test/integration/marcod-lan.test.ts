/**
 * marcod as a real process on a namespace LAN: three polods (h1 in both default groups, h2 only
 * in 224.0.0.112, h3 only in 224.0.0.113) and marcod on h4, bound to 127.0.1.1:1338 inside h4's
 * namespace. Local clients there send exactly the bytes the reference bindings send (Python,
 * C++, Java), fifty concurrent requests with different keys, and the TypeScript MarcodClient;
 * each gets exactly one reply holding exactly its own nodes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requireNetns } from '../helpers/netns.js';
import { GROUP_112, GROUP_113, lanFixture, startPolod, type Polod } from '../helpers/lan-daemons.js';
import { json, MARCOD_CLIENT, rawRequests, sortedNodes, startMarcod, type MarcodProc, type RawRequest } from '../helpers/marcod-lan.js';
import { runModule } from '../helpers/host-program.js';

const fixture = lanFixture({ name: 'md1', hosts: 4, subnet: 90 });
const addr = (i: number): string => `10.201.90.${i}`;

const H1 = { Address: addr(1), Params: { hostname: 'h1' } };
const H2 = { Address: addr(2), Params: { role: 'db', hostname: 'h2' } };
const H3 = { Address: addr(3), Params: { hostname: 'h3' } };
const WEB1 = { Address: addr(1), Params: { port: 8080 } };
const WEB2 = { Address: addr(2), Params: { port: 9090 } };
const PRINTER1 = { Address: addr(1), Params: { queue: 'lp0' } };

let started: Promise<{ polods: Polod[]; marcod: MarcodProc }> | undefined;

/** The three polods and marcod, started once for the whole file. */
function setup(): Promise<{ polods: Polod[]; marcod: MarcodProc }> {
  started ??= (async () => {
    const lan = await fixture.lan();
    const polods = await Promise.all([
      startPolod(fixture, lan.host(1), {
        groups: [GROUP_112, GROUP_113],
        services: {
          web: { id: 'web', params: { port: 8080 } },
          printer: { id: 'printer', params: { queue: 'lp0' }, groups: [GROUP_113] },
        },
      }),
      startPolod(fixture, lan.host(2), {
        groups: [GROUP_112],
        params: { role: 'db' },
        services: { web: { id: 'web', params: { port: 9090 } } },
      }),
      startPolod(fixture, lan.host(3), { groups: [GROUP_113], services: { ssh: { id: 'ssh', params: { port: 22 } } } }),
    ]);
    const marcod = await startMarcod(fixture, lan.host(4));
    return { polods, marcod };
  })();
  return started;
}

test('the exact datagrams of the Python, C++ and Java bindings get the right arrays', async (t) => {
  if (!requireNetns(t)) return;
  const { marcod } = await setup();
  // Without a node limit (null, 0) a request ends at its deadline: two seconds for the polods
  // to answer. Services ends at the first reply.
  const requests: RawRequest[] = [
    // Python Marco.marco() and Marco.request_for() (json.dumps: ", " and ": " separators).
    { text: '{"Command": "Marco", "max_nodes": null, "exclude": [], "params": {}, "timeout": 2000, "group": "224.0.0.112"}' },
    { text: '{"Command": "Request-for", "Params": "web", "node": null, "max_nodes": null, "exclude": [], "params": {}, "timeout": 2000}' },
    // C++ Marco::marco() and request_for(): compact, max_nodes 0 = no limit, no params.
    { text: '{"Command":"Marco","max_nodes":0,"exclude":[],"timeout":2000,"group":"224.0.0.112"}' },
    { text: '{"Command":"Request-for","Params":"printer","max_nodes":0,"exclude":[],"timeout":2000,"group":"224.0.0.113"}' },
    // Java: "max-nodes".
    { text: '{"Command":"Marco","max-nodes":1,"exclude":[],"params":{},"timeout":10000,"group":"224.0.0.112"}' },
    { text: '{"Command":"Marco","max-nodes":0,"exclude":[],"params":{},"timeout":2000,"group":"224.0.0.113"}' },
    // Python Marco.services().
    { text: `{"Command": "Services", "node": "${addr(1)}", "timeout": 10000}` },
  ];
  const [pyMarco, pyRequestFor, cppMarco, cppPrinter, javaOne, java113, pyServices] = await rawRequests(marcod.host, requests);
  for (const outcome of [pyMarco, pyRequestFor, cppMarco, cppPrinter, javaOne, java113, pyServices]) {
    assert.equal(outcome?.extra, 0, 'exactly one reply datagram');
  }
  assert.deepEqual(sortedNodes(pyMarco?.reply), [H1, H2]);
  assert.deepEqual(sortedNodes(pyRequestFor?.reply), [WEB1, WEB2], 'no group: the configured 224.0.0.112');
  assert.deepEqual(sortedNodes(cppMarco?.reply), [H1, H2]);
  assert.deepEqual(cppPrinter?.reply, [PRINTER1], 'group honoured for Request-for (bug B16)');
  const one = sortedNodes(javaOne?.reply);
  assert.equal(one.length, 1, 'max-nodes honoured');
  assert.ok([H1, H2].some((n) => JSON.stringify(n) === JSON.stringify(one[0])));
  assert.deepEqual(sortedNodes(java113?.reply), [H1, H3]);
  const services = pyServices?.reply as Array<{ id: string; params: unknown }>;
  assert.ok(Array.isArray(services), 'Services gets a JSON array (bug B3)');
  assert.deepEqual(
    services.map((s) => s.id).sort(),
    ['printer', 'web'],
  );
  assert.deepEqual(services.find((s) => s.id === 'web')?.params, { port: 8080 });
  assert.ok(marcod.alive());
});

test('50 concurrent requests with different timeouts, filters, groups and max_nodes get exactly their own nodes', async (t) => {
  if (!requireNetns(t)) return;
  const { marcod } = await setup();
  type Case = { request: RawRequest; check: (reply: unknown) => void };
  const addresses = (reply: unknown): string[] => sortedNodes(reply).map((n) => n.Address);
  // Every request has its own deadline. Those expecting every node that can answer end at
  // max_nodes (their deadline, 10 s and more, only bounds a failure); those asserting that a
  // filter drops a node wait out theirs, two seconds and more, for that node to show.
  const kinds: Array<(i: number) => Case> = [
    (i) => ({
      request: json({ Command: 'Marco', max_nodes: 2, timeout: 10_000 + 20 * i }),
      check: (r) => assert.deepEqual(sortedNodes(r), [H1, H2]),
    }),
    (i) => ({
      request: json({ Command: 'Marco', group: GROUP_113, max_nodes: 2, timeout: 10_000 + 20 * i }),
      check: (r) => assert.deepEqual(sortedNodes(r), [H1, H3]),
    }),
    (i) => ({
      request: json({ Command: 'Marco', params: { role: 'db' }, timeout: 2000 + 10 * i }),
      check: (r) => assert.deepEqual(r, [H2]),
    }),
    () => ({
      request: json({ Command: 'Marco', max_nodes: 1, group: GROUP_113, timeout: 10_000 }),
      check: (r) => {
        assert.equal(addresses(r).length, 1);
        assert.ok([addr(1), addr(3)].includes(addresses(r)[0] ?? ''));
      },
    }),
    (i) => ({
      request: json({ Command: 'Marco', exclude: [addr(1)], timeout: 2000 + 10 * i }),
      check: (r) => assert.deepEqual(r, [H2]),
    }),
    (i) => ({
      request: json({ Command: 'Request-For', Params: 'printer', group: GROUP_113, max_nodes: 1, timeout: 10_000 + 10 * i }),
      check: (r) => assert.deepEqual(r, [PRINTER1]),
    }),
    (i) => ({
      request: json({ Command: 'Request-for', Params: 'web', params: { port: 9090 }, timeout: 2000 + 10 * i }),
      check: (r) => assert.deepEqual(r, [WEB2]),
    }),
    (i) => ({
      request: json({ Command: 'Request-For', Params: 'ssh', group: GROUP_113, timeout: String(10_000 + i), 'max-nodes': 1, retries: i % 3 }),
      check: (r) => assert.deepEqual(r, [{ Address: addr(3), Params: { port: 22 } }]),
    }),
    (i) => ({
      request: json({ Command: 'Request-For', Params: 'web', timeout: 10_000.5 + i, max_nodes: 2 }),
      check: (r) => assert.deepEqual(sortedNodes(r), [WEB1, WEB2]),
    }),
  ];
  const cases = Array.from({ length: 50 }, (_, i) => (kinds[i % kinds.length] as (i: number) => Case)(i));
  const outcomes = await rawRequests(
    marcod.host,
    cases.map((c) => c.request),
  );
  assert.equal(outcomes.length, 50);
  outcomes.forEach((outcome, i) => {
    assert.equal(outcome.extra, 0, `request ${i}: exactly one reply`);
    cases[i]?.check(outcome.reply);
  });
});

test('the TypeScript MarcodClient through marcod: same shapes as the in-process Marco', async (t) => {
  if (!requireNetns(t)) return;
  const { marcod } = await setup();
  const program = `
    import { MarcodClient } from ${JSON.stringify(MARCOD_CLIENT)};
    const client = new MarcodClient();
    const byAddress = (a, b) => a.address.localeCompare(b.address);
    const out = {
      marco: (await client.marco({ maxNodes: 2, timeout: 10000 })).sort(byAddress),
      printer: await client.requestFor('printer', { group: '224.0.0.113', maxNodes: 1, timeout: 10000 }),
      one: await client.requestOne('web', { timeout: 10000 }),
      services: await client.services(${JSON.stringify(addr(3))}, { timeout: 10000 }),
      nobody: await client.services('10.201.90.99', { timeout: 300 }),
    };
    try { await client.marco({ group: '224.0.0.114', exclude: ['x'] }); } catch (err) { out.invalid = err.name; }
    process.stdout.write(JSON.stringify(out));
  `;
  const out = (await runModule(marcod.host, program, 30_000)) as Record<string, unknown>;
  assert.deepEqual(out['marco'], [
    { address: addr(1), params: { hostname: 'h1' } },
    { address: addr(2), params: { role: 'db', hostname: 'h2' } },
  ]);
  assert.deepEqual(out['printer'], [{ address: addr(1), params: { queue: 'lp0' } }]);
  assert.ok([addr(1), addr(2)].includes((out['one'] as { address: string }).address));
  assert.deepEqual(out['services'], { address: addr(3), services: [{ id: 'ssh', params: { port: 22 } }] });
  assert.equal(out['nobody'], undefined, 'a node that does not answer: undefined (not printed)');
  assert.equal(out['invalid'], 'InvalidArgumentError');
});
