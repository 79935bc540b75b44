/**
 * The grid registry over TLS (docs/operations.md, "Grids across subnets"): an etcd member that
 * serves https only, with a certificate from a private CA, and admits only clients with a
 * certificate from that CA (etcd's --client-cert-auth). polod registers with the TLS files from
 * polo.cfg, and marco on the other subnet finds it through the registry with the same files as
 * flags, marcod with them in marco.cfg. Without the client certificate, or trusting another CA, marco cannot read the registry:
 * one warning line, and the LAN's answers only. Two namespace LANs joined by a router that does
 * not forward multicast, so a node of the other subnet is found through the registry alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requireNetns } from '../helpers/netns.js';
import { GROUP_112, logIs, marcoNodes, startPolod } from '../helpers/lan-daemons.js';
import { registrySubnets } from '../helpers/registry-subnets.js';
import { makeTestPki } from '../helpers/test-pki.js';
import { json, rawRequests, REFERENCE_MARCO_CFG, sortedNodes, startMarcod } from '../helpers/marcod-lan.js';

const subnets = registrySubnets('e8t', { hosts: 2, subnet: 194 }, { hosts: 1, subnet: 195 });
const { lanA, lanB } = subnets;
/** A failure deadline, not a measurement (etcd's start and a TLS handshake on a loaded machine). */
const REGISTERED_MS = 30_000;

test('the registry over TLS: a private CA and client certificates, from polo.cfg and from flags', async (t) => {
  if (!requireNetns(t)) return;
  const [A, B] = await subnets.lans();
  const pki = await makeTestPki(await lanA.tmpDir(), [A.host(1).address]);
  const cluster = await subnets.etcd([A.host(1)], { token: `e8t-${process.pid}`, tls: pki }, A.host(2));

  // polod on subnet B, its TLS files in polo.cfg.
  const polod = await startPolod(lanB, B.host(1), {
    groups: [GROUP_112],
    services: { db: { id: 'db', params: { port: 5432 } } },
    config: `[polo]\nregistry = ${cluster.endpoints}\nregistry_lease = 2\nregistry_cacert = ${pki.ca}\nregistry_cert = ${pki.clientCert}\nregistry_key = ${pki.clientKey}\n`,
  });
  t.after(() => polod.stop());
  await polod.waitLog(logIs('node registered in the registry'), 'registered over TLS', REGISTERED_MS);

  // marco on subnet A, the same files as flags: the node of the other subnet, through the registry.
  const registry = ['--registry', cluster.endpoints];
  const client = ['--registry-cert', pki.clientCert, '--registry-key', pki.clientKey];
  const found = await marcoNodes(A.host(2), ['request-for', 'db', '--timeout', '2000', ...registry, '--registry-cacert', pki.ca, ...client]);
  assert.deepEqual(found.nodes, [{ address: B.host(1).address, params: { port: 5432 } }]);
  assert.equal(found.run.stderr, '');

  // marcod, the same files in marco.cfg.
  const tlsKeys = `registry = ${cluster.endpoints}\nregistry_cacert = ${pki.ca}\nregistry_cert = ${pki.clientCert}\nregistry_key = ${pki.clientKey}\n`;
  const marcod = await startMarcod(lanA, A.host(2), { config: `${REFERENCE_MARCO_CFG}${tlsKeys}` });
  t.after(() => marcod.proc.stop());
  const [viaMarcod] = await rawRequests(A.host(2), [json({ Command: 'Request-For', Params: 'db' })], { barrier: false });
  assert.deepEqual(sortedNodes(viaMarcod?.reply), [{ Address: B.host(1).address, Params: { port: 5432 } }]);

  // No client certificate (etcd refuses the handshake), or another CA trusted (marco refuses
  // etcd's certificate): one warning line, and only what the LAN answers.
  const expected = {
    'without a client certificate': /^marco: warning: registry https:\/\/\S+ not read \(.*etcd refused the client certificate, or wants one .*\): LAN answers only$/,
    'trusting another CA': /^marco: warning: registry https:\/\/\S+ not read \(.*etcd's certificate is not signed by a trusted CA \(registry_cacert\).*\): LAN answers only$/,
  };
  for (const [why, args] of [
    ['without a client certificate', ['--registry-cacert', pki.ca]],
    ['trusting another CA', ['--registry-cacert', pki.otherCa, ...client]],
  ] as const) {
    const refused = await marcoNodes(A.host(2), ['request-for', 'db', '--timeout', '2000', ...registry, ...args]);
    assert.deepEqual(refused.nodes, [], why);
    const warnings = refused.run.stderr.split('\n').filter((l) => l.includes('warning'));
    assert.equal(warnings.length, 1, refused.run.stderr);
    assert.match(warnings[0] ?? '', expected[why], why);
  }
});
