/**
 * The reference's C++ bindings (Alternhuman/marcopolo-bindings-cpp) against our real daemons on
 * a namespace LAN, for real Unix users with four-digit uids. No C++ is built here: small node
 * programs replay what the binding's `Polo` and `Marco` classes send and read, and refuse
 * wherever the binding would abort or fail:
 * - Polo: one TLS connection per `Polo` object; each request is one JSON object in one
 *   SSL_write, without a delimiter, and its reply is what the next SSL_read returns, parsed as
 *   one JSON document; `get_token()` sends `Request-token` when `~/.polo/token` is missing and
 *   goes on only if `OK` is a non-empty string (RapidJSON's GetString() asserts on anything
 *   else), then reads the file with `fgets(buf, 50, f)`: at most 49 characters;
 * - Marco: one datagram `Request-for` to marcod at 127.0.1.1:1338, the reply read into 2048
 *   bytes, every param value read with GetString() (so a non-string value aborts).
 * The programs run as the user (setpriv) and find the home from the user database, as the
 * binding does with getpwuid(geteuid()).
 *
 * polod runs on h1 (where the user's programs publish), marcod on h2 (where a program looks for
 * the service).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { chown, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GROUP_112, lanFixture, startPolod, type Polod } from '../helpers/lan-daemons.js';
import { startMarcod } from '../helpers/marcod-lan.js';
import { requireNetns, type LanHost } from '../helpers/netns.js';
import { overTls } from '../helpers/publish-tls.js';
import { waitFor } from '../helpers/wait.js';
import { admin, exists } from '../helpers/unix-users.js';

const isRoot = process.getuid?.() === 0;
const fixture = lanFixture({ name: 'cpp9', hosts: 2, subnet: 39 });

/** Test users: per-run names (word characters only, as the default verify_regexp wants). */
const tag = String(process.pid % 100000);
const FRESH = `mpcn${tag}`; // no token file yet: the binding's first call requests one
const OLD = `mpco${tag}`; // holds a first-format token written before this version
const USERS = [FRESH, OLD];

interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
}
const accounts = new Map<string, Account>();

const uidTaken = (uid: number): boolean => spawnSync('getent', ['passwd', String(uid)]).status === 0;

/** Creates `name` with a free four-digit uid (the tokens of such users were the ones cut). */
async function createUser(name: string, seed: number): Promise<Account> {
  for (let i = 0; i < 9000; i++) {
    const uid = 1000 + ((seed + i * 7919) % 9000);
    if (uidTaken(uid)) continue;
    // Exit 4: another process took the uid meanwhile; try the next one.
    const status = await admin(['useradd', '-m', '-d', `/home/${name}`, '-s', '/bin/sh', '-u', String(uid), '-U', name], true);
    if (status === 4) continue;
    if (status !== 0) throw new Error(`useradd ${name} failed with exit ${String(status)}`);
    const id = (flag: string): number => Number(spawnSync('id', [flag, name], { encoding: 'utf8' }).stdout.trim());
    return { name, uid: id('-u'), gid: id('-g'), home: `/home/${name}` };
  }
  throw new Error('no free four-digit uid');
}

/**
 * A C++ program using the binding's `Polo` class: `new Polo()`, then each call of argv (a JSON
 * list of ["publish", id] or ["unpublish", id]), then the destructor. Prints one JSON object:
 * `results` (what each call returned), `sent` (every request as written), `tokens` (what
 * get_token() returned each time), or `abort` naming where the binding would have aborted,
 * thrown or silently given up.
 */
const CPP_POLO = `
const tls = require('node:tls');
const fs = require('node:fs');
const os = require('node:os');
const calls = JSON.parse(process.argv[1]);
const out = { results: [], sent: [], tokens: [] };
const finish = (abort) => { if (abort) out.abort = abort; console.log(JSON.stringify(out)); process.exit(0); };
const s = tls.connect({ host: '127.0.0.1', port: 1390, rejectUnauthorized: false }, async () => {
  const chunks = [];
  let wake = null;
  s.on('data', (d) => { chunks.push(d); if (wake) wake(); });
  s.on('close', () => { if (wake) wake(); });
  // One SSL_write of the request, then one SSL_read of at most 4096 bytes, parsed whole.
  const exchange = async (request) => {
    const text = JSON.stringify(request);
    out.sent.push(text);
    s.write(text);
    while (chunks.length === 0) {
      if (s.destroyed) finish('connection closed before a reply');
      await new Promise((r) => { wake = r; });
    }
    const read = chunks.shift();
    if (read.length > 4096) finish('reply larger than the 4096-byte read buffer');
    let doc;
    try { doc = JSON.parse(read.toString('utf8')); } catch { finish('reply is not one JSON document in one read: ' + read); }
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) finish('assert(document.IsObject()) fails');
    return doc;
  };
  // Polo::get_token(): Request-token when the file is missing, then fgets(buf, 50, f).
  const file = os.userInfo().homedir + '/.polo/token';
  const getToken = async () => {
    if (!fs.existsSync(file)) {
      const doc = await exchange({ Command: 'Request-token', Args: { uid: process.geteuid() } });
      if ('OK' in doc) {
        if (typeof doc.OK !== 'string') finish('GetString() on Request-token OK = ' + JSON.stringify(doc.OK));
        if (doc.OK === '') finish('get_token() gives up: Request-token OK is empty');
      } else {
        finish('get_token() gives up: ' + JSON.stringify(doc));
      }
    }
    const content = fs.readFileSync(file, 'latin1').slice(0, 49);
    const nl = content.indexOf('\\n');
    const token = nl < 0 ? content : content.slice(0, nl + 1);
    out.tokens.push(token);
    return token;
  };
  for (const [call, service] of calls) {
    const token = await getToken();
    if (token.length < 1) finish('publish_service returns "" (no token)');
    const args = call === 'publish'
      ? { token, service, multicast_groups: [], permanent: false, root: false }
      : { token, service, multicast_groups: [], delete_file: false };
    const doc = await exchange({ Command: call === 'publish' ? 'Publish' : 'Unpublish', Args: args });
    if ('Error' in doc) finish('PoloException: ' + JSON.stringify(doc.Error));
    if (call === 'publish') {
      if (!('OK' in doc)) finish('publish_service returns "" (no OK)');
      if (typeof doc.OK !== 'string') finish('GetString() on Publish OK = ' + JSON.stringify(doc.OK));
      out.results.push(doc.OK);
    } else {
      out.results.push('OK' in doc ? 0 : 1);
    }
  }
  s.end();
  finish();
});
s.on('error', (e) => finish('connect: ' + e.message));
`;

/**
 * A C++ program calling `Marco().request_for(nodes, argv[1])`: the datagram the binding sends
 * (its defaults: max_nodes 0, exclude empty, timeout 2000, group 224.0.0.112), the reply read
 * into 2048 bytes within 2 x 2000 ms. Prints the nodes as the binding builds them, or `abort`.
 */
const CPP_MARCO = `
const dgram = require('node:dgram');
const service = process.argv[1];
const finish = (v) => { console.log(JSON.stringify(v)); process.exit(0); };
const s = dgram.createSocket('udp4');
const timer = setTimeout(() => finish({ abort: 'Timeout (no reply within 2 x timeout)' }), 4000);
s.on('message', (msg) => {
  clearTimeout(timer);
  let doc;
  try { doc = JSON.parse(msg.subarray(0, 2048).toString('utf8')); } catch { finish({ abort: 'Internal parsing error' }); }
  if (!Array.isArray(doc)) finish({ abort: 'assert(document.IsArray()) fails: ' + JSON.stringify(doc) });
  const nodes = [];
  for (const n of doc) {
    if (typeof n.Address !== 'string') finish({ abort: 'GetString() on Address' });
    const params = {};
    for (const [k, v] of Object.entries(n.Params ?? {})) {
      if (typeof v !== 'string') finish({ abort: 'GetString() on param ' + k + ' = ' + JSON.stringify(v) });
      params[k] = v;
    }
    nodes.push({ address: n.Address, params });
  }
  finish({ nodes });
});
const request = { Command: 'Request-for', Params: service, max_nodes: 0, exclude: [], timeout: 2000, group: '224.0.0.112' };
s.bind(0, () => s.send(JSON.stringify(request), 1338, '127.0.1.1'));
`;

interface PoloRun {
  results: unknown[];
  sent: string[];
  tokens: string[];
  abort?: string;
}

/** Runs the C++ Polo program as `user` in `host`. */
async function cppPolo(host: LanHost, user: Account, calls: [string, string][]): Promise<PoloRun> {
  const ids = ['setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--init-groups'];
  const r = await host.run([...ids, process.execPath, '-e', CPP_POLO, JSON.stringify(calls)], { timeoutMs: 20_000 });
  assert.equal(r.code, 0, `C++ Polo program failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as PoloRun;
}

/** Runs the C++ Marco program as `user` in `host`: the nodes it would return. */
async function cppRequestFor(host: LanHost, user: Account, service: string): Promise<{ address: string; params: unknown }[]> {
  const ids = ['setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--init-groups'];
  const r = await host.run([...ids, process.execPath, '-e', CPP_MARCO, service], { timeoutMs: 20_000 });
  assert.equal(r.code, 0, `C++ Marco program failed: ${r.stderr}`);
  const out = JSON.parse(r.stdout) as { nodes?: { address: string; params: unknown }[]; abort?: string };
  assert.equal(out.abort, undefined, `the C++ Marco binding would abort: ${out.abort ?? ''}`);
  return out.nodes ?? [];
}

describe('the reference C++ bindings, for users with four-digit uids', { skip: !isRoot && 'needs root to create users' }, () => {
  let h1: LanHost;
  let h2: LanHost;
  let polod: Polod;
  let secret: Buffer;

  before(async () => {
    if (!isRoot) return;
    for (const u of USERS) if (exists(u)) await admin(['userdel', '-r', u], true);
    for (const [i, u] of USERS.entries()) accounts.set(u, await createUser(u, process.pid + i * 4507));
  });

  after(async () => {
    // Even when a test failed: no user is left behind (the LAN goes with the fixture).
    for (const u of USERS) if (exists(u)) await admin(['userdel', '-r', u], true);
  });

  /** polod on h1 and marcod on h2, started once. */
  let started: Promise<void> | undefined;
  const daemons = (): Promise<void> =>
    (started ??= (async () => {
      const lan = await fixture.lan();
      h1 = lan.host(1);
      h2 = lan.host(2);
      polod = await startPolod(fixture, h1, { groups: [GROUP_112] });
      await startMarcod(fixture, h2);
      secret = await readFile(path.join(polod.stateDir, 'secret'));
    })());

  it('publishes on first use, is found through marcod, and unpublishes', async (t) => {
    if (!requireNetns(t)) return;
    await daemons();
    const user = accounts.get(FRESH)!;
    assert.match(String(user.uid), /^[0-9]{4}$/);

    const published = await cppPolo(h1, user, [['publish', 'web']]);
    assert.equal(published.abort, undefined, `the C++ Polo binding would fail: ${published.abort ?? ''}`);
    assert.deepEqual(published.results, [`${user.name}:web`]);
    // First use: Request-token, then Publish, each one JSON object in one write on one connection.
    assert.deepEqual(
      published.sent.map((r) => (JSON.parse(r) as { Command: string }).Command),
      ['Request-token', 'Publish'],
    );
    // What fgets kept is the whole token file.
    const file = path.join(user.home, '.polo', 'token');
    const content = await readFile(file, 'utf8');
    assert.ok(content.length <= 44, `token of ${content.length} characters`);
    assert.deepEqual(published.tokens, [content]);
    const st = await stat(file);
    assert.deepEqual([st.uid, st.mode & 0o777], [user.uid, 0o600]);

    const found = await waitFor(
      async () => {
        const nodes = await cppRequestFor(h2, user, `${user.name}:web`);
        return nodes.length > 0 ? nodes : undefined;
      },
      { what: `${user.name}:web to be found through marcod on h2`, timeoutMs: 20_000 },
    );
    assert.deepEqual(found, [{ address: h1.address, params: {} }]);

    // A second program: the token file exists, so no Request-token this time.
    const unpublished = await cppPolo(h1, user, [['unpublish', `${user.name}:web`]]);
    assert.equal(unpublished.abort, undefined, `the C++ Polo binding would fail: ${unpublished.abort ?? ''}`);
    assert.deepEqual(unpublished.results, [0]);
    assert.deepEqual(
      unpublished.sent.map((r) => (JSON.parse(r) as { Command: string }).Command),
      ['Unpublish'],
    );
    assert.deepEqual(await cppRequestFor(h2, user, `${user.name}:web`), []);
  });

  it('accepts a first-format token, whole or as the C++ binding reads it, and replaces the file', async (t) => {
    if (!requireNetns(t)) return;
    await daemons();
    const user = accounts.get(OLD)!;
    // The token file as the previous version wrote it: mp1.<uid>.<whole MAC>, 52 characters.
    const old = `mp1.${user.uid}.${createHmac('sha256', secret).update(`mp1.${user.uid}`).digest('base64url')}`;
    assert.equal(old.length, 52);
    const dir = path.join(user.home, '.polo');
    await mkdir(dir, { mode: 0o700 });
    await chown(dir, user.uid, user.gid);
    const file = path.join(dir, 'token');
    await writeFile(file, old, { mode: 0o600 });
    await chown(file, user.uid, user.gid);

    // The C++ binding sends the first 49 characters of the old token.
    const run = await cppPolo(h1, user, [['publish', 'cpp']]);
    assert.equal(run.abort, undefined, `the C++ Polo binding would fail: ${run.abort ?? ''}`);
    assert.deepEqual(run.tokens, [old.slice(0, 49)]);
    assert.deepEqual(run.results, [`${user.name}:cpp`]);
    // polod replaced the file with the current token, which fits.
    const current = await readFile(file, 'utf8');
    assert.notEqual(current, old);
    assert.ok(current.length <= 44, `token of ${current.length} characters`);
    const st = await stat(file);
    assert.deepEqual([st.uid, st.mode & 0o777], [user.uid, 0o600]);

    // A program still holding the whole old token (as the Python binding reads it) keeps working.
    const replies = await overTls(h1, [
      JSON.stringify({ Command: 'Register', Args: { token: old, service: 'py', params: { port: '8080' }, multicast_groups: [], permanent: false, root: false } }),
      JSON.stringify({ Command: 'Unpublish', Args: { token: old, service: `${user.name}:py` } }),
    ]);
    assert.deepEqual(replies, [{ OK: `${user.name}:py` }, { OK: 0 }]);

    // And the C++ binding goes on with the new token.
    const next = await cppPolo(h1, user, [['unpublish', `${user.name}:cpp`]]);
    assert.equal(next.abort, undefined, `the C++ Polo binding would fail: ${next.abort ?? ''}`);
    assert.deepEqual(next.tokens, [current]);
    assert.deepEqual(next.results, [0]);
    assert.ok(polod.logs((r) => r['msg'] === 'token file upgraded to the current format' && r['user'] === user.name).length === 1);
  });
});
