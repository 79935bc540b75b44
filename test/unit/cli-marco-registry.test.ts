/**
 * `marco --registry` when the registry cannot be read: the LAN's answers are printed as usual
 * and one warning line names the registry, however many reads failed. The registry here is a
 * closed TCP port on loopback (connection refused at once); the LAN is a memory network.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { ExitCode } from '../../src/cli/common.js';
import { main } from '../../src/cli/marco.js';
import { MemoryNetwork } from '../../src/transport/memory.js';
import { FakePolo, holdEventLoop } from '../helpers/fake-polod.js';
import { runMain } from '../helpers/cli-io.js';

holdEventLoop();

/** A loopback port nothing listens on: bound by the kernel's choice, then closed. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

test('an unreachable registry: LAN answers printed, one warning line naming it', { timeout: 20_000 }, async () => {
  const lan = new MemoryNetwork();
  await FakePolo.start(lan, '10.0.0.2', () => ({ Command: 'Polo', Params: { hostname: 'polo-a' } }));
  const registry = `http://127.0.0.1:${await closedPort()}`;
  // No --max-nodes: the query runs to its deadline, so the failed read is not cut short by its end.
  const { code, stdout, stderr } = await runMain((io) => main(['discover', '--registry', registry, '--timeout', '1500'], io, { transport: lan.host('10.0.0.1') }));
  assert.equal(code, ExitCode.OK);
  assert.equal(stdout, 'ADDRESS   PARAMS\n10.0.0.2  hostname=polo-a\n');
  const lines = stderr.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, stderr);
  assert.match(lines[0] ?? '', new RegExp(`^marco: warning: registry ${registry} not read \\(.+\\): LAN answers only$`));
});
