/**
 * A real polod's publish API under restarts, crashes and hostile clients, on a namespace LAN:
 * permanent services survive a restart, SIGKILL in the middle of a burst of permanent publishes
 * loses no acknowledged service and leaves no half-written file, and bad input or too many
 * connections never stop polod from serving everyone else.
 *
 * The test acts as root: it reads polod's secret from the state folder and mints root's token
 * with it, rather than asking for a token file in /root.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { issueToken } from '../../src/auth/token.js';
import { isSkippedFileName } from '../../src/config/serviceDir.js';
import { fileNameForId } from '../../src/util/safePath.js';
import { createLan, netnsAvailable, requireNetns, type Lan, type LanHost } from '../helpers/netns.js';
import type { Proc } from '../helpers/proc.js';
import { waitFor } from '../helpers/wait.js';
import { overTls } from '../helpers/publish-tls.js';
import { ReplyLineClient } from '../helpers/reply-lines.js';

const DIST = path.resolve(import.meta.dirname, '..', '..');
const POLOD = path.join(DIST, 'src', 'cli', 'polod.js');
const MARCO = path.join(DIST, 'src', 'cli', 'marco.js');

/**
 * `marco request-for <id>` from `host`: the nodes that answered. With `expect`, the query ends
 * once that many answered (a 10 s deadline only bounds a failure); without, it waits out marco's
 * default second (for a service that must not be answered, or a poll).
 */
async function requestFor(host: LanHost, id: string, expect?: number): Promise<{ address: string; params: unknown }[]> {
  const limit = expect === undefined ? [] : ['--max-nodes', String(expect), '--timeout', '10000'];
  const r = await host.run([process.execPath, MARCO, 'request-for', id, '--interface', host.address, ...limit, '--json'], { timeoutMs: 15_000 });
  assert.ok(r.code === 0 || r.code === 1, `marco failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as { address: string; params: unknown }[];
}

/** Ids listed by polod's List command. */
async function listedIds(socket: string): Promise<Set<string>> {
  const c = await ReplyLineClient.unix(socket);
  const reply = (await c.request({ Command: 'List' })) as { OK: { id: string }[] };
  c.close();
  return new Set(reply.OK.map((s) => s.id));
}

describe('publish API robustness', () => {
  let lan: Lan | undefined;
  let state: string | undefined;
  let polod: Proc | undefined;
  let socket: string;
  let rootToken: string;

  const startPolod = async (): Promise<Proc> => {
    const h1 = lan!.host(1);
    const p = h1.spawn([process.execPath, POLOD, '--state-dir', state!, '--interface', h1.address, '--hostname', 'h1']);
    await p.waitForJsonLog((o) => o['msg'] === 'publish API listening', 'polod to open its publish API', 30_000);
    return p;
  };

  before(async () => {
    if (!netnsAvailable().ok) return;
    state = await mkdtemp(path.join(tmpdir(), 'mp-pubr-'));
    socket = path.join(state, 'polod.sock');
    lan = await createLan({ name: 'pub2', hosts: 2, subnet: 71 });
    polod = await startPolod();
    rootToken = issueToken(await readFile(path.join(state, 'secret')), 0);
  });

  after(async () => {
    await lan?.destroy();
    if (state !== undefined) await rm(state, { recursive: true, force: true });
  });

  it('keeps permanent services across a restart, and published ones across a reload', async (t) => {
    if (!requireNetns(t)) return;
    const c = await ReplyLineClient.unix(socket);
    const publish = (service: string, permanent: boolean): Promise<unknown> =>
      c.request({ Command: 'Publish', Args: { token: rootToken, service, params: { permanent }, permanent, root: true } });
    assert.deepEqual(await publish('keep', true), { OK: 'keep' });
    assert.deepEqual(await publish('temp', false), { OK: 'temp' });
    c.close();
    polod!.kill('SIGUSR1');
    await polod!.waitForJsonLog((o) => o['msg'] === 'services reloaded', 'the reload to finish');
    const h2 = lan!.host(2);
    for (const id of ['keep', 'temp']) {
      const found = await waitFor(async () => ((await requestFor(h2, id)).length > 0 ? true : undefined), {
        what: `${id} to be answered after the reload`,
        timeoutMs: 15_000,
      });
      assert.equal(found, true);
    }
    assert.equal((await polod!.stop()).code, 0);
    polod = await startPolod();
    assert.deepEqual(await requestFor(h2, 'keep', 1), [{ address: lan!.host(1).address, params: { permanent: true } }]);
    // 'keep' was answered just now: the restarted polod serves, and has a second to answer 'temp'.
    assert.deepEqual(await requestFor(h2, 'temp'), []);
  });

  it('loses no acknowledged permanent service and leaves no partial file when SIGKILLed mid-burst', async (t) => {
    if (!requireNetns(t)) return;
    const acked: string[] = [];
    let killed = false;
    const worker = async (w: number): Promise<void> => {
      const c = await ReplyLineClient.unix(socket);
      for (let i = 0; !killed || !c.isClosed; i++) {
        const id = `burst${w}_${i}`;
        const reply = await c.request({
          Command: 'Publish',
          Args: { token: rootToken, service: id, params: { w, i }, permanent: true, root: true },
        });
        if (reply === null) break; // polod is gone
        assert.deepEqual(reply, { OK: id });
        acked.push(id);
      }
      c.close();
    };
    const workers = [0, 1, 2, 3].map(worker);
    await waitFor(() => acked.length >= 40, { what: '40 acknowledged publishes', timeoutMs: 30_000 });
    killed = true;
    polod!.kill('SIGKILL');
    assert.equal((await polod!.exited).signal, 'SIGKILL');
    await Promise.all(workers);

    // Every file polod would load parses as a service file named after its id; anything else
    // is a hidden temporary file that the loader skips.
    const dir = path.join(state!, 'services');
    for (const name of await readdir(dir)) {
      if (isSkippedFileName(name)) continue;
      const doc = JSON.parse(await readFile(path.join(dir, name), 'utf8')) as { id: string; disabled: boolean };
      assert.equal(fileNameForId(doc.id), name);
      assert.equal(doc.disabled, false);
    }

    polod = await startPolod();
    const listed = await listedIds(socket);
    const lost = acked.filter((id) => !listed.has(id));
    assert.deepEqual(lost, [], 'acknowledged services missing after the restart');
    const h1 = lan!.host(1);
    for (const id of [acked[0] as string, acked[acked.length - 1] as string]) {
      const [w, i] = id.slice('burst'.length).split('_').map(Number);
      assert.deepEqual(await requestFor(lan!.host(2), id, 1), [{ address: h1.address, params: { w, i } }]);
    }
  });

  it('answers bad input with an error, over TLS and the Unix socket', async (t) => {
    if (!requireNetns(t)) return;
    const replies = await overTls(lan!.host(1), [
      'this is not JSON',
      '{"Args": {}}',
      '{"Command": "Service-info", "Args": {"service": "x"}}',
      JSON.stringify({ Command: 'Publish', Args: { token: rootToken, service: 'x', permanent: 'yes' } }),
      JSON.stringify({ Command: 'Publish', Args: { token: rootToken, service: 'x', root: 1 } }),
      JSON.stringify({ Command: 'Publish', Args: { token: rootToken, service: 'x', params: [1] } }),
      JSON.stringify({ Command: 'Publish', Args: { token: rootToken, service: 'x', multicast_groups: ['224.0.0.200'] } }),
      JSON.stringify({ Command: 'Publish', Args: { token: rootToken, service: '../../etc/x', root: true, permanent: true } }),
    ]);
    assert.deepEqual(replies, [
      { Error: 'Malformed JSON' },
      { Error: 'Missing command' },
      { Error: 'Unknown command' },
      { Error: 'permanent must be boolean' },
      { Error: 'root must be boolean' },
      { Error: 'params must be an object' },
      { Error: "Invalid multicast group address '224.0.0.200': The instance is not a member of this group" },
      { Error: 'The name of the service ../../etc/x is invalid: it contains a path separator' },
    ]);
    const big = await ReplyLineClient.unix(socket);
    assert.deepEqual(await big.request(`{"Command": "List", "pad": "${'x'.repeat(70 * 1024)}"}\n`), { Error: 'Request too large' });
    await big.closed;
  });

  it('keeps serving while a client stalls mid-request and while too many connect', async (t) => {
    if (!requireNetns(t)) return;
    const stalled = await ReplyLineClient.unix(socket);
    stalled.socket.write('{"Command": "Publish", "Args": {"token": "');
    const other = await ReplyLineClient.unix(socket);
    assert.ok(Array.isArray(((await other.request({ Command: 'List' })) as { OK: unknown }).OK));
    other.close();
    stalled.close();
    await stalled.closed;

    // 300 connections at once, each asking for the list: every one gets a reply or is closed
    // (past the limit, 256, the connection idle the longest makes room, or the new one is
    // closed when none is idle), and polod survives.
    const clients = await Promise.all(Array.from({ length: 300 }, () => ReplyLineClient.unix(socket)));
    const replies = await Promise.all(clients.map((c) => c.request({ Command: 'List' })));
    const served = replies.filter((r) => r !== null).length;
    assert.ok(served >= 1, `served ${served}`);
    for (const r of replies) if (r !== null) assert.ok(Array.isArray((r as { OK: unknown }).OK));
    for (const c of clients) c.close();
    await Promise.all(clients.map((c) => c.closed));
    const after = await waitFor(
      async () => {
        const c = await ReplyLineClient.unix(socket);
        const r = await c.request({ Command: 'List' });
        c.close();
        return r ?? undefined;
      },
      { what: 'polod to serve a new connection once the others closed' },
    );
    assert.ok(Array.isArray((after as { OK: unknown }).OK));
    assert.deepEqual(await requestFor(lan!.host(2), 'keep', 1), [{ address: lan!.host(1).address, params: { permanent: true } }]);
  });

  it('refuses to start a second polod whose publish port is taken (exit 3, one line)', async (t) => {
    if (!requireNetns(t)) return;
    const other = await mkdtemp(path.join(tmpdir(), 'mp-pubr2-'));
    try {
      const h1 = lan!.host(1);
      const r = await h1.run([process.execPath, POLOD, '--state-dir', other, '--interface', h1.address, '--hostname', 'h1b'], {
        timeoutMs: 30_000,
      });
      assert.equal(r.code, 3, r.stderr);
      const lines = r.stderr.split('\n').filter((l) => l.startsWith('polod: '));
      assert.equal(lines.length, 1);
      assert.match(lines[0] as string, /cannot listen on 127\.0\.0\.1:1390: address already in use/);
      // The first polod is unaffected.
      assert.ok((await listedIds(socket)).has('keep'));
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });
});
