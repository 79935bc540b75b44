/**
 * Groups ("grids") across hosts: h1's polod serves 224.0.0.112 and 224.0.0.113 and offers
 * `printer` only in .113; h2's serves .112 only; h3 is the client. Request-For is answered only
 * in the group that offers the service, a two-group polod is found in each group, Services by
 * unicast lists the root services of both groups, and the reference client's exact datagrams
 * (docs/protocol.md §2.2, with their `", "` spacing) get replies that parse to the expected objects.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requireNetns } from '../helpers/netns.js';
import {
  GROUP_112,
  GROUP_113,
  lanFixture,
  marcoNodes,
  runMarco,
  startPolod,
  type Polod,
} from '../helpers/lan-daemons.js';

const fixture = lanFixture({ name: 'grp', hosts: 3, subnet: 32 });
const addr = (i: number): string => `10.201.32.${i}`;

const WEB_H1 = { port: 8080, path: '/index' };
const WEB_H2 = { port: 9090 };
const PRINTER = { queue: 'lp0' };

let started: Promise<Polod[]> | undefined;

function polods(): Promise<Polod[]> {
  started ??= (async () => {
    const lan = await fixture.lan();
    return Promise.all([
      startPolod(fixture, lan.host(1), {
        groups: [GROUP_112, GROUP_113],
        services: {
          web: { id: 'web', params: WEB_H1 },
          printer: { id: 'printer', params: PRINTER, groups: [GROUP_113], disabled: false },
        },
      }),
      startPolod(fixture, lan.host(2), { groups: [GROUP_112], services: { web: { id: 'web', params: WEB_H2 } } }),
    ]);
  })();
  return started;
}

test('request-for is answered only in the group that offers the service', async (t) => {
  if (!requireNetns(t)) return;
  await polods();
  const client = (await fixture.lan()).host(3);
  // The queries expecting every node of a group end once those answered (--max-nodes); the
  // ones asserting that h2 (or anyone) stays silent wait out a two-second deadline.
  const [printer113, printer112, web113, web112] = await Promise.all([
    marcoNodes(client, ['request-for', 'printer', '--group', GROUP_113, '--max-nodes', '1', '--timeout', '10000']),
    marcoNodes(client, ['request-for', 'printer', '--group', GROUP_112, '--timeout', '2000']),
    marcoNodes(client, ['request-for', 'web', '--group', GROUP_113, '--timeout', '2000']),
    marcoNodes(client, ['request-for', 'web', '--group', GROUP_112, '--max-nodes', '2', '--timeout', '10000']),
  ]);
  assert.equal(printer113.code, 0);
  assert.deepEqual(printer113.nodes, [{ address: addr(1), params: PRINTER }]);
  assert.equal(printer112.code, 1, 'printer is not offered in 224.0.0.112: nobody answers');
  assert.deepEqual(printer112.nodes, []);
  assert.deepEqual(web113.nodes, [{ address: addr(1), params: WEB_H1 }], 'h2 does not serve 224.0.0.113');
  assert.deepEqual(web112.nodes, [
    { address: addr(1), params: WEB_H1 },
    { address: addr(2), params: WEB_H2 },
  ]);
});

test('a polod serving two groups is found by discover in each of them', async (t) => {
  if (!requireNetns(t)) return;
  await polods();
  const client = (await fixture.lan()).host(3);
  const [in112, in113] = await Promise.all([
    marcoNodes(client, ['discover', '--group', GROUP_112, '--max-nodes', '2', '--timeout', '10000']),
    // h2 must stay silent here: this one waits out its deadline.
    marcoNodes(client, ['discover', '--group', GROUP_113, '--timeout', '2000']),
  ]);
  assert.deepEqual(in112.nodes, [
    { address: addr(1), params: { hostname: 'h1' } },
    { address: addr(2), params: { hostname: 'h2' } },
  ]);
  assert.deepEqual(in113.nodes, [{ address: addr(1), params: { hostname: 'h1' } }]);
});

test('marco services <addr> lists by unicast the root services of both groups', async (t) => {
  if (!requireNetns(t)) return;
  await polods();
  const client = (await fixture.lan()).host(3);
  const [both, only112, h2, table] = await Promise.all([
    // Services ends at the first reply: the deadline only bounds a failure.
    runMarco(client, ['services', addr(1), '--timeout', '10000', '--json']),
    runMarco(client, ['services', addr(1), '--group', GROUP_112, '--timeout', '10000', '--json']),
    runMarco(client, ['services', addr(2), '--timeout', '10000', '--json']),
    runMarco(client, ['services', addr(1), '--timeout', '10000']),
  ]);
  assert.equal(both.code, 0, both.stderr);
  // Exactly this shape: {address, services: [{id, params}]}, nothing else.
  const doc = both.json as { address: string; services: { id: string; params: unknown }[] };
  assert.deepEqual(Object.keys(doc).sort(), ['address', 'services']);
  for (const s of doc.services) assert.deepEqual(Object.keys(s).sort(), ['id', 'params']);
  assert.deepEqual(
    { ...doc, services: [...doc.services].sort((a, b) => a.id.localeCompare(b.id)) },
    {
      address: addr(1),
      services: [
        { id: 'printer', params: PRINTER },
        { id: 'web', params: WEB_H1 },
      ],
    },
  );
  assert.equal(only112.code, 0, only112.stderr);
  assert.deepEqual(only112.json, { address: addr(1), services: [{ id: 'web', params: WEB_H1 }] });
  assert.deepEqual(h2.json, { address: addr(2), services: [{ id: 'web', params: WEB_H2 }] });
  assert.equal(table.code, 0, table.stderr);
  const rows = table.stdout.trim().split('\n');
  assert.match(rows[0] ?? '', /^ID\s+PARAMS$/);
  assert.deepEqual(rows.slice(1).map((r) => r.split(/\s+/)[0]).sort(), ['printer', 'web']);
});

/**
 * The reference client, byte for byte: each query goes out once from its own socket bound to
 * argv[1] (multicast TTL 2, as the reference sends it), and every reply received is printed as
 * {from, port, body}, one JSON document keyed by query name. A query listens for argv[3] ms (so
 * a reply that must not come, or a second reply, has that long to show) and then on until its
 * `expect` replies have arrived, up to argv[4] ms: the nodes that must answer need not beat the
 * window.
 */
const RAW_CLIENT = `
const dgram = require('node:dgram');
const [local, queriesJson, windowMs, limitMs] = process.argv.slice(1);
const queries = JSON.parse(queriesJson);
const results = {};
let open = queries.length;
for (const q of queries) {
  const replies = (results[q.name] = []);
  const s = dgram.createSocket('udp4');
  let windowOver = false;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    clearTimeout(limit);
    s.close();
    if (--open === 0) console.log(JSON.stringify(results));
  };
  s.on('message', (msg, r) => {
    replies.push({ from: r.address, port: r.port, body: msg.toString('utf8') });
    if (windowOver && replies.length >= q.expect) close();
  });
  s.bind(0, local, () => {
    s.setMulticastInterface(local);
    s.setMulticastTTL(2);
    s.send(Buffer.from(q.text, 'utf8'), q.port, q.to);
  });
  setTimeout(() => {
    windowOver = true;
    if (replies.length >= q.expect) close();
  }, Number(windowMs));
  const limit = setTimeout(close, Number(limitMs));
}
`;

interface RawReply {
  from: string;
  port: number;
  body: string;
}

test("the reference client's exact datagrams get replies that parse to the expected objects", async (t) => {
  if (!requireNetns(t)) return;
  await polods();
  const client = (await fixture.lan()).host(3);
  // The bytes of docs/protocol.md §2.2, spacing included; `expect`: how many nodes must answer.
  const queries = [
    { name: 'marco', to: GROUP_112, text: '{"Command": "Marco"}', expect: 2 },
    { name: 'webIn112', to: GROUP_112, text: '{"Command": "Request-For", "Params": "web"}', expect: 2 },
    { name: 'printerIn113', to: GROUP_113, text: '{"Command": "Request-For", "Params": "printer"}', expect: 1 },
    { name: 'printerIn112', to: GROUP_112, text: '{"Command": "Request-For", "Params": "printer"}', expect: 0 },
    { name: 'aliasRequestFor', to: GROUP_113, text: '{"Command": "Request-for", "Params": "web"}', expect: 1 },
    { name: 'aliasDiscover', to: GROUP_113, text: '{"Command": "Discover"}', expect: 1 },
    { name: 'servicesUnicast', to: addr(1), text: '{"Command": "Services"}', expect: 1 },
    { name: 'servicesIn113', to: GROUP_113, text: '{"Command": "Services"}', expect: 1 },
    { name: 'extraKeys', to: GROUP_113, text: '{"Command": "Marco", "Auth": null, "x": [1, 2]}', expect: 1 },
  ].map((q) => ({ ...q, port: 1337 }));
  assert.equal(Buffer.byteLength(queries[0]?.text ?? ''), 20);
  assert.equal(Buffer.byteLength(queries[1]?.text ?? ''), 43);
  assert.equal(Buffer.byteLength(queries[2]?.text ?? ''), 47);

  const res = await client.run([process.execPath, '-e', RAW_CLIENT, client.address, JSON.stringify(queries), '2000', '10000'], {
    timeoutMs: 20_000,
  });
  assert.equal(res.code, 0, res.stderr);
  const raw = JSON.parse(res.stdout) as Record<string, RawReply[]>;

  /** Replies of one query, parsed, by sender; every reply is compact JSON from port 1337. */
  const parsed = (name: string): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const r of raw[name] ?? []) {
      assert.equal(r.port, 1337, `${name}: reply from port ${r.port}`);
      const value: unknown = JSON.parse(r.body);
      assert.equal(r.body, JSON.stringify(value), `${name}: replies are compact JSON`);
      assert.ok(Buffer.byteLength(r.body) <= 4096, `${name}: reply fits the reference's 4096-byte buffer`);
      assert.equal(out[r.from], undefined, `${name}: one reply per node`);
      // Polo replies carry the Members hint, and OK replies to Request-For may carry the
      // Providers hint (docs/protocol.md §8.4), which the reference client ignores; their values
      // depend on how far the views have converged, so only their type is checked.
      const record = value as Record<string, unknown>;
      if (record['Command'] === 'Polo') {
        assert.ok(Number.isInteger(record['Members']) && (record['Members'] as number) >= 1, `${name}: Members hint`);
        delete record['Members'];
      }
      if (record['Command'] === 'OK' && 'Providers' in record) {
        assert.ok(Number.isInteger(record['Providers']) && (record['Providers'] as number) >= 1, `${name}: Providers hint`);
        delete record['Providers'];
      }
      out[r.from] = value;
    }
    return out;
  };

  assert.deepEqual(parsed('marco'), {
    [addr(1)]: { Command: 'Polo', Params: { hostname: 'h1' } },
    [addr(2)]: { Command: 'Polo', Params: { hostname: 'h2' } },
  });
  assert.deepEqual(parsed('webIn112'), {
    [addr(1)]: { Command: 'OK', Params: WEB_H1 },
    [addr(2)]: { Command: 'OK', Params: WEB_H2 },
  });
  assert.deepEqual(parsed('printerIn113'), { [addr(1)]: { Command: 'OK', Params: PRINTER } });
  assert.deepEqual(parsed('printerIn112'), {}, 'no negative reply, and printer is not offered in 224.0.0.112');
  assert.deepEqual(parsed('aliasRequestFor'), { [addr(1)]: { Command: 'OK', Params: WEB_H1 } });
  assert.deepEqual(parsed('aliasDiscover'), { [addr(1)]: { Command: 'Polo', Params: { hostname: 'h1' } } });
  assert.deepEqual(parsed('extraKeys'), { [addr(1)]: { Command: 'Polo', Params: { hostname: 'h1' } } });

  // Services: the list under "Services" and, for the reference client, under "Params" too.
  const byId = (list: unknown): unknown =>
    [...(list as { id: string }[])].sort((a, b) => a.id.localeCompare(b.id));
  const unicast = parsed('servicesUnicast')[addr(1)] as Record<string, unknown> | undefined;
  assert.ok(unicast, 'Services by unicast is answered');
  assert.equal(unicast['Command'], 'OK');
  const allServices = [
    { id: 'printer', params: PRINTER },
    { id: 'web', params: WEB_H1 },
  ];
  assert.deepEqual(byId(unicast['Services']), allServices);
  assert.deepEqual(byId(unicast['Params']), allServices);
  const in113 = parsed('servicesIn113');
  assert.deepEqual(Object.keys(in113), [addr(1)]);
  const multicast = in113[addr(1)] as Record<string, unknown>;
  assert.deepEqual(byId(multicast['Services']), allServices, 'both services are offered in 224.0.0.113');
  assert.deepEqual(byId(multicast['Params']), allServices);
});
