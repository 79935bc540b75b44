/**
 * Authenticated grids across namespaces (docs/protocol.md §2.4): h1 runs a keyed polod, h3 an
 * unkeyed one (a stand-in for a reference node: its replies carry no authenticator), h2 asks.
 * Checked: unsigned, forged, stale and replayed queries get no answer from the keyed node;
 * unsigned replies are dropped under `required` and marked `verified: false` under `preferred`;
 * a key rotation (two keys, either verifies); a per-group key; a bad key file stops polod.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { signDatagram, type GridKey } from '../../src/auth/gridAuth.js';
import { requireNetns } from '../helpers/netns.js';
import { GROUP_112, GROUP_113, gridKeyFile, lanFixture, logIs, marcoNodes, POLOD, runMarco, startPolod, type JsonNode } from '../helpers/lan-daemons.js';
import { sendDatagrams } from '../helpers/udp-tools.js';
import { rawRequests, sortedNodes, startMarcod } from '../helpers/marcod-lan.js';

const fixture = lanFixture({ name: 'auth', hosts: 3, subnet: 47 });
const addr = (i: number): string => `10.201.47.${i}`;
const WEB = { port: 8080 };

const keyFile = (name: string, byte: number): Promise<{ file: string; key: GridKey }> => gridKeyFile(fixture, name, byte);

const discover = async (flags: readonly string[], group = GROUP_112): Promise<JsonNode[]> =>
  (await marcoNodes(lan2(), ['discover', '--group', group, '--timeout', '1500', ...flags])).nodes;
let lanHost2: Parameters<typeof marcoNodes>[0] | undefined;
const lan2 = (): Parameters<typeof marcoNodes>[0] => {
  if (!lanHost2) throw new Error('no LAN yet');
  return lanHost2;
};

test('keyed grids: required, preferred, forged, stale, replayed, rotated and per-group keys', async (t) => {
  if (!requireNetns(t)) return;
  const lan = await fixture.lan();
  const [h1, h2, h3] = [lan.host(1), lan.host(2), lan.host(3)];
  lanHost2 = h2;
  const [a, b, c] = [await keyFile('a.key', 0xa1), await keyFile('b.key', 0xb2), await keyFile('c.key', 0xc3)];
  const services = { web: { id: 'web', params: WEB } };
  const unkeyed = await startPolod(fixture, h3, { groups: [GROUP_112], services });

  await t.test('required: only signed, fresh, first-seen queries are answered; unsigned replies are dropped', async () => {
    const keyed = await startPolod(fixture, h1, { groups: [GROUP_112], services, logLevel: 'debug', extraArgs: ['--key', a.file] });
    assert.equal(keyed.logs(logIs('polod started'))[0]?.['auth'], 'required');
    assert.deepEqual(await discover(['--key', a.file, '--json']), [{ address: addr(1), params: { hostname: 'h1' }, verified: true }], 'the unkeyed node is dropped');
    assert.deepEqual(
      (await discover([])).map((n) => n.address),
      [addr(3)],
      'an unsigned query: the keyed node is silent',
    );
    assert.deepEqual(await discover(['--key', c.file]), [], 'a wrong key: nobody');
    await keyed.waitLog(logIs('query refused by grid authentication', { reason: 'unknown-key' }), 'the wrong key refused');
    const services1 = await runMarco(h2, ['services', addr(1), '--key', a.file, '--timeout', '3000', '--json']);
    assert.deepEqual(services1.json, { address: addr(1), services: [{ id: 'web', params: WEB }], verified: true });

    // Replayed, forged and stale copies, sent raw from h2 (h3 answers whatever it parses).
    const signed = signDatagram(Buffer.from('{"Command":"Marco"}'), a.key).bytes.toString();
    const replayed = await sendDatagrams(h2, { local: addr(2), targets: [GROUP_112], payloads: [signed], count: 3, batch: 1 });
    assert.equal(replayed.from[addr(1)], 1, 'a replayed query gets no second answer');
    const forged = signed.replace('"Command":"Marco"', '"Command":"Discover"');
    const stale = signDatagram(Buffer.from('{"Command":"Marco"}'), a.key, { time: Math.floor(Date.now() / 1000) - 120 }).bytes.toString();
    const fresh = signDatagram(Buffer.from('{"Command":"Marco"}'), a.key).bytes.toString();
    // The fresh one goes last: its answer arriving shows the others were handled before it.
    const mixed = await sendDatagrams(h2, { local: addr(2), targets: [GROUP_112], payloads: [forged, stale, fresh], count: 3, batch: 1 });
    assert.equal(mixed.from[addr(1)], 1, 'only the fresh, intact query is answered');
    await keyed.waitLog(logIs('query refused by grid authentication', { reason: 'bad-tag' }), 'the forged query refused');
    await keyed.waitLog(logIs('query refused by grid authentication', { reason: 'stale' }), 'the stale query refused');
    await keyed.waitLog(logIs('query refused by grid authentication', { reason: 'replayed' }), 'the replay refused');
    await keyed.stop();
  });

  await t.test('preferred: a mixed grid with an unkeyed node, every result marked', async () => {
    const keyed = await startPolod(fixture, h1, { groups: [GROUP_112], services, extraArgs: ['--key', a.file, '--auth', 'preferred'] });
    assert.deepEqual(
      await discover(['--key', a.file, '--auth', 'preferred']),
      [
        { address: addr(1), params: { hostname: 'h1' }, verified: true },
        { address: addr(3), params: { hostname: 'h3' }, verified: false },
      ],
    );
    assert.deepEqual(
      (await discover([])).map((n) => n.address),
      [addr(1), addr(3)],
      'an unsigned (reference) query is answered by the keyed node too',
    );
    await keyed.stop();
  });

  await t.test('key rotation: the first key signs, every key verifies; a per-group key', async () => {
    const keyed = await startPolod(fixture, h1, {
      groups: [GROUP_112, GROUP_113],
      services,
      extraArgs: ['--key', b.file, '--key', a.file, '--key', `${GROUP_113}=${c.file}`],
    });
    for (const flags of [['--key', a.file], ['--key', b.file], ['--key', a.file, '--key', b.file]]) {
      assert.deepEqual(await discover(flags), [{ address: addr(1), params: { hostname: 'h1' }, verified: true }], flags.join(' '));
    }
    assert.deepEqual(await discover(['--key', c.file]), [], 'the other group\'s key does not open this one');
    assert.deepEqual(await discover(['--key', c.file], GROUP_113), [{ address: addr(1), params: { hostname: 'h1' }, verified: true }]);
    assert.deepEqual(await discover(['--key', a.file], GROUP_113), [], 'the per-group key replaces the others there');
    await keyed.stop();
  });

  await t.test('marcod with a key: signed queries, only verified replies passed on', async () => {
    const keyed = await startPolod(fixture, h1, { groups: [GROUP_112], services, extraArgs: ['--key', a.file] });
    const marcod = await startMarcod(fixture, h2, { args: ['--key', a.file] });
    const [reply] = await rawRequests(h2, [{ text: '{"Command":"Marco","max_nodes":0,"exclude":[],"timeout":1500,"group":"224.0.0.112"}' }]);
    assert.deepEqual(sortedNodes(reply?.reply), [{ Address: addr(1), Params: { hostname: 'h1' } }], 'the unkeyed node is not passed on');
    assert.ok(marcod.alive());
    await marcod.proc.stop();
    await keyed.stop();
  });

  await t.test('a key file that is too short stops polod, and marco, with exit 2 naming it', async () => {
    const short = path.join(await fixture.tmpDir(), 'short.key');
    await writeFile(short, Buffer.alloc(16, 1), { mode: 0o600 });
    const res = await h1.run([process.execPath, POLOD, '--key', short, '--state-dir', await fixture.tmpDir()]);
    assert.equal(res.code, 2);
    assert.ok(res.stderr.includes(`${short}: the grid key has 16 bytes`), res.stderr);
    const usage = await runMarco(h2, ['discover', '--key', short]);
    assert.equal(usage.code, 2);
    assert.ok(usage.stderr.includes(`${short}: the grid key has 16 bytes`), usage.stderr);
  });
  await unkeyed.stop();
});
