/**
 * A real polod (running as root, as installed) against hostile local users, on a namespace LAN:
 * real Unix users, their clients run under their own uid (setpriv), the kernel telling polod who
 * they are. Proves what issue 11 asked for:
 * - one user holding connections cannot lock the others out (their own oldest idle connection is
 *   closed for their next one; an idle flood on the Unix socket is closed oldest first);
 * - a binding with a stale token file recovers on its next call;
 * - per-user quotas (count and bytes) hold, and a storm of List pages, with clients resetting
 *   their connections mid-reply, neither stops polod nor keeps it from answering UDP queries;
 * - permanent ids the loader would skip are refused, every acknowledged one survives a restart,
 *   and interrupted writes in a user's ~/.polo are swept;
 * - a user swapping ~/.polo while polod writes there is never left anything owned by root;
 * - a large service never empties the Services reply.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chown, lstat, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { issueToken } from '../../src/auth/token.js';
import { createLan, netnsAvailable, requireNetns, type Lan, type LanHost } from '../helpers/netns.js';
import type { Proc } from '../helpers/proc.js';
import { overTls } from '../helpers/publish-tls.js';
import { asUser, createUsers, removeUsers, userNames, type TestUser } from '../helpers/unix-users.js';
import { waitFor } from '../helpers/wait.js';
import { ReplyLineClient } from '../helpers/reply-lines.js';

const DIST = path.resolve(import.meta.dirname, '..', '..');
const POLOD = path.join(DIST, 'src', 'cli', 'polod.js');
const MARCO = path.join(DIST, 'src', 'cli', 'marco.js');
const G1 = '224.0.0.112';

const NAMES = userNames('mpt', 3);
const QUOTA_SERVICES = 20;
const QUOTA_BYTES = 10_000;
const PER_USER_CONNECTIONS = 4;
const MAX_CONNECTIONS = 16;

/** `marco request-for <id>` from `host`, ending at the first answer (10 s bounds a failure). */
async function requestFor(host: LanHost, id: string): Promise<{ address: string; params: unknown }[]> {
  const r = await host.run(
    [process.execPath, MARCO, 'request-for', id, '--interface', host.address, '--max-nodes', '1', '--timeout', '10000', '--json'],
    { timeoutMs: 15_000 },
  );
  assert.ok(r.code === 0 || r.code === 1, `marco failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as { address: string; params: unknown }[];
}

/** Every page of List over one connection, following `Next`. */
async function listAll(c: ReplyLineClient): Promise<{ id: string; owner: string }[]> {
  const all: { id: string; owner: string }[] = [];
  for (let offset: number | undefined = 0; offset !== undefined; ) {
    const reply = (await c.request({ Command: 'List', Args: { offset } })) as { OK: { id: string; owner: string }[]; Next?: number } | null;
    if (reply === null) throw new Error('polod closed the connection during List');
    all.push(...reply.OK);
    offset = reply.Next;
  }
  return all;
}

/** Entries under `dir` (recursively, not following symlinks) whose owner is not `uid`. */
async function notOwnedBy(dir: string, uid: number): Promise<string[]> {
  const found: string[] = [];
  for (const name of await readdir(dir)) {
    const full = path.join(dir, name);
    let st;
    try {
      st = await lstat(full);
    } catch {
      continue;
    }
    if (st.uid !== uid) found.push(`${full} (uid ${st.uid})`);
    if (st.isDirectory()) found.push(...(await notOwnedBy(full, uid)));
  }
  return found;
}

/**
 * Run as a user in h1: opens `count` TLS connections one after the other, each asking for one
 * List entry, keeps them all, waits until polod has closed all but `keep`, prints
 * `HOLDING <open>` and holds them until killed.
 */
const HOLDER = `
const tls = require('node:tls');
const [count, keep] = process.argv.slice(1).map(Number);
const open = new Set();
const one = () => new Promise((resolve) => {
  const s = tls.connect({ host: '127.0.0.1', port: 1390, rejectUnauthorized: false }, () => {
    s.write('{"Command": "List", "Args": {"limit": 1}}\\n');
  });
  s.on('error', () => undefined);
  s.once('data', () => { open.add(s); resolve(); });
  s.once('close', () => { open.delete(s); resolve(); });
});
(async () => {
  for (let i = 0; i < count; i++) await one();
  const check = setInterval(() => {
    if (open.size <= keep) { clearInterval(check); console.log('HOLDING ' + open.size); setInterval(() => undefined, 60000); }
  }, 20);
})();
`;

/**
 * A reference-style binding run as a user in h1: for each service in argv, reads ~/.polo/token
 * afresh (as the Python binding's get_token does on every call), sends Register over TLS on one
 * connection and prints the replies as a JSON list.
 */
const BINDING = `
const tls = require('node:tls');
const fs = require('node:fs');
const [home, ...services] = process.argv.slice(1);
const s = tls.connect({ host: '127.0.0.1', port: 1390, rejectUnauthorized: false }, async () => {
  let buf = '';
  const waiters = [];
  s.setEncoding('utf8');
  s.on('data', (d) => { buf += d; waiters.splice(0).forEach((w) => w()); });
  const line = async () => {
    for (;;) {
      const i = buf.indexOf('\\n');
      if (i >= 0) { const l = buf.slice(0, i); buf = buf.slice(i + 1); return JSON.parse(l); }
      await new Promise((r) => waiters.push(r));
    }
  };
  const replies = [];
  for (const service of services) {
    const token = fs.readFileSync(home + '/.polo/token', 'utf8');
    s.write(JSON.stringify({ Command: 'Register', Args: { token, service, params: {}, multicast_groups: ['${G1}'], permanent: false, root: false } }));
    replies.push(await line());
  }
  console.log(JSON.stringify(replies));
  s.end();
});
s.on('error', (e) => { console.error(e.message); process.exit(2); });
`;

/**
 * Run as a user (not in a namespace: files only): moves ~/.polo aside whenever it exists, as fast
 * as it can, keeping every folder moved aside (at most 20,000), so whatever polod made in it and
 * left behind is still there to be checked.
 */
const RACER = `
const fs = require('node:fs');
const home = process.argv[1];
let i = 0;
while (i < 20000) {
  try { fs.renameSync(home + '/.polo', home + '/.polo-aside-' + i); i++; } catch {}
}
setInterval(() => undefined, 60000);
`;

describe('publish API trust: hostile local users', () => {
  let lan: Lan | undefined;
  let polod: Proc | undefined;
  let state: string | undefined;
  let socket: string;
  let secret: Buffer;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  const racers: ChildProcess[] = [];

  const startPolod = async (): Promise<Proc> => {
    const h1 = lan!.host(1);
    const p = h1.spawn([
      process.execPath,
      POLOD,
      '--config',
      path.join(state!, 'polo.cfg'),
      '--state-dir',
      state!,
      '--interface',
      h1.address,
      '--hostname',
      'h1',
      '--max-services-per-user',
      String(QUOTA_SERVICES),
    ]);
    await p.waitForJsonLog((o) => o['msg'] === 'publish API listening', 'polod to open its publish API', 30_000);
    return p;
  };
  const tokenOf = (u: TestUser): string => issueToken(secret, u.uid);
  const rootToken = (): string => issueToken(secret, 0);

  before(async () => {
    if (!netnsAvailable().ok) return;
    [alice, bob, carol] = (await createUsers(NAMES)) as [TestUser, TestUser, TestUser];
    state = await mkdtemp(path.join(tmpdir(), 'mp-trust-'));
    socket = path.join(state, 'polod.sock');
    // Limits small enough to reach in a test; the services quota comes by flag, the rest by file.
    await writeFile(
      path.join(state, 'polo.cfg'),
      [
        '[polo]',
        `max_service_bytes_per_user = ${QUOTA_BYTES}`,
        `publish_max_connections = ${MAX_CONNECTIONS}`,
        `publish_max_connections_per_user = ${PER_USER_CONNECTIONS}`,
        '',
      ].join('\n'),
    );
    lan = await createLan({ name: 'i11t', hosts: 2, subnet: 111 });
    polod = await startPolod();
    secret = await readFile(path.join(state, 'secret'));
  });

  after(async () => {
    for (const r of racers) r.kill('SIGKILL');
    await lan?.destroy();
    await removeUsers(NAMES);
    if (state !== undefined) await rm(state, { recursive: true, force: true });
  });

  it('lists every service that fits in the Services reply after a large one', async (t) => {
    if (!requireNetns(t)) return;
    const c = await ReplyLineClient.unix(socket);
    const publish = (service: string, params: object): object => ({
      Command: 'Publish',
      Args: { token: rootToken(), service, params, root: true, multicast_groups: [G1] },
    });
    const replies = await c.requests([publish('big', { blob: 'x'.repeat(2500) }), publish('s1', { n: 1 }), publish('s2', { n: 2 })]);
    assert.deepEqual(replies, [{ OK: 'big' }, { OK: 's1' }, { OK: 's2' }]);
    const h2 = lan!.host(2);
    const r = await h2.run([process.execPath, MARCO, 'services', lan!.host(1).address, '--group', G1, '--interface', h2.address, '--timeout', '10000', '--json'], {
      timeoutMs: 15_000,
    });
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as { services: { id: string }[]; truncated?: boolean };
    assert.deepEqual(
      doc.services.map((s) => s.id),
      ['big', 's1', 's2'],
    );
    assert.equal(doc.truncated, undefined);
    assert.deepEqual(await c.requests(['big', 's1', 's2'].map((service) => ({ Command: 'Unpublish', Args: { token: rootToken(), service } }))), [
      { OK: 0 },
      { OK: 0 },
      { OK: 0 },
    ]);
    c.close();
  });

  it('refuses permanent ids the loader would skip; every acknowledged one is served after a restart', async (t) => {
    if (!requireNetns(t)) return;
    const c = await ReplyLineClient.unix(socket);
    const ids = ['token', 'web.tmp', '.web.0123456789ab.tmp', '.hidden', 'web~', '#web#', 'web.cfg'];
    const replies = (await c.requests(
      ids.map((service) => ({ Command: 'Publish', Args: { token: rootToken(), service, params: { service }, root: true, permanent: true } })),
    )) as { OK?: string; Error?: string }[];
    c.close();
    const refused = ids.filter((_, i) => replies[i]?.Error !== undefined);
    assert.deepEqual(refused, ['token', 'web.tmp', '.web.0123456789ab.tmp']);
    for (const r of replies.slice(0, 3)) assert.match(r.Error ?? '', /is invalid: a permanent service is stored as the file '.+', which polod would not load after a restart/);
    const acked = ids.filter((_, i) => replies[i]?.OK === ids[i]);
    assert.deepEqual(acked, ['.hidden', 'web~', '#web#', 'web.cfg']);

    // An interrupted write left in alice's ~/.polo (polod killed between create and rename).
    const leftover = path.join(alice.home, '.polo', '.web.0123456789ab.tmp');
    await overTlsAs(alice, [{ Command: 'Request-token', Args: { uid: alice.uid } }]);
    await writeFile(leftover, 'half');
    await chown(leftover, alice.uid, alice.gid);

    assert.equal((await polod!.stop()).code, 0);
    polod = await startPolod();
    const after = await ReplyLineClient.unix(socket);
    const listed = new Set((await listAll(after)).map((s) => s.id));
    after.close();
    for (const id of acked) assert.ok(listed.has(id), `${id} missing after the restart`);
    for (const id of acked) assert.deepEqual(await requestFor(lan!.host(2), id), [{ address: lan!.host(1).address, params: { service: id } }]);
    // The next write polod makes in alice's folder sweeps the leftover.
    assert.deepEqual(await overTlsAs(alice, [{ Command: 'Request-token', Args: { uid: alice.uid } }]), [{ OK: 'existed' }]);
    await assert.rejects(stat(leftover), { code: 'ENOENT' });
  });

  /** Requests over TLS from h1 as `user` (the kernel names them as the connection's owner). */
  function overTlsAs(user: TestUser, requests: object[]): Promise<unknown[]> {
    return overTls(
      lan!.host(1),
      requests.map((r) => JSON.stringify(r)),
      asUser(user),
    );
  }

  it("rewrites a stale token file for the user the kernel names, so the binding's next call succeeds", async (t) => {
    if (!requireNetns(t)) return;
    const file = path.join(alice.home, '.polo', 'token');
    // A token minted under another secret: what a binding holds after polod's secret changed.
    await writeFile(file, issueToken(randomBytes(32), alice.uid), { mode: 0o600 });
    await chown(file, alice.uid, alice.gid);
    const r = await lan!.host(1).run([...asUser(alice), process.execPath, '-e', BINDING, alice.home, 'stale1', 'stale2'], { timeoutMs: 15_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), [{ Error: 'Bad token' }, { OK: `${alice.name}:stale2` }]);
    assert.equal(await readFile(file, 'utf8'), tokenOf(alice));
    const st = await stat(file);
    assert.deepEqual([st.uid, st.mode & 0o777], [alice.uid, 0o600]);
  });

  it('lets no user lock the others out by holding connections', async (t) => {
    if (!requireNetns(t)) return;
    const h1 = lan!.host(1);
    // alice opens 10 TLS connections and holds them: polod closes her own oldest idle ones.
    const holder = h1.spawn([...asUser(alice), process.execPath, '-e', HOLDER, '10', String(PER_USER_CONNECTIONS)]);
    try {
      const held = await waitFor(() => /HOLDING (\d+)/.exec(holder.stdout)?.[1], { what: 'alice to hold her connections', timeoutMs: 20_000 });
      assert.equal(Number(held), PER_USER_CONNECTIONS);
      // Meanwhile root floods the Unix socket with idle connections, more than the global limit.
      const idle: ReplyLineClient[] = [];
      for (let i = 0; i < MAX_CONNECTIONS + 4; i++) {
        const c = await ReplyLineClient.unix(socket);
        assert.ok(Array.isArray(((await c.request({ Command: 'List', Args: { limit: 1 } })) as { OK: unknown }).OK));
        idle.push(c);
      }
      // The oldest idle ones made room; bob still publishes, over TLS, as himself.
      await waitFor(() => idle.slice(0, 4).every((c) => c.isClosed), { what: 'the oldest idle connections to be closed' });
      assert.ok(idle.slice(4).every((c) => !c.isClosed));
      assert.deepEqual(
        await overTlsAs(bob, [
          { Command: 'Request-token', Args: { uid: bob.uid } },
          { Command: 'Publish', Args: { token: tokenOf(bob), service: 'free', params: {}, multicast_groups: [G1] } },
        ]),
        [{ OK: 'created' }, { OK: `${bob.name}:free` }],
      );
      for (const c of idle) c.close();
    } finally {
      holder.kill('SIGKILL');
      await holder.exited;
    }
  });

  it('holds quotas, and a storm of List pages and reset connections leaves UDP answered throughout', async (t) => {
    if (!requireNetns(t)) return;
    const c = await ReplyLineClient.unix(socket);
    const publish = (token: string, service: string, params: object, root = false): object => ({
      Command: 'Publish',
      Args: { token, service, params, root, multicast_groups: [G1] },
    });
    // alice: by count (she has stale2 already).
    const aliceReplies = (await c.requests(
      Array.from({ length: QUOTA_SERVICES + 4 }, (_, i) => publish(tokenOf(alice), `s${i}`, { i })),
    )) as { OK?: string; Error?: string }[];
    assert.equal(aliceReplies.filter((r) => r.OK !== undefined).length, QUOTA_SERVICES - 1);
    const aliceErrors = aliceReplies.filter((r) => r.Error !== undefined).map((r) => r.Error);
    assert.equal(aliceErrors.length, 5);
    assert.match(aliceErrors[0] ?? '', new RegExp(`^Quota exceeded: ${alice.name} already has ${QUOTA_SERVICES} services, the limit is ${QUOTA_SERVICES}`));
    // bob: by bytes (3000-byte params; he has `free` already).
    const bobReplies = (await c.requests(
      Array.from({ length: 5 }, (_, i) => publish(tokenOf(bob), `b${i}`, { blob: 'y'.repeat(3000) })),
    )) as { OK?: string; Error?: string }[];
    assert.deepEqual(
      bobReplies.map((r) => r.OK ?? 'refused'),
      [`${bob.name}:b0`, `${bob.name}:b1`, `${bob.name}:b2`, 'refused', 'refused'],
    );
    assert.match(bobReplies[3]?.Error ?? '', new RegExp(`^Quota exceeded: ${bob.name}'s services would take \\d+ bytes, the limit is ${QUOTA_BYTES}`));
    // root has no quota: 2000 services of 1 KB make List pages worth building.
    const rootReplies = await c.requests(Array.from({ length: 2000 }, (_, i) => publish(rootToken(), `r${i}`, { pad: 'z'.repeat(1000) }, true)));
    assert.equal(rootReplies.filter((r) => (r as { OK?: string }).OK !== undefined).length, 2000);
    c.close();

    let udpDone = false;
    let pages = 0;
    let resets = 0;
    const lister = async (): Promise<void> => {
      const l = await ReplyLineClient.unix(socket);
      while (!udpDone) {
        const all = await listAll(l);
        assert.ok(all.length >= 2000 + QUOTA_SERVICES);
        pages++;
      }
      l.close();
    };
    // Clients that ask for pages and close the connection before reading them: polod's writes fail.
    const resetter = async (): Promise<void> => {
      while (!udpDone) {
        const r = await ReplyLineClient.unix(socket);
        r.socket.write('{"Command": "List"}\n{"Command": "List", "Args": {"offset": 256}}\n');
        await new Promise<void>((resolve) => r.socket.once('data', () => resolve()));
        r.socket.destroy(); // with most of the page unread: polod's write fails (EPIPE)
        await r.closed;
        resets++;
      }
    };
    const udp = async (): Promise<string[]> => {
      const missed: string[] = [];
      try {
        for (let i = 0; i < 8; i++) {
          const id = i % 2 === 0 ? `${alice.name}:s${i}` : `r${i * 100}`;
          if ((await requestFor(lan!.host(2), id)).length !== 1) missed.push(id);
        }
      } finally {
        udpDone = true;
      }
      return missed;
    };
    const [missed] = await Promise.all([udp(), lister(), lister(), lister(), lister(), lister(), resetter()]);
    assert.deepEqual(missed, [], 'UDP queries not answered during the List storm');
    assert.ok(pages > 0 && resets > 0);
    // polod is still up and serving.
    assert.equal(polod!.child.exitCode, null);
    const final = await ReplyLineClient.unix(socket);
    assert.ok((await listAll(final)).some((s) => s.id === `${alice.name}:s0`));
    final.close();
  });

  it('leaves nothing owned by root in a home whose owner swaps ~/.polo while polod writes there', async (t) => {
    if (!requireNetns(t)) return;
    const racer = spawn(process.execPath, ['-e', RACER, carol.home], { uid: carol.uid, gid: carol.gid, cwd: '/', stdio: 'ignore' });
    racers.push(racer);
    const c = await ReplyLineClient.unix(socket);
    // The racer is at work once it has pulled away a folder polod made.
    await waitFor(
      async () => {
        await c.request({ Command: 'Request-token', Args: { uid: carol.uid } });
        return (await readdir(carol.home)).some((n) => n.startsWith('.polo-aside-'));
      },
      { what: 'the racer to start', timeoutMs: 20_000 },
    );
    for (let i = 0; i < 300; i++) {
      const replies = await c.requests([
        { Command: 'Request-token', Args: { uid: carol.uid } },
        { Command: 'Publish', Args: { token: tokenOf(carol), service: `race${i}`, params: {}, permanent: true, multicast_groups: [G1] } },
        { Command: 'Unpublish', Args: { token: tokenOf(carol), service: `${carol.name}:race${i}`, delete_file: true } },
      ]);
      // The user pulls the folder away at will: many of these fail, with a reason; none may hang.
      assert.ok(replies.every((r) => r !== null));
    }
    c.close();
    racer.kill('SIGKILL');
    await new Promise((resolve) => (racer.exitCode !== null || racer.signalCode !== null ? resolve(null) : racer.once('exit', resolve)));
    assert.deepEqual(await notOwnedBy(carol.home, carol.uid), []);
  });
});
