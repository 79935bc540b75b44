/**
 * Talking to polod's publish API over TLS from inside a namespace host, as the reference
 * bindings do: shared by the publish integration tests.
 */
import assert from 'node:assert/strict';
import type { LanHost } from './netns.js';

/**
 * A TLS client run inside a namespace: connects to 127.0.0.1:1390 without checking the
 * certificate (as the reference bindings do), writes each request of the JSON array on stdin
 * exactly as given (one write, no delimiter), reads one reply line after each, prints them.
 */
const TLS_CLIENT = `
const tls = require('node:tls');
const requests = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));
const s = tls.connect({ host: '127.0.0.1', port: 1390, rejectUnauthorized: false }, async () => {
  let buf = '';
  let closed = false;
  const waiters = [];
  s.setEncoding('utf8');
  s.on('data', (d) => { buf += d; waiters.splice(0).forEach((w) => w()); });
  s.on('close', () => { closed = true; waiters.splice(0).forEach((w) => w()); });
  const line = async () => {
    for (;;) {
      const i = buf.indexOf('\\n');
      if (i >= 0) { const l = buf.slice(0, i); buf = buf.slice(i + 1); return l; }
      if (closed) return null;
      await new Promise((r) => waiters.push(r));
    }
  };
  const replies = [];
  for (const r of requests) { s.write(r); replies.push(await line()); }
  console.log(JSON.stringify(replies));
  s.end();
});
s.on('error', (e) => { console.error(e.message); process.exit(2); });
`;

/**
 * Sends requests over TLS from inside `host`; returns the parsed replies (null = closed).
 * `prefix` runs the client through another command (e.g. setpriv, to connect as a given user).
 */
export async function overTls(host: LanHost, requests: string[], prefix: readonly string[] = []): Promise<unknown[]> {
  const r = await host.run([...prefix, process.execPath, '-e', TLS_CLIENT], { input: JSON.stringify(requests), timeoutMs: 15_000 });
  assert.equal(r.code, 0, `TLS client failed: ${r.stderr}`);
  return (JSON.parse(r.stdout) as (string | null)[]).map((l) => (l === null ? null : (JSON.parse(l) as unknown)));
}
