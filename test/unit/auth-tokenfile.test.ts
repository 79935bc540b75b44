// writeTokenFile / readTokenFile against real users: ownership, modes, replacement of stale
// tokens, and symlinks, FIFOs and foreign folders planted in the user's home.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmod,
  chown,
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  rm,
  stat,
  symlink,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { InvalidArgumentError, UnsafeFileError } from '../../src/errors.js';
import { issueToken, verifyToken } from '../../src/auth/token.js';
import { readTokenFile, writeTokenFile } from '../../src/auth/tokenFile.js';
import { UserDb, type UserInfo } from '../../src/system/userDb.js';
import { createUsers, removeUsers, userNames } from '../helpers/unix-users.js';

const isRoot = process.getuid?.() === 0;
const SECRET = Buffer.from('an-example-secret-for-the-tests!');


/**
 * The files of the user database and the lock and backup files its tools (useradd, groupadd,
 * userdel) write next to them: test files running alongside this one create users, so these
 * come and go under /etc whatever this file does.
 */
const USER_DB_FILE = /^(\.pwd\.lock|(passwd|group|shadow|gshadow|subuid|subgid)([-+]|\.lock|\.\d+)?)$/;

/** Everything directly under `dir` with owner and mode, to prove nothing changed. */
async function snapshot(dir: string, ignore?: RegExp): Promise<string[]> {
  const st = await lstat(dir);
  const entries = (await readdir(dir)).filter((name) => ignore === undefined || !ignore.test(name));
  return [`. ${st.uid}:${st.gid} ${st.mode}`, ...entries.sort()];
}

describe('token files (real users)', { skip: !isRoot && 'needs root to create users' }, () => {
  // This run's names (test/helpers/unix-users.ts): another run neither shares nor deletes them.
  const USERS = userNames('mpctok', 2) as [string, string];
  let alice: UserInfo;
  let mallory: UserInfo;
  let scratch: string;
  let polo: string;

  before(async () => {
    await createUsers(USERS);
    const db = new UserDb();
    alice = (await db.lookupName(USERS[0])) as UserInfo;
    mallory = (await db.lookupName(USERS[1])) as UserInfo;
    assert.ok(alice && mallory);
    polo = path.join(alice.home, '.polo');
    scratch = await mkdtemp(path.join(tmpdir(), 'mp-tokfile-'));
  });

  after(async () => {
    await removeUsers(USERS);
    if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
  });

  beforeEach(async () => {
    await rm(polo, { recursive: true, force: true });
  });

  it('creates ~/.polo (0700) and the token (0600), both owned by the user', async () => {
    const token = issueToken(SECRET, alice.uid);
    assert.equal(await writeTokenFile(alice, token), 'created');
    const d = await lstat(polo);
    assert.ok(d.isDirectory());
    assert.deepEqual([d.uid, d.gid, d.mode & 0o7777], [alice.uid, alice.gid, 0o700]);
    const f = await lstat(path.join(polo, 'token'));
    assert.ok(f.isFile());
    assert.deepEqual([f.uid, f.gid, f.mode & 0o7777], [alice.uid, alice.gid, 0o600]);
    assert.equal(await readFile(path.join(polo, 'token'), 'utf8'), token);
    assert.deepEqual(await readdir(polo), ['token']);

    // The user reads it as themself, and the binding's read verifies for their uid.
    const asUser = execFileSync('cat', [path.join(polo, 'token')], { uid: alice.uid, gid: alice.gid, encoding: 'utf8' });
    assert.deepEqual(verifyToken(SECRET, asUser), { ok: true, uid: alice.uid, legacy: false });
    assert.equal(await readTokenFile(alice.home), token);
  });

  it("reports 'existed' for the same token, and uses a custom folder name", async () => {
    const token = issueToken(SECRET, alice.uid);
    assert.equal(await writeTokenFile(alice, token), 'created');
    assert.equal(await writeTokenFile(alice, token), 'existed');
    assert.equal(await writeTokenFile(alice, token, '.polo-test'), 'created');
    assert.equal(await readTokenFile(alice.home, '.polo-test'), token);
    await rm(path.join(alice.home, '.polo-test'), { recursive: true });
  });

  it('replaces a stale token (a reference AES token, another uid, trailing garbage)', async () => {
    const token = issueToken(SECRET, alice.uid);
    for (const stale of ['q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq8w=', issueToken(SECRET, mallory.uid), `${token}x`, '']) {
      await mkdir(polo, { recursive: true });
      await chown(polo, alice.uid, alice.gid);
      await writeFile(path.join(polo, 'token'), stale, { mode: 0o600 });
      await chown(path.join(polo, 'token'), alice.uid, alice.gid);
      assert.equal(await writeTokenFile(alice, token), 'created', stale);
      assert.equal(await readFile(path.join(polo, 'token'), 'utf8'), token);
    }
  });

  it('accepts a token file with a trailing newline as existing', async () => {
    const token = issueToken(SECRET, alice.uid);
    await writeTokenFile(alice, token);
    await writeFile(path.join(polo, 'token'), `${token}\n`);
    assert.equal(await writeTokenFile(alice, token), 'existed');
  });

  it('repairs the mode and owner of a right token', async () => {
    const token = issueToken(SECRET, alice.uid);
    await writeTokenFile(alice, token);
    const file = path.join(polo, 'token');
    await chmod(file, 0o644);
    assert.equal(await writeTokenFile(alice, token), 'existed');
    assert.equal((await stat(file)).mode & 0o7777, 0o600);
    await chown(file, 0, 0);
    assert.equal(await writeTokenFile(alice, token), 'existed');
    assert.deepEqual([(await stat(file)).uid, (await stat(file)).gid], [alice.uid, alice.gid]);
  });

  it('refuses ~/.polo -> /etc: nothing is written or chowned under /etc', async () => {
    const before = await snapshot('/etc', USER_DB_FILE);
    const etcTokenExisted = spawnSync('test', ['-e', '/etc/token']).status === 0;
    await symlink('/etc', polo);
    try {
      await assert.rejects(writeTokenFile(alice, issueToken(SECRET, alice.uid)), (err: unknown) => {
        assert.ok(err instanceof UnsafeFileError, String(err));
        assert.ok(err.message.includes(polo), err.message);
        return true;
      });
      assert.deepEqual(await snapshot('/etc', USER_DB_FILE), before);
      assert.equal(spawnSync('test', ['-e', '/etc/token']).status === 0, etcTokenExisted);
      assert.ok((await lstat(polo)).isSymbolicLink());
    } finally {
      await unlink(polo);
    }
  });

  it('refuses ~/.polo -> a root folder, leaving it untouched', async () => {
    const target = path.join(scratch, 'rootdir');
    await mkdir(target, { mode: 0o755 });
    const before = await snapshot(target);
    await symlink(target, polo);
    try {
      await assert.rejects(writeTokenFile(alice, issueToken(SECRET, alice.uid)), UnsafeFileError);
      assert.deepEqual(await snapshot(target), before);
    } finally {
      await unlink(polo);
    }
  });

  it('replaces a symlink planted as the token file without touching its target', async () => {
    const victim = path.join(scratch, 'victim');
    await writeFile(victim, 'root:secret', { mode: 0o600 });
    await mkdir(polo);
    await chown(polo, alice.uid, alice.gid);
    await symlink(victim, path.join(polo, 'token'));
    const token = issueToken(SECRET, alice.uid);
    assert.equal(await writeTokenFile(alice, token), 'created');
    const v = await stat(victim);
    assert.deepEqual([v.uid, v.gid, v.mode & 0o7777], [0, 0, 0o600]);
    assert.equal(await readFile(victim, 'utf8'), 'root:secret');
    assert.ok((await lstat(path.join(polo, 'token'))).isFile());
    assert.equal(await readFile(path.join(polo, 'token'), 'utf8'), token);
  });

  it('replaces a symlink to a valid token of the user elsewhere, rather than trusting it', async () => {
    const token = issueToken(SECRET, alice.uid);
    const elsewhere = path.join(scratch, 'elsewhere-token');
    await writeFile(elsewhere, token, { mode: 0o600 });
    await chown(elsewhere, alice.uid, alice.gid);
    await mkdir(polo);
    await chown(polo, alice.uid, alice.gid);
    await symlink(elsewhere, path.join(polo, 'token'));
    assert.equal(await writeTokenFile(alice, token), 'created');
    assert.ok((await lstat(path.join(polo, 'token'))).isFile());
  });

  it('does not hang on a FIFO planted as the token file', async () => {
    await mkdir(polo);
    await chown(polo, alice.uid, alice.gid);
    execFileSync('mkfifo', ['-m', '600', path.join(polo, 'token')]);
    const token = issueToken(SECRET, alice.uid);
    assert.equal(await writeTokenFile(alice, token), 'created');
    assert.ok((await lstat(path.join(polo, 'token'))).isFile());
  });

  it("refuses a ~/.polo owned by another user, or writable by others", async () => {
    await mkdir(polo, { mode: 0o700 });
    await chown(polo, mallory.uid, mallory.gid);
    await assert.rejects(writeTokenFile(alice, issueToken(SECRET, alice.uid)), UnsafeFileError);
    assert.deepEqual(await readdir(polo), []);
    await chown(polo, alice.uid, alice.gid);
    await chmod(polo, 0o777);
    await assert.rejects(writeTokenFile(alice, issueToken(SECRET, alice.uid)), UnsafeFileError);
    assert.deepEqual(await readdir(polo), []);
  });

  it('refuses homes the user does not own, and a missing home', async () => {
    const systemDir = path.join(scratch, 'bin');
    await mkdir(systemDir);
    const bin: UserInfo = { ...alice, home: systemDir };
    await assert.rejects(writeTokenFile(bin, issueToken(SECRET, alice.uid)), UnsafeFileError);
    assert.deepEqual(await readdir(systemDir), []);
    const ghost: UserInfo = { ...alice, home: path.join(scratch, 'nonexistent') };
    await assert.rejects(writeTokenFile(ghost, issueToken(SECRET, alice.uid)), /nonexistent/);
  });

  it('refuses bad folder names and tokens', async () => {
    const token = issueToken(SECRET, alice.uid);
    for (const bad of ['../x', '/etc', '', '.', '..', 'a/b']) {
      await assert.rejects(writeTokenFile(alice, token, bad), InvalidArgumentError);
      await assert.rejects(readTokenFile(alice.home, bad), InvalidArgumentError);
    }
    await assert.rejects(writeTokenFile(alice, ''), InvalidArgumentError);
  });

  it('readTokenFile returns null when there is no token yet', async () => {
    assert.equal(await readTokenFile(alice.home), null);
    assert.equal(await readTokenFile(path.join(scratch, 'no-such-home')), null);
  });

  it('handles concurrent requests for one user', async () => {
    const token = issueToken(SECRET, alice.uid);
    const results = await Promise.all(Array.from({ length: 10 }, () => writeTokenFile(alice, token)));
    assert.ok(results.includes('created'));
    assert.equal(await readFile(path.join(polo, 'token'), 'utf8'), token);
    assert.deepEqual(await readdir(polo), ['token']);
  });
});
