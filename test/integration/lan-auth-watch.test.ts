/**
 * Watchers in keyed grids across namespaces (docs/protocol.md §2.4, §8.5): h1 runs a keyed polod,
 * h3 plays an attacker that sends announcements and goodbyes to the group, and `marco watch` (h2)
 * and marcod's watch socket and warm view (h2, h4, h5) watch under each policy. Checked: under
 * `required` unsigned, forged, stale and replayed announcements and an unsigned goodbye change
 * nothing; under `preferred` an unsigned announcement is kept and marked `verified: false`,
 * forged, stale and replayed ones are dropped, and an unsigned goodbye does not remove a member
 * known from a signed announcement; under `off` everything is taken as before. marcod answers
 * from its warm view in a keyed grid, with its key from marco.cfg. A key rotation: polod signs
 * with the new key, and watchers holding both keys, or only the new one, follow it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { signDatagram, type GridKey } from '../../src/auth/gridAuth.js';
import { encodeAnnouncement, encodeGoodbye } from '../../src/membership/wire.js';
import { requireNetns, type LanHost } from '../helpers/netns.js';
import { GROUP_112, gridKeyFile, lanFixture, logIs, MARCO, startPolod, watchEvents, type WatchLine } from '../helpers/lan-daemons.js';
import { json, rawRequests, REFERENCE_MARCO_CFG, sortedNodes, startMarcod } from '../helpers/marcod-lan.js';
import type { Proc } from '../helpers/proc.js';
import { sendDatagrams } from '../helpers/udp-tools.js';
import { waitFor } from '../helpers/wait.js';
import { watchSocketClient } from '../helpers/watch-socket-client.js';

const fixture = lanFixture({ name: 'k10watch', hosts: 5, subnet: 200 });
const addr = (i: number): string => `10.201.200.${i}`;

const keyFile = (name: string, byte: number): Promise<{ file: string; key: GridKey }> => gridKeyFile(fixture, name, byte);

/** A source of watch events: `marco watch --json`, or a client of marcod's watch socket. */
interface Watcher {
  readonly name: string;
  events(): WatchLine[];
  end(): void;
}

function marcoWatch(host: LanHost, name: string, flags: readonly string[]): Watcher & { proc: Proc } {
  const proc = host.spawn([process.execPath, MARCO, 'watch', '--json', '--interface', host.address, ...flags]);
  return { name, proc, events: () => watchEvents(proc), end: () => void proc.stop() };
}

async function socketWatch(file: string, name: string): Promise<Watcher> {
  const client = await watchSocketClient(file, '{}');
  return { name, events: () => client.lines.map((l) => JSON.parse(l) as WatchLine), end: () => client.close() };
}

/** The attacker's events of a watcher: event, hostname, verified (absent under `off`). */
const story = (w: Watcher): string[] =>
  w
    .events()
    .filter((e) => e.address === addr(3))
    .map((e) => `${e.event} ${String(e.params['hostname'])}${e.verified === undefined ? '' : e.verified ? ' ✓' : ' ✗'}`);

const waitStory = (w: Watcher, last: string): Promise<string[]> =>
  waitFor(() => (story(w).at(-1) === last ? story(w) : undefined), { what: `${w.name}: "${last}" last (got ${JSON.stringify(story(w))})`, timeoutMs: 20_000 });

/** An announcement from the attacker's host (a long `Every`: it must not expire during the test). */
function announcement(instance: string, rev: number, hostname: string): Buffer {
  return Buffer.from(
    encodeAnnouncement({ instance, rev, every: 600_000, members: 2, params: { hostname }, services: [{ id: 'web', params: { port: 6666 } }], refs: [] }),
  );
}

test('watchers in keyed grids: unsigned, forged, stale and replayed announcements in each policy, marcod warm, a key rotation', async (t) => {
  if (!requireNetns(t)) return;
  const lan = await fixture.lan();
  const [h1, h2, h3, h4, h5] = [lan.host(1), lan.host(2), lan.host(3), lan.host(4), lan.host(5)];
  const [a, b, c] = [await keyFile('a.key', 0xa1), await keyFile('b.key', 0xb2), await keyFile('c.key', 0xc3)];
  const services = { web: { id: 'web', params: { port: 8080 } } };
  let polod = await startPolod(fixture, h1, { groups: [GROUP_112], services, extraArgs: ['--key', a.file] });
  t.after(() => polod.stop());

  const sockets = { required: path.join(await fixture.tmpDir(), 'required.sock'), preferred: path.join(await fixture.tmpDir(), 'preferred.sock'), off: path.join(await fixture.tmpDir(), 'off.sock') };
  const marcods = {
    // Its key from marco.cfg (key_files), the others' from --key.
    required: await startMarcod(fixture, h4, { config: `${REFERENCE_MARCO_CFG}key_files = ${a.file}\n`, args: ['--watch-socket', sockets.required] }),
    preferred: await startMarcod(fixture, h5, { args: ['--key', a.file, '--auth', 'preferred', '--watch-socket', sockets.preferred] }),
    off: await startMarcod(fixture, h2, { args: ['--key', a.file, '--auth', 'off', '--watch-socket', sockets.off] }),
  };
  for (const m of Object.values(marcods)) t.after(() => m.proc.stop());
  const watchers = {
    required: [marcoWatch(h2, 'marco watch (required)', ['--key', a.file]), await socketWatch(sockets.required, 'marcod (required)')],
    preferred: [marcoWatch(h2, 'marco watch (preferred)', ['--key', a.file, '--auth', 'preferred']), await socketWatch(sockets.preferred, 'marcod (preferred)')],
    off: [marcoWatch(h2, 'marco watch (off)', ['--key', a.file, '--auth', 'off']), await socketWatch(sockets.off, 'marcod (off)')],
  };
  const all = Object.values(watchers).flat();
  for (const w of all) t.after(() => w.end());

  // Everyone sees the keyed polod, marked verified where a policy applies.
  for (const [policy, list] of Object.entries(watchers)) {
    for (const w of list) {
      const up = await waitFor(() => w.events().find((e) => e.address === addr(1) && e.event === 'up'), { what: `${w.name}: up ${addr(1)}`, timeoutMs: 20_000 });
      assert.equal(up.verified, policy === 'off' ? undefined : true, w.name);
    }
  }

  const send = async (...payloads: Buffer[]): Promise<void> => {
    for (const p of payloads) await sendDatagrams(h3, { local: addr(3), targets: [GROUP_112], payloads: [p.toString('latin1')], count: 1, batch: 1 });
  };
  const signedA = (message: Buffer): Buffer => signDatagram(message, a.key).bytes;
  // Signed with another key under key a's id: the tag cannot match.
  const forgedA = (message: Buffer): Buffer => signDatagram(message, { ...c.key, id: a.key.id }).bytes;

  // 1. unsigned, forged, stale, then a valid announcement (whose arrival shows the others were read).
  const valid1 = signedA(announcement('00000000000000v1', 1, 'valid-1'));
  const stale = signDatagram(announcement('00000000000000s1', 1, 'stale'), a.key, { time: Math.floor(Date.now() / 1000) - 120 }).bytes;
  await send(announcement('00000000000000u1', 1, 'unsigned'), forgedA(announcement('00000000000000f1', 1, 'forged')), stale, valid1);
  for (const w of watchers.required) assert.deepEqual(await waitStory(w, 'up valid-1 ✓'), ['up valid-1 ✓'], w.name);
  for (const w of watchers.preferred) assert.deepEqual(await waitStory(w, 'update valid-1 ✓'), ['up unsigned ✗', 'update valid-1 ✓'], w.name);
  for (const w of watchers.off) assert.deepEqual(await waitStory(w, 'update valid-1'), ['up unsigned', 'update forged', 'update stale', 'update valid-1'], w.name);

  // 2. a signed goodbye, the first announcement replayed, an announcement of a new instance.
  await send(signedA(Buffer.from(encodeGoodbye('00000000000000v1'))), valid1, signedA(announcement('00000000000000v2', 1, 'valid-2')));
  for (const w of watchers.required) assert.deepEqual((await waitStory(w, 'up valid-2 ✓')).slice(1), ['down valid-1 ✓', 'up valid-2 ✓'], `${w.name}: the replay changed nothing`);
  for (const w of watchers.preferred) assert.deepEqual((await waitStory(w, 'up valid-2 ✓')).slice(2), ['down valid-1 ✓', 'up valid-2 ✓'], `${w.name}: the replay changed nothing`);
  for (const w of watchers.off) assert.deepEqual((await waitStory(w, 'update valid-2')).slice(4), ['down valid-1', 'up valid-1', 'update valid-2'], w.name);

  // 3. an unsigned goodbye of the signed member, then a signed update.
  await send(Buffer.from(encodeGoodbye('00000000000000v2')), signedA(announcement('00000000000000v2', 2, 'valid-3')));
  for (const w of watchers.required) assert.deepEqual((await waitStory(w, 'update valid-3 ✓')).slice(3), ['update valid-3 ✓'], `${w.name}: the unsigned goodbye changed nothing`);
  for (const w of watchers.preferred) assert.deepEqual((await waitStory(w, 'update valid-3 ✓')).slice(4), ['update valid-3 ✓'], `${w.name}: the unsigned goodbye changed nothing`);
  for (const w of watchers.off) assert.deepEqual((await waitStory(w, 'up valid-3')).slice(7), ['down valid-2', 'up valid-3'], w.name);

  // marcod answers from its warm view in the keyed grid: the polod and the valid announcer.
  for (const policy of ['required', 'preferred'] as const) {
    const marcod = marcods[policy];
    const fromView = (): number => marcod.logs(logIs('request answered', { source: 'view' })).length;
    const [reply] = await rawRequests(marcod.host, [json({ Command: 'Request-For', Params: 'web', timeout: 60_000 })]);
    assert.ok(fromView() > 0, `marcod (${policy}) answered from its view`);
    assert.deepEqual(sortedNodes(reply?.reply), [
      { Address: addr(1), Params: { port: 8080 } },
      { Address: addr(3), Params: { port: 6666 } },
    ], `marcod (${policy})`);
  }

  // A key rotation: polod now signs with b (a still verifies); watchers with b, or a and b, follow.
  await polod.stop();
  for (const w of [...watchers.required, ...watchers.preferred]) await waitFor(() => w.events().find((e) => e.address === addr(1) && e.event === 'down'), { what: `${w.name}: down ${addr(1)}`, timeoutMs: 20_000 });
  polod = await startPolod(fixture, h1, { groups: [GROUP_112], services, extraArgs: ['--key', b.file, '--key', a.file] });
  const rotated = [marcoWatch(h2, 'marco watch (key b)', ['--key', b.file]), marcoWatch(h4, 'marco watch (keys a, b)', ['--key', a.file, '--key', b.file])];
  for (const w of rotated) {
    t.after(() => w.end());
    const up = await waitFor(() => w.events().find((e) => e.address === addr(1) && e.event === 'up'), { what: `${w.name}: up ${addr(1)}`, timeoutMs: 20_000 });
    assert.equal(up.verified, true, w.name);
  }
});
