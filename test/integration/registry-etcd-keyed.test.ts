/**
 * Keyed grids across subnets (docs/protocol.md §10.1): polod signs its registry entries with the
 * grid key, and seals their params in a sealed grid; clients with the key take them as verified,
 * clients of `required` refuse entries nobody holding the key signed (forged ones, ones signed
 * with another key, and a node's signed entry put back after it left), `preferred` takes
 * unsigned ones as unverified; marcod and `marco watch` with the key too. Two namespace LANs joined by a router that does not forward
 * multicast, one etcd member: every answer across the router comes from the registry.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { requireNetns, type LanHost } from '../helpers/netns.js';
import { signEntry } from '../../src/etcd/signedEntry.js';
import { GROUP_112, gridKeyFile, LIBRARY, logIs, MARCO, marcoNodes, startPolod, waitWatchEvent, type JsonNode, type WatchLine } from '../helpers/lan-daemons.js';
import { runModule } from '../helpers/host-program.js';
import { registrySubnets } from '../helpers/registry-subnets.js';
import { json, rawRequests, REFERENCE_MARCO_CFG, sortedNodes, startMarcod } from '../helpers/marcod-lan.js';

const subnets = registrySubnets('e8k', { hosts: 2, subnet: 196 }, { hosts: 2, subnet: 197 });
const { lanA, lanB } = subnets;
const GROUP_113 = '224.0.0.113';
/** A failure deadline, not a measurement (etcd's start on a loaded machine). */
const REGISTERED_MS = 30_000;
const ETCD_CLIENT = path.join(path.dirname(LIBRARY), 'etcd', 'client.js');

/** Runs `body` (async JavaScript with `etcd`, an EtcdClient of the cluster) on `host`; its printed JSON. */
function withEtcd(host: LanHost, endpoints: string, body: string): Promise<unknown> {
  const program = `
    import { EtcdClient } from ${JSON.stringify(ETCD_CLIENT)};
    const etcd = new EtcdClient({ endpoints: ${JSON.stringify(endpoints.split(','))} });
    const out = await (async () => { ${body} })();
    process.stdout.write(JSON.stringify(out ?? null));
  `;
  return runModule(host, program);
}

type VerifiedNode = JsonNode & { verified?: boolean };

test('keyed grids across subnets: signed and sealed registry entries, forged and replayed ones refused', async (t) => {
  if (!requireNetns(t)) return;
  const [A, B] = await subnets.lans();
  const { endpoints } = await subnets.etcd([A.host(1)], { token: `e8k-${process.pid}` }, A.host(2));
  const registry = ['--registry', endpoints];
  const [key, otherKey] = await Promise.all([gridKeyFile(lanA, 'grid.key', 0x5a), gridKeyFile(lanA, 'other.key', 0x33)]);
  const b = (i: number): string => B.host(i).address;

  // b1 serves 224.0.0.112 with its key required; b2 serves 224.0.0.113 sealed.
  const lease = ['--registry-lease', '2'];
  const [required, sealed] = await Promise.all([
    startPolod(lanB, B.host(1), { groups: [GROUP_112], services: { db: { id: 'db', params: { port: 5432 } } }, extraArgs: [...registry, ...lease, '--key', key.file] }),
    startPolod(lanB, B.host(2), {
      groups: [GROUP_113],
      params: { room: 'vault-room' },
      services: { vault: { id: 'vault', params: { port: 8200 } } },
      extraArgs: [...registry, ...lease, '--key', key.file, '--auth', 'sealed'],
    }),
  ]);
  t.after(() => Promise.all([required.stop(), sealed.stop()]));
  for (const p of [required, sealed]) await p.waitLog(logIs('node registered in the registry'), 'registered', REGISTERED_MS);

  const ask = async (args: readonly string[]): Promise<VerifiedNode[]> =>
    (await marcoNodes(A.host(2), [...args, '--timeout', '1500', '--interface', A.host(2).address, ...registry])).nodes;

  // With the key: the node of the other subnet, verified.
  assert.deepEqual(await ask(['request-for', 'db', '--key', key.file]), [{ address: b(1), params: { port: 5432 }, verified: true }]);
  assert.deepEqual(await ask(['discover', '--key', key.file]), [{ address: b(1), params: { hostname: 'h1' }, verified: true }]);
  // The sealed grid's params: in the clear for a key holder, never in etcd.
  assert.deepEqual(await ask(['request-for', 'vault', '--group', GROUP_113, '--key', key.file]), [{ address: b(2), params: { port: 8200 }, verified: true }]);
  const stored = JSON.stringify(await withEtcd(A.host(2), endpoints, `return (await etcd.range('/marcopolo/v1/grids/')).kvs.map((kv) => kv.value.toString());`));
  assert.ok(stored.includes('5432'), 'the required grid is signed, not sealed');
  assert.ok(!stored.includes('8200') && !stored.includes('vault-room'), `sealed params in etcd: ${stored}`);
  // Without a key, as a keyless client takes a signed reply: found, the sealed params still sealed.
  assert.deepEqual(await ask(['request-for', 'db']), [{ address: b(1), params: { port: 5432 } }]);
  const [vaultKeyless] = await ask(['request-for', 'vault', '--group', GROUP_113]);
  assert.deepEqual(Object.keys(vaultKeyless?.params ?? {}).sort(), ['Sealed', 'k']);
  // Another key: the entries are nobody's the client trusts.
  assert.deepEqual(await ask(['request-for', 'db', '--key', otherKey.file]), []);

  // Entries written by someone without the key: unsigned (a node and a service), and signed with another key.
  const forged = (address: string): string => `/marcopolo/v1/grids/${GROUP_112}:1337/nodes/${address}`;
  const forgedService = (address: string): string => `/marcopolo/v1/grids/${GROUP_112}:1337/services/db/${address}`;
  const record = JSON.stringify({ instance: 'x', rev: 1, params: { hostname: 'evil' }, services: [{ id: 'db', params: { port: 6666 } }] });
  const writes = [
    { put: forged('10.201.197.99'), value: record },
    { put: forgedService('10.201.197.99'), value: '{"port":6666}' },
    { put: forged('10.201.197.98'), value: signEntry(forged('10.201.197.98'), record, '0', otherKey.key) },
    { put: forgedService('10.201.197.98'), value: signEntry(forgedService('10.201.197.98'), '{"port":6666}', '0', otherKey.key) },
  ];
  await withEtcd(A.host(2), endpoints, `await etcd.txn(${JSON.stringify(writes)});`);
  assert.deepEqual((await ask(['request-for', 'db', '--key', key.file])).map((n) => n.address), [b(1)], 'required: the forged entries are refused');
  assert.deepEqual(
    await ask(['request-for', 'db', '--key', key.file, '--auth', 'preferred']),
    [
      { address: b(1), params: { port: 5432 }, verified: true },
      { address: '10.201.197.99', params: { port: 6666 }, verified: false },
    ],
    'preferred: the unsigned entry as unverified; the one with a bad signature never',
  );

  // marcod with the key and the registry in marco.cfg answers the same.
  const marcod = await startMarcod(lanA, A.host(2), { config: `${REFERENCE_MARCO_CFG}key_files = ${key.file}\nregistry = ${endpoints}\n` });
  t.after(() => marcod.proc.stop());
  const [viaMarcod] = await rawRequests(A.host(2), [json({ Command: 'Request-For', Params: 'db' })], { barrier: false });
  assert.deepEqual(sortedNodes(viaMarcod?.reply), [{ Address: b(1), Params: { port: 5432 } }]);

  // A watcher with the key on subnet A: the sealed node, verified, its params opened.
  const watch = A.host(2).spawn([process.execPath, MARCO, 'watch', '--json', '--group', GROUP_113, '--interface', A.host(2).address, '--key', key.file, ...registry]);
  t.after(() => watch.stop());
  const up = JSON.parse(await waitWatchEvent(watch, 'up', b(2))) as WatchLine;
  assert.deepEqual({ params: up.params, verified: up.verified }, { params: { room: 'vault-room', hostname: 'h2' }, verified: true });
  // b2's entry overwritten by someone without the key: the watcher drops b2, never shows the forgery.
  const b2Key = `/marcopolo/v1/grids/${GROUP_113}:1337/nodes/${b(2)}`;
  await withEtcd(A.host(2), endpoints, `await etcd.txn([{ put: ${JSON.stringify(b2Key)}, value: ${JSON.stringify(JSON.stringify({ instance: 'x', rev: 9, params: { room: 'evil' }, services: [] }))} }]);`);
  await waitWatchEvent(watch, 'down', b(2));
  assert.ok(!watch.stdout.includes('evil'), watch.stdout);

  // b1's own signed entry, copied, then put back after b1 left (its lease revoked): refused.
  const copied = await withEtcd(A.host(2), endpoints, `const kv = await etcd.get(${JSON.stringify(forgedService(b(1)))}); return kv.value.toString();`);
  assert.equal(typeof copied, 'string');
  await required.stop();
  await withEtcd(A.host(2), endpoints, `await etcd.txn([{ put: ${JSON.stringify(forgedService(b(1)))}, value: ${JSON.stringify(copied)} }]);`);
  assert.deepEqual((await ask(['request-for', 'db', '--key', key.file])).map((n) => n.address), [], 'a replayed entry off its lease is refused');
  assert.deepEqual((await ask(['request-for', 'db'])).map((n) => n.address), [b(1), '10.201.197.98', '10.201.197.99'], 'a keyless client reads whatever etcd holds');
});
