/**
 * Grids across subnets on a real etcd cluster (docs/operations.md, "Grids across subnets"): two
 * namespace LANs joined by a router that forwards unicast but not multicast, three etcd members
 * (Debian's etcd-server) spread over both, polods registering with `--registry`. Proves that
 * discovery, Request-For, Services and `marco watch` reach across the subnets through the
 * registry and merge with the LAN (one entry per node), that losing one member changes nothing,
 * that polod re-registers after the whole cluster was down (LAN discovery working meanwhile,
 * one log line each way), that a SIGKILLed node leaves once its lease expires, and that etcd's
 * authentication works with a user and password file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { requireNetns, type LanHost } from '../helpers/netns.js';
import { GROUP_112, LIBRARY, logIs, MARCO, marcoNodes, runMarco, startPolod, waitWatchEvent, type Polod } from '../helpers/lan-daemons.js';
import { runModule } from '../helpers/host-program.js';
import { registrySubnets } from '../helpers/registry-subnets.js';
import { waitFor } from '../helpers/wait.js';
import { json, rawRequests, REFERENCE_MARCO_CFG, sortedNodes, startMarcod } from '../helpers/marcod-lan.js';

const subnets = registrySubnets('e8', { hosts: 3, subnet: 190 }, { hosts: 3, subnet: 191 });
const { lanA, lanB } = subnets;
const a = (i: number): string => `10.201.190.${i}`;
const b = (i: number): string => `10.201.191.${i}`;
/** Lease of the test polods: the shortest accepted, so a dead node leaves quickly. */
const LEASE_S = 2;
/** Failure deadlines, not measurements (lease + etcd's own expiry check, on a loaded machine). */
const LEASE_GONE_MS = 20_000;
const RECOVER_MS = 30_000;


/** The addresses `marco <args>` lists from `host`, sorted; each must appear once. */
async function found(host: LanHost, args: readonly string[]): Promise<string[]> {
  const run = await marcoNodes(host, args);
  const addresses = run.nodes.map((n) => n.address);
  assert.equal(new Set(addresses).size, addresses.length, `one entry per node: ${addresses.join(', ')}`);
  return addresses;
}

test('a grid across two subnets on a three-member etcd cluster', async (t) => {
  if (!requireNetns(t)) return;
  const [A, B] = await subnets.lans();
  // Members on both subnets: a1, a3 and b3 (polods run on a1, a2 and b1; clients on a3 and b2).
  const cluster = await subnets.etcd([A.host(1), A.host(3), B.host(3)], { token: `e8-${process.pid}` }, A.host(3));
  const registry = ['--registry', cluster.endpoints];
  const polodArgs = { groups: [GROUP_112], extraArgs: [...registry, '--registry-lease', String(LEASE_S)] };
  const startNode = (host: LanHost, services: Record<string, unknown>): Promise<Polod> =>
    startPolod(host.address.startsWith('10.201.190.') ? lanA : lanB, host, { ...polodArgs, services });

  const [pa1, pa2, pb1] = await Promise.all([
    startNode(A.host(1), { web: { id: 'web', params: { port: 8001 } } }),
    startNode(A.host(2), {}),
    startNode(B.host(1), { db: { id: 'db', params: { port: 5432 } } }),
  ]);
  t.after(() => Promise.all([pa1, pa2, pb1].map((p) => p.stop())));
  for (const p of [pa1, pa2, pb1]) await p.waitLog(logIs('node registered in the registry'), 'registered', RECOVER_MS);

  // The router does not forward multicast: without the registry each subnet sees only itself.
  assert.deepEqual(await found(B.host(2), ['discover', '--timeout', '1500']), [b(1)]);
  // With it, both subnets, one entry per node (the LAN's answers and the registry's merged).
  assert.deepEqual(await found(B.host(2), ['discover', '--timeout', '1500', ...registry]), [a(1), a(2), b(1)]);
  assert.deepEqual(await found(A.host(3), ['discover', '--timeout', '1500', ...registry]), [a(1), a(2), b(1)]);
  const web = await marcoNodes(B.host(2), ['request-for', 'web', '--timeout', '2000', ...registry]);
  assert.deepEqual(web.nodes, [{ address: a(1), params: { port: 8001 } }]);
  // Services of a node on the other subnet (its unicast reply, or the registry's copy).
  const services = await runMarco(B.host(2), ['services', a(1), '--json', ...registry]);
  assert.equal(services.code, 0, services.stderr);
  assert.deepEqual((services.json as { services: unknown }).services, [{ id: 'web', params: { port: 8001 } }]);
  // The library, with the grid named by its IPv6 twin: the same grid, read in the registry under
  // its IPv4 name (the CLI canonicalizes its flag; a program's option once went as typed).
  const program = `
    import { Marco } from ${JSON.stringify(LIBRARY)};
    const marco = new Marco({ registry: ${JSON.stringify(cluster.endpoints.split(','))}, interface: ${JSON.stringify(b(2))} });
    const found = await marco.services(${JSON.stringify(a(1))}, { group: 'ff02::224:0:0:112', timeout: 1500 });
    process.stdout.write(JSON.stringify(found?.services ?? null));
  `;
  assert.deepEqual(await runModule(B.host(2), program), [{ id: 'web', params: { port: 8001 } }]);

  // marcod, with `registry` in marco.cfg, answers for both subnets too (by query or warm view).
  const marcod = await startMarcod(lanA, A.host(3), { config: `${REFERENCE_MARCO_CFG}registry = ${cluster.endpoints}\n` });
  t.after(() => marcod.proc.stop());
  const [viaMarcod, everyNode] = await rawRequests(A.host(3), [json({ Command: 'Request-For', Params: 'db' }), json({ Command: 'Marco' })], { barrier: false });
  assert.deepEqual(sortedNodes(viaMarcod?.reply), [{ Address: b(1), Params: { port: 5432 } }]);
  assert.deepEqual(sortedNodes(everyNode?.reply).map((n) => n.Address), [a(1), a(2), b(1)]);

  // A watcher on subnet B follows a service offered on subnet A.
  const watch = B.host(2).spawn([process.execPath, MARCO, 'watch', '--json', '--interface', b(2), '--service', 'web', ...registry]);
  t.after(() => watch.stop());
  await waitWatchEvent(watch, 'up', a(1));
  await pa2.writeService('web', { id: 'web', params: { port: 8002 } });
  await pa2.reload();
  await waitWatchEvent(watch, 'up', a(2));

  // One member killed: the two others keep quorum, and everything still works.
  await cluster.kill(0);
  await pa1.removeService('web');
  await pa1.reload();
  await waitWatchEvent(watch, 'down', a(1));
  const stillWeb = await marcoNodes(B.host(2), ['request-for', 'web', '--timeout', '2000', ...registry]);
  assert.deepEqual(stillWeb.nodes.map((n) => n.address), [a(2)]);

  // The whole cluster down: LAN discovery goes on, polod says so once, not once per retry.
  const lost = logIs('registry unreachable: LAN discovery goes on; retrying');
  const lostBefore = [pa1, pa2, pb1].map((p) => p.logs(lost).length);
  await Promise.all([cluster.kill(1), cluster.kill(2)]);
  for (const [i, p] of [pa1, pa2, pb1].entries()) {
    await waitFor(() => (p.logs(lost).length > (lostBefore[i] ?? 0) ? true : undefined), { what: `'registry unreachable' on ${p.host.name}`, timeoutMs: RECOVER_MS });
  }
  // marco answers from the LAN and says once that the registry was not read.
  const lanOnly = await marcoNodes(A.host(3), ['discover', '--timeout', '1500', ...registry]);
  assert.deepEqual(lanOnly.nodes.map((n) => n.address), [a(1), a(2)]);
  assert.match(lanOnly.run.stderr, /^marco: warning: registry \S+ not read \(.+\): LAN answers only\n$/);
  // A change while etcd is down is written once it is back.
  await pb1.writeService('cache', { id: 'cache', params: { port: 6379 } });
  await pb1.reload();
  // Several retries (0.25 s doubling) happened meanwhile, and each polod logged one line.
  [pa1, pa2, pb1].forEach((p, i) => assert.equal(p.logs(lost).length - (lostBefore[i] ?? 0), 1, `one 'unreachable' line on ${p.host.name}`));
  cluster.start(0);
  cluster.start(1);
  cluster.start(2);
  await cluster.waitHealthy(A.host(3));
  for (const p of [pa1, pa2, pb1]) await p.waitLog(logIs('registry reachable again: node registered'), 'registry regained', RECOVER_MS);
  const cache = await marcoNodes(A.host(3), ['request-for', 'cache', '--timeout', '2000', ...registry]);
  assert.deepEqual(cache.nodes, [{ address: b(1), params: { port: 6379 } }]);
  // The watcher followed the registry again after the outage.
  await pa1.writeService('web', { id: 'web', params: { port: 8011 } });
  await pa1.reload();
  await waitWatchEvent(watch, 'up', a(1), { timeoutMs: RECOVER_MS });

  // A node SIGKILLed (no goodbye, no revoke) leaves the registry when its lease expires.
  pa2.proc.kill('SIGKILL');
  await pa2.proc.exited;
  await waitWatchEvent(watch, 'down', a(2), { timeoutMs: LEASE_GONE_MS });
  await waitFor(
    async () => {
      const now = await found(B.host(2), ['discover', '--timeout', '1000', ...registry]);
      return now.includes(a(2)) ? undefined : now;
    },
    { what: `${a(2)} gone from the registry`, timeoutMs: LEASE_GONE_MS, intervalMs: 200 },
  );
  assert.deepEqual(await found(B.host(2), ['discover', '--timeout', '1500', ...registry]), [a(1), b(1)]);

  // etcd's authentication: with the user and its password file, polod registers and marco reads;
  // without them, marco gets the LAN's answers only.
  await cluster.enableAuth(A.host(3), 'e8-secret');
  const passwordFile = path.join(await lanB.tmpDir(), 'etcd-password');
  await writeFile(passwordFile, 'e8-secret\n');
  const credentials = ['--registry-user', 'root', '--registry-password-file', passwordFile];
  const pb2 = await startPolod(lanB, B.host(2), { groups: [GROUP_112], services: { vault: { id: 'vault', params: { port: 8200 } } }, extraArgs: [...polodArgs.extraArgs, ...credentials] });
  t.after(() => pb2.stop());
  await pb2.waitLog(logIs('node registered in the registry'), 'registered with a user', RECOVER_MS);
  const vault = await marcoNodes(A.host(3), ['request-for', 'vault', '--timeout', '2000', ...registry, ...credentials]);
  assert.deepEqual(vault.nodes, [{ address: b(2), params: { port: 8200 } }]);
  const refused = await marcoNodes(A.host(3), ['request-for', 'vault', '--timeout', '2000', ...registry]);
  assert.deepEqual(refused.nodes, []);
});
