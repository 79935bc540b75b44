/**
 * `npm run demo`'s script (dist/scripts/demo.js), run with stdout a pipe inside a namespace (its
 * fixed loopback ports cannot meet another run's): no ANSI escape in its output, and every
 * command it shows is the whole command it runs, flags included, so typing it (from the
 * checkout, while the demo's polod runs) gives the answer printed under it.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { requireNetns } from '../helpers/netns.js';
import { lanFixture } from '../helpers/lan-daemons.js';

const fixture = lanFixture({ name: 'demo7', hosts: 1, subnet: 75 });
const checkout = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

test('the demo shows the exact commands it runs, and no escape sequences on a pipe', async (t) => {
  if (!requireNetns(t)) return;
  const host = (await fixture.lan()).host(1);
  const res = await host.run([process.execPath, path.join(checkout, 'dist', 'scripts', 'demo.js')], { timeoutMs: 60_000 });
  assert.equal(res.code, 0, res.stdout + res.stderr);
  assert.ok(!res.stdout.includes('\u001b'), 'no ANSI escape when stdout is not a terminal');
  const lines = res.stdout.split('\n');
  const shown = lines.filter((l) => l.startsWith('$ '));
  assert.equal(shown.length, 6);
  for (const line of shown) {
    assert.match(line, /^\$ node dist\/bin\/marco\.cjs (discover|request-for|services) .*--interface 127\.0\.0\.1 --port 41337 --timeout 500$/);
  }
  const discover = lines.indexOf('$ node dist/bin/marco.cjs discover --interface 127.0.0.1 --port 41337 --timeout 500');
  assert.ok(discover >= 0);
  assert.equal(lines[discover + 1], 'ADDRESS    PARAMS');
  assert.match(lines[discover + 2] ?? '', /^127\.0\.0\.1 +role=demo hostname=demo-node$/);
});
