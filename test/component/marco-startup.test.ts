/**
 * What keeps the installed `marco`'s start-up short (dist/bin, scripts/bundle-marco.mjs),
 * checked in fresh Node processes, since a module loaded once stays loaded: a fresh Node takes
 * the code cache the build wrote, and loading marco and opening its query socket loads none of
 * Node's crypto, net, stream or cluster modules (transport/udp.ts bindQuerySocketDirectly,
 * auth/gridAuth.ts) while the socket still sends and receives. Loopback only. How much time each
 * saves is measured by `npm run bench -- startup`, not here.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** This file runs as dist/test/component/marco-startup.test.js. */
const DIST = path.resolve(here, '..', '..');
const MARCO = path.join(DIST, 'bin', 'marco.cjs');
const UDP = pathToFileURL(path.join(DIST, 'src', 'transport', 'udp.js')).href;

/** Runs `code` (an ES module) in a fresh `node` with no NODE_OPTIONS, as the build checks it; returns its stdout. */
function inFreshNode(code: string): string {
  const env = { ...process.env };
  delete env['NODE_OPTIONS'];
  const res = spawnSync(process.execPath, ['--input-type=module', '-e', code], { env, encoding: 'utf8', timeout: 60_000 });
  assert.equal(res.status, 0, `child failed: ${res.stderr}`);
  return res.stdout;
}

test('a fresh node compiles the installed marco from the code cache the build wrote', () => {
  const status = inFreshNode(`
    import { createRequire } from 'node:module';
    process.stdout.write(createRequire(import.meta.url)(${JSON.stringify(MARCO)}).codeCache.status);
  `);
  assert.equal(status, 'accepted');
});

test('loading marco and opening a query socket loads no crypto, net, stream or cluster module; the socket sends and receives', () => {
  const out = inFreshNode(`
    import { createRequire } from 'node:module';
    const before = process.moduleLoadList.length;
    createRequire(import.meta.url)(${JSON.stringify(MARCO)});
    const { UdpTransport } = await import(${JSON.stringify(UDP)});
    let received;
    const got = new Promise((resolve) => (received = resolve));
    const socket = await new UdpTransport().openQuerySocket({ ttl: 1, iface: '127.0.0.1' }, (data, from) =>
      received({ text: Buffer.from(data).toString(), port: from.port }),
    );
    await socket.send(Buffer.from('hello'), socket.port, '127.0.0.1');
    const message = await got;
    const port = socket.port;
    await socket.close();
    const loaded = process.moduleLoadList.slice(before).filter((m) => /^NativeModule (crypto|net|stream|cluster)$/.test(m));
    process.stdout.write(JSON.stringify({ message, port, loaded }));
  `);
  const { message, port, loaded } = JSON.parse(out) as { message: { text: string; port: number }; port: number; loaded: string[] };
  assert.deepEqual(message, { text: 'hello', port }, 'the socket received its own datagram, from its own port');
  assert.ok(port > 0);
  assert.deepEqual(loaded, []);
});
