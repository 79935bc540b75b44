/**
 * Self-test of the namespace LAN harness: multicast from one namespace reaches a group member in
 * another, its unicast answer comes back from the member's own address, and destroy() leaves no
 * namespace and no process behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createLan, requireNetns } from '../helpers/netns.js';

const GROUP = '224.0.0.250';
const PORT = 41999;

/** Joins GROUP on the interface address argv[1], reports each query, answers it by unicast. */
const RESPONDER = `
const dgram = require('node:dgram');
const [addr] = process.argv.slice(1);
const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
s.on('message', (msg, r) => {
  console.log('query ' + JSON.stringify({ from: r.address, body: msg.toString() }));
  s.send('polo', r.port, r.address);
});
s.bind(${PORT}, () => { s.addMembership('${GROUP}', addr); console.log('ready'); });
`;

/** Sends to GROUP out of the interface address argv[1]; prints the first answer and exits. */
const ASKER = `
const dgram = require('node:dgram');
const [addr] = process.argv.slice(1);
const s = dgram.createSocket('udp4');
s.on('message', (msg, r) => {
  console.log(JSON.stringify({ from: r.address, port: r.port, body: msg.toString() }));
  process.exit(0);
});
s.bind(0, addr, () => {
  s.setMulticastInterface(addr);
  // Re-sent until answered: the harness must not depend on the first datagram surviving.
  const ask = () => s.send('marco', ${PORT}, '${GROUP}');
  ask();
  setInterval(ask, 250).unref();
  setTimeout(() => { console.error('no answer'); process.exit(1); }, 4000);
});
`;

test('a 3-host namespace LAN carries multicast queries and unicast answers', async (t) => {
  if (!requireNetns(t)) return;
  const lan = await createLan({ name: 'nsself', hosts: 3, subnet: 7 });
  const namespaces = [...lan.namespaces];
  try {
    assert.equal(namespaces.length, 4);
    const h1 = lan.host(1);
    const h2 = lan.host(2);
    assert.equal(h1.address, '10.201.7.1');

    const responder = h1.spawn([process.execPath, '-e', RESPONDER, h1.address]);
    await responder.waitForLine((l) => l === 'ready', 'the responder to join the group');

    const res = await h2.run([process.execPath, '-e', ASKER, h2.address], { timeoutMs: 8000 });
    assert.equal(res.code, 0, `asker failed: ${res.stderr}`);
    const answer = JSON.parse(res.stdout) as { from: string; port: number; body: string };
    assert.deepEqual(answer, { from: h1.address, port: PORT, body: 'polo' });

    const query = await responder.waitForLine((l) => l.startsWith('query '), 'the query to be logged');
    assert.deepEqual(JSON.parse(query.slice('query '.length)), { from: h2.address, body: 'marco' });

    await lan.destroy();
    assert.equal((await responder.exited).signal, 'SIGKILL');
  } finally {
    await lan.destroy();
  }
  await lan.destroy(); // idempotent
  const left = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  for (const ns of namespaces) assert.ok(!new RegExp(`^${ns}\\b`, 'm').test(left), `${ns} still exists`);
});
