/**
 * The publish API of a real polod, with real Unix users, on a namespace LAN: tokens land in the
 * users' homes, a user's service is discovered from another host with the real `marco`
 * command, and the ownership and privilege rules hold against forged and borrowed tokens.
 *
 * polod runs in host h1 with `--state-dir`, so it writes nothing under /etc. The TLS endpoint
 * listens on h1's own loopback, so TLS clients run inside h1 (`ip netns exec`); the Unix
 * socket is a file, reachable from the test process directly. To act as a user, the test
 * (root) reads that user's token file and sends it, which is what their binding does.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { issueToken } from '../../src/auth/token.js';
import { createLan, netnsAvailable, requireNetns, type Lan, type LanHost } from '../helpers/netns.js';
import type { Proc } from '../helpers/proc.js';
import { waitFor } from '../helpers/wait.js';
import { overTls } from '../helpers/publish-tls.js';
import { admin, createGroup, removeGroup, removeUsers, RUN_TAG, userNames } from '../helpers/unix-users.js';

const DIST = path.resolve(import.meta.dirname, '..', '..');
const POLOD = path.join(DIST, 'src', 'cli', 'polod.js');
const MARCO = path.join(DIST, 'src', 'cli', 'marco.js');
const G1 = '224.0.0.112';
const isRoot = process.getuid?.() === 0;

/**
 * Test users `mppa<tag>`, `mppb<tag>`, `mppc<tag>` (test/helpers/unix-users.ts: this run's tag; word
 * characters only, as the default verify_regexp wants). CAROL is a member of the superuser group.
 */
const USERS = userNames('mpp', 3);
const [ALICE, BOB, CAROL] = USERS as [string, string, string];
/** polod's superuser group (`superuser_group`), this run's own: another run neither shares nor deletes it. */
const SUPERUSERS = `mppg${RUN_TAG}`;

const uidOf = (name: string): number => Number(spawnSync('id', ['-u', name], { encoding: 'utf8' }).stdout.trim());
const homeOf = (name: string): string => `/home/${name}`;

/** JSON as Python's json.dumps writes it: `", "` and `": "`, non-ASCII as \\uXXXX. */
function pyDumps(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(pyDumps).join(', ')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value).map(([k, v]) => `${pyDumps(k)}: ${pyDumps(v)}`).join(', ')}}`;
  }
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A Register request byte for byte as the reference Python binding sends it. */
function register(token: string, service: string, params: object, root: boolean, groups = [G1]): string {
  return pyDumps({
    Command: 'Register',
    Args: { token, service, params, multicast_groups: groups, permanent: false, root },
  });
}

/** Sends newline-delimited requests over the Unix socket, all in one write; returns the replies. */
function overSocket(file: string, requests: object[]): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ path: file }, () => s.write(requests.map((r) => `${JSON.stringify(r)}\n`).join('')));
    let buf = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      buf += d;
      const lines = buf.split('\n').filter((l) => l !== '');
      if (lines.length >= requests.length) {
        s.end();
        resolve(lines.map((l) => JSON.parse(l) as unknown));
      }
    });
    s.on('error', reject);
  });
}

/**
 * `marco request-for <id>` from `host`: the nodes that answered (address and params). With
 * `expect`, the query ends once that many answered (a 10 s deadline only bounds a failure);
 * without, it waits out marco's default second (for a service that must not be answered, or a poll).
 */
async function requestFor(host: LanHost, id: string, expect?: number): Promise<{ address: string; params: unknown }[]> {
  const limit = expect === undefined ? [] : ['--max-nodes', String(expect), '--timeout', '10000'];
  const r = await host.run([process.execPath, MARCO, 'request-for', id, '--interface', host.address, ...limit, '--json'], { timeoutMs: 15_000 });
  assert.ok(r.code === 0 || r.code === 1, `marco failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as { address: string; params: unknown }[];
}

describe('publish API with real users', { skip: !isRoot && 'needs root to create users' }, () => {
  let lan: Lan | undefined;
  let polod: Proc | undefined;
  let state: string | undefined;
  let socket: string;
  const tokens = new Map<string, string>();

  before(async () => {
    if (!netnsAvailable().ok) return;
    await removeUsers(USERS);
    await createGroup(SUPERUSERS);
    for (const u of USERS) {
      const extra = u === CAROL ? ['-G', SUPERUSERS] : [];
      await admin(['useradd', '-m', '-d', homeOf(u), '-s', '/bin/sh', ...extra, u]);
    }
    state = await mkdtemp(path.join(tmpdir(), 'mp-pubu-'));
    socket = path.join(state, 'polod.sock');
    lan = await createLan({ name: 'pub1', hosts: 2, subnet: 70 });
    const h1 = lan.host(1);
    const config = path.join(state, 'polo.cfg');
    await writeFile(config, `[polo]\nsuperuser_group = ${SUPERUSERS}\n`);
    polod = h1.spawn([process.execPath, POLOD, '--config', config, '--state-dir', state, '--interface', h1.address, '--hostname', 'h1']);
    await polod.waitForJsonLog((o) => o['msg'] === 'publish API listening', 'polod to open its publish API', 30_000);
  });

  after(async () => {
    // Even when a test failed: no user, group, namespace or process is left behind.
    await lan?.destroy();
    await removeUsers(USERS);
    await removeGroup(SUPERUSERS);
    if (state !== undefined) await rm(state, { recursive: true, force: true });
  });

  it('writes a token file 0600 owned by the user on Request-token, and never sends it', async (t) => {
    if (!requireNetns(t)) return;
    for (const u of USERS) {
      const replies = await overSocket(socket, [{ Command: 'Request-token', Args: { uid: uidOf(u) } }]);
      assert.deepEqual(replies, [{ OK: 'created' }]);
      const file = path.join(homeOf(u), '.polo', 'token');
      const st = await stat(file);
      assert.deepEqual([st.uid, st.mode & 0o777], [uidOf(u), 0o600]);
      tokens.set(u, await readFile(file, 'utf8'));
    }
    // Asked again, over TLS this time, as the Python binding would: it existed.
    assert.deepEqual(await overTls(lan!.host(1), [pyDumps({ Command: 'Request-token', Args: { uid: uidOf(ALICE) } })]), [{ OK: 'existed' }]);
  });

  it('publishes a user service over TLS, discovered from another host', async (t) => {
    if (!requireNetns(t)) return;
    const h1 = lan!.host(1);
    const replies = await overTls(h1, [register(tokens.get(ALICE)!, 'web', { port: 8080, path: '/index' }, false)]);
    assert.deepEqual(replies, [{ OK: `${ALICE}:web` }]);
    const found = await waitFor(
      async () => {
        const nodes = await requestFor(lan!.host(2), `${ALICE}:web`);
        return nodes.length > 0 ? nodes : undefined;
      },
      { what: `${ALICE}:web to be discovered from h2`, timeoutMs: 15_000 },
    );
    assert.deepEqual(found, [{ address: h1.address, params: { port: 8080, path: '/index' } }]);
  });

  it('lets no other user unpublish it', async (t) => {
    if (!requireNetns(t)) return;
    const bob = tokens.get(BOB)!;
    const replies = await overTls(lan!.host(1), [
      pyDumps({ Command: 'Unpublish', Args: { token: bob, service: `${ALICE}:web`, multicast_groups: [G1], delete_file: false, uid: uidOf(BOB) } }),
      // The superuser group grants root services, not other users' ones.
      pyDumps({ Command: 'Unpublish', Args: { token: tokens.get(CAROL)!, service: `${ALICE}:web` } }),
    ]);
    assert.deepEqual(replies, [{ Error: 'Permission denied' }, { Error: 'Permission denied' }]);
    assert.equal((await requestFor(lan!.host(2), `${ALICE}:web`, 1)).length, 1);
  });

  it('refuses root services to an unprivileged user and grants them to the superuser group', async (t) => {
    if (!requireNetns(t)) return;
    const h1 = lan!.host(1);
    const replies = await overTls(h1, [
      register(tokens.get(ALICE)!, 'sysweb', { by: 'alice' }, true),
      register(tokens.get(CAROL)!, 'sysweb', { by: 'carol' }, true),
    ]);
    assert.deepEqual(replies, [{ Error: 'Permission denied' }, { OK: 'sysweb' }]);
    const found = await requestFor(lan!.host(2), 'sysweb', 1);
    assert.deepEqual(found, [{ address: h1.address, params: { by: 'carol' } }]);
  });

  it('refuses forged, altered and foreign tokens', async (t) => {
    if (!requireNetns(t)) return;
    const alice = tokens.get(ALICE)!;
    const altered = alice.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
    const asBob = alice.replace(`.${uidOf(ALICE).toString(36)}.`, `.${uidOf(BOB).toString(36)}.`);
    assert.notEqual(asBob, alice);
    const foreign = issueToken(randomBytes(32), 0);
    const replies = await overTls(lan!.host(1), [
      register('garbage', 'x', {}, false),
      register(altered, 'x', {}, false),
      register(asBob, 'x', {}, false),
      register(foreign, 'x', {}, true),
      pyDumps({ Command: 'Register', Args: { service: 'x' } }),
    ]);
    assert.deepEqual(replies, [
      { Error: 'Bad token' },
      { Error: 'Bad token' },
      { Error: 'Bad token' },
      { Error: 'Bad token' },
      { Error: 'Need a token' },
    ]);
  });

  it('lets the owner unpublish, after which nobody answers', async (t) => {
    if (!requireNetns(t)) return;
    const replies = await overSocket(socket, [
      { Command: 'List' },
      { Command: 'Unpublish', Args: { token: tokens.get(ALICE)!, service: `${ALICE}:web` } },
    ]);
    const listed = (replies[0] as { OK: { id: string; owner: string }[] }).OK.map((s) => [s.id, s.owner]).sort();
    assert.deepEqual(listed, [
      [`${ALICE}:web`, ALICE],
      ['sysweb', CAROL],
    ]);
    assert.deepEqual(replies[1], { OK: 0 });
    assert.deepEqual(await requestFor(lan!.host(2), `${ALICE}:web`), []);
  });

  it("offers a user's permanent service right after a restart, and lists it in Services as user:service", async (t) => {
    if (!requireNetns(t)) return;
    const h1 = lan!.host(1);
    const published = await overSocket(socket, [
      { Command: 'Publish', Args: { token: tokens.get(BOB)!, service: 'db', params: { port: 5432 }, permanent: true } },
    ]);
    assert.deepEqual(published, [{ OK: `${BOB}:db` }]);
    await polod!.stop();
    polod = h1.spawn([process.execPath, POLOD, '--state-dir', state!, '--interface', h1.address, '--hostname', 'h1']);
    await polod.waitForJsonLog((o) => o['msg'] === 'publish API listening', 'polod to open its publish API again', 30_000);
    // No query has named BOB since the restart: the service is there because polod remembered him.
    const [listed] = await overSocket(socket, [{ Command: 'List' }]);
    assert.ok((listed as { OK: { id: string }[] }).OK.some((s) => s.id === `${BOB}:db`), JSON.stringify(listed));
    const r = await lan!.host(2).run([process.execPath, MARCO, 'services', h1.address, '--json'], { timeoutMs: 15_000 });
    assert.equal(r.code, 0, r.stderr);
    const services = (JSON.parse(r.stdout) as { services: { id: string; params: unknown }[] }).services;
    assert.deepEqual(services.find((s) => s.id === `${BOB}:db`), { id: `${BOB}:db`, params: { port: 5432 } });
  });
});
