/**
 * Health checks with the real polod in a network namespace: a service file with a TCP check is
 * offered only while a program listens on its port (a real listener started and killed in the
 * namespace), and `polo list` shows the check's state all along.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { lanFixture, marcoNodes, POLOD, startPolod } from '../helpers/lan-daemons.js';
import { requireNetns, type LanHost } from '../helpers/netns.js';
import { waitFor } from '../helpers/wait.js';

const fixture = lanFixture({ name: 'hchk', hosts: 1, subnet: 120 });
const GROUP = '224.0.0.112';
const POLO = path.join(path.dirname(POLOD), 'polo.js');
const PORT = 7001;

/** A TCP listener on 127.0.0.1:port inside the host's namespace, until killed. */
function listen(host: LanHost, port: number) {
  const script = `require('node:net').createServer((s) => s.destroy()).listen(${port}, '127.0.0.1', () => console.log('listening'))`;
  return host.spawn([process.execPath, '-e', script]);
}

test('a service with a TCP check is offered only while its port listens', async (t) => {
  if (!requireNetns(t)) return;
  const lan = await fixture.lan();
  const host = lan.host(1);
  const polod = await startPolod(fixture, host, {
    groups: [GROUP],
    services: { db: { id: 'db', params: { port: PORT }, check: { target: `tcp:${PORT}`, interval_ms: 200, failures: 1 } } },
  });
  t.after(() => polod.stop());
  const offered = async (): Promise<boolean> => {
    const run = await marcoNodes(host, ['request-for', 'db', '--group', GROUP, '--interface', host.address, '--timeout', '400', '--max-nodes', '1']);
    return run.nodes.length === 1;
  };
  const checkState = async (): Promise<string | undefined> => {
    const res = await host.run([process.execPath, POLO, '--state-dir', polod.stateDir, 'list', '--json']);
    assert.equal(res.code, 0, res.stderr);
    const db = (JSON.parse(res.stdout) as { id: string; check?: { state: string } }[]).find((s) => s.id === 'db');
    return db?.check?.state;
  };

  await waitFor(async () => (await checkState()) === 'failing', { what: "db's check failing", timeoutMs: 10_000 });
  assert.equal(await offered(), false, 'nobody listens: db is not offered');

  const listener = listen(host, PORT);
  t.after(() => listener.stop());
  await waitFor(offered, { what: 'db offered once its port listens', timeoutMs: 10_000 });
  assert.equal(await checkState(), 'passing');

  await listener.stop();
  await waitFor(async () => !(await offered()), { what: 'db withdrawn once the listener is gone', timeoutMs: 10_000 });
  assert.equal(await checkState(), 'failing');
});
