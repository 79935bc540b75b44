// UserDb: getent parsing, caching (positive and negative, TTL, size bound), in-flight sharing,
// the process cap, name validation, and real lookups of users created for the test.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { IoError } from '../../src/errors.js';
import { admin, createGroup, removeGroup, removeUsers, RUN_TAG, userNames } from '../helpers/unix-users.js';
import {
  UserDb,
  execGetent,
  fakeUserDirectory,
  isValidUserName,
  type GetentResult,
  type GetentRunner,
  type UserInfo,
} from '../../src/system/userDb.js';

/** A scripted getent that counts calls and can hold answers back until released. */
function fakeGetent(
  answer: (db: string, keys: readonly string[]) => GetentResult,
): { runner: GetentRunner; calls: string[]; hold: () => void; release: () => void } {
  const calls: string[] = [];
  let gate: Promise<void> | undefined;
  let open: (() => void) | undefined;
  return {
    calls,
    runner: async (db, keys) => {
      calls.push(`${db} ${keys.join(' ')}`.trim());
      if (gate !== undefined) await gate;
      return answer(db, keys);
    },
    hold: () => {
      gate = new Promise((r) => (open = r));
    },
    release: () => {
      gate = undefined;
      open?.();
    },
  };
}

const PASSWD: Record<string, string> = {
  alice: 'alice:x:1001:1001:Alice,,,:/home/alice:/bin/bash',
  '1001': 'alice:x:1001:1001:Alice,,,:/home/alice:/bin/bash',
  bob: 'bob:x:1002:100::/home/bob:/bin/sh',
};
const GROUPS: Record<string, string> = {
  '1001': 'alice:x:1001:',
  '100': 'users:x:100:',
  '500': 'marcopolo:x:500:alice',
};

function scripted(db: string, keys: readonly string[]): GetentResult {
  if (db === 'passwd') {
    const line = PASSWD[keys[0] ?? ''];
    return line === undefined ? { code: 2, stdout: '' } : { code: 0, stdout: `${line}\n` };
  }
  if (db === 'initgroups') return { code: 0, stdout: keys[0] === 'alice' ? 'alice   500\n' : `${keys[0]}\n` };
  const out = keys.map((k) => GROUPS[k]).filter((l) => l !== undefined);
  return { code: out.length === keys.length ? 0 : 2, stdout: out.map((l) => `${l}\n`).join('') };
}

describe('UserDb with a scripted getent', () => {
  it('parses passwd entries by name and by uid', async () => {
    const db = new UserDb({ getent: fakeGetent(scripted).runner });
    assert.deepEqual(await db.lookupName('alice'), { name: 'alice', uid: 1001, gid: 1001, home: '/home/alice', shell: '/bin/bash' });
    assert.equal((await db.lookupUid(1001))?.name, 'alice');
    assert.equal(await db.lookupName('nobody-here'), null);
    assert.equal(await db.lookupUid(4242), null);
  });

  it('never passes an invalid name or uid to getent', async () => {
    const g = fakeGetent(scripted);
    const db = new UserDb({ getent: g.runner });
    for (const bad of ['', '-rf', '--help', 'Root', '0', '1001', '../x', 'a b', 'a:b', 'a\nb', 'a*', 'a'.repeat(33), 'é', 'a$b']) {
      assert.equal(await db.lookupName(bad), null, bad);
    }
    for (const bad of [-1, 1.5, NaN, Infinity, 4294967295, 2 ** 40]) assert.equal(await db.lookupUid(bad), null, String(bad));
    assert.deepEqual(g.calls, []);
    assert.ok(isValidUserName('a'.repeat(32)));
    assert.ok(isValidUserName('_svc-1.x$'));
  });

  it('caches found and not-found answers until the TTL passes', async () => {
    let now = 0;
    const g = fakeGetent(scripted);
    const db = new UserDb({ getent: g.runner, now: () => now, ttlMs: 30_000 });
    await db.lookupName('alice');
    await db.lookupName('ghost');
    now = 29_999;
    await db.lookupName('alice');
    await db.lookupName('ghost');
    assert.equal(g.calls.length, 2);
    now = 30_000;
    await db.lookupName('alice');
    await db.lookupName('ghost');
    assert.equal(g.calls.length, 4);
  });

  it('keeps at most maxEntries answers, dropping the least recently used', async () => {
    const g = fakeGetent(scripted);
    const db = new UserDb({ getent: g.runner, maxEntries: 3 });
    for (const n of ['u1', 'u2', 'u3']) await db.lookupName(n);
    await db.lookupName('u1'); // u1 is now the most recent; u2 the oldest
    await db.lookupName('u4');
    assert.equal(db.cacheSize, 3);
    const before = g.calls.length;
    await db.lookupName('u1');
    await db.lookupName('u3');
    assert.equal(g.calls.length, before);
    await db.lookupName('u2');
    assert.equal(g.calls.length, before + 1);
  });

  it('shares one getent run among concurrent lookups of one key', async () => {
    const g = fakeGetent(scripted);
    const db = new UserDb({ getent: g.runner });
    g.hold();
    const flood = Array.from({ length: 500 }, () => db.lookupName('intruder'));
    const flood2 = Array.from({ length: 500 }, () => db.lookupUid(99999));
    g.release();
    assert.deepEqual(new Set(await Promise.all([...flood, ...flood2])), new Set([null]));
    assert.deepEqual(g.calls, ['passwd intruder', 'passwd 99999']);
  });

  it('caps concurrent getent runs and fails fast when too many wait', async () => {
    let running = 0;
    let peak = 0;
    const g = fakeGetent(scripted);
    const counting: GetentRunner = async (db, keys) => {
      running++;
      peak = Math.max(peak, running);
      try {
        return await g.runner(db, keys);
      } finally {
        running--;
      }
    };
    const db = new UserDb({ getent: counting, maxConcurrent: 2, maxQueued: 3 });
    g.hold();
    const results = Array.from({ length: 10 }, (_, i) => db.lookupName(`user${i}`).then(() => 'ok', (e: unknown) => e));
    g.release();
    const settled = await Promise.all(results);
    assert.equal(settled.filter((r) => r === 'ok').length, 5);
    assert.ok(settled.filter((r) => r !== 'ok').every((e) => e instanceof IoError));
    assert.equal(peak, 2);
    // Failures are not cached: once the flood is over, a lookup runs again.
    assert.equal(await db.lookupName('user9'), null);
  });

  it('does not cache getent failures', async () => {
    let fail = true;
    const db = new UserDb({
      getent: async (d, k) => (fail ? { code: 1, stdout: '' } : scripted(d, k)),
    });
    await assert.rejects(db.lookupName('alice'), IoError);
    fail = false;
    assert.equal((await db.lookupName('alice'))?.uid, 1001);
  });

  it('resolves primary and supplementary group names, and superusers', async () => {
    const db = new UserDb({ getent: fakeGetent(scripted).runner });
    const alice = (await db.lookupName('alice')) as UserInfo;
    const bob = (await db.lookupName('bob')) as UserInfo;
    assert.deepEqual(await db.groupsOf(alice), ['alice', 'marcopolo']);
    assert.deepEqual(await db.groupsOf(bob), ['users']);
    assert.equal(await db.isSuperuser(alice), true);
    assert.equal(await db.isSuperuser(bob), false);
    assert.equal(await db.isSuperuser({ ...bob, uid: 0 }), true);
    const other = new UserDb({ getent: fakeGetent(scripted).runner, superuserGroup: 'users' });
    assert.equal(await other.isSuperuser(bob), true);
    assert.equal(await other.isSuperuser(alice), false);
  });

  it('falls back to scanning the group database without an initgroups database', async () => {
    const db = new UserDb({
      getent: async (d, k) => {
        if (d === 'initgroups') return { code: 1, stdout: '' };
        if (d === 'group' && k.length === 0) return { code: 0, stdout: 'users:x:100:\nmarcopolo:x:500:carol,alice\nstaff:x:50:dave\n' };
        return scripted(d, k);
      },
    });
    const carol: UserInfo = { name: 'carol', uid: 1003, gid: 100, home: '/home/carol', shell: '/bin/sh' };
    assert.deepEqual(await db.groupsOf(carol), ['users', 'marcopolo']);
    assert.equal(await db.isSuperuser(carol), true);
  });
});

describe('execGetent', () => {
  it('reports a missing getent as IoError, which UserDb does not cache', async () => {
    const db = new UserDb({ getent: execGetent({ command: '/nonexistent/getent' }) });
    await assert.rejects(db.lookupName('alice'), IoError);
    assert.equal(db.cacheSize, 0);
  });

  it('returns exit codes: 0 found, 2 not found', async () => {
    const run = execGetent();
    assert.equal((await run('passwd', ['root'])).code, 0);
    assert.match((await run('passwd', ['0'])).stdout, /^root:/);
    assert.equal((await run('passwd', ['mpcnosuchuser'])).code, 2);
  });
});

describe('fakeUserDirectory', () => {
  it('answers like UserDb from a list', async () => {
    const dir = fakeUserDirectory([
      { name: 'root', uid: 0, gid: 0, home: '/root', shell: '/bin/sh', groups: ['root'] },
      { name: 'ann', uid: 1000, gid: 1000, home: '/home/ann', shell: '/bin/sh', groups: ['ann', 'marcopolo'] },
      { name: 'ben', uid: 1001, gid: 1001, home: '/home/ben', shell: '/bin/sh' },
    ]);
    const ann = (await dir.lookupName('ann')) as UserInfo;
    assert.deepEqual(ann, { name: 'ann', uid: 1000, gid: 1000, home: '/home/ann', shell: '/bin/sh' });
    assert.equal((await dir.lookupUid(1001))?.name, 'ben');
    assert.equal(await dir.lookupName('../ann'), null);
    assert.equal(await dir.lookupUid(-1), null);
    assert.deepEqual(await dir.groupsOf(ann), ['ann', 'marcopolo']);
    assert.equal(await dir.isSuperuser(ann), true);
    assert.equal(await dir.isSuperuser((await dir.lookupName('ben')) as UserInfo), false);
    assert.equal(await dir.isSuperuser((await dir.lookupUid(0)) as UserInfo), true);
  });
});

// ---- Real users (root only): created here, removed in after() even if a test fails. ----
// Names carry this run's tag (test/helpers/unix-users.ts), and so does the superuser group the
// UserDb is given: another run of the suite neither shares nor deletes them.

const isRoot = process.getuid?.() === 0;

describe('UserDb against the system (real users)', { skip: !isRoot && 'needs root to create users' }, () => {
  const [plain, member, primary] = userNames('mpcudb', 3) as [string, string, string];
  const group = `mpcudbg${RUN_TAG}`;

  before(async () => {
    await removeUsers([plain, member, primary]);
    await createGroup(group);
    await admin(['useradd', '-m', '-s', '/bin/sh', plain]);
    await admin(['useradd', '-m', '-s', '/bin/sh', '-G', group, member]);
    await admin(['useradd', '-m', '-s', '/bin/sh', '-N', '-g', group, primary]);
  });

  after(async () => {
    await removeUsers([plain, member, primary]);
    await removeGroup(group);
  });

  it('looks users up by name and uid, with id(1) agreeing', async () => {
    const db = new UserDb({ superuserGroup: group });
    const u = await db.lookupName(plain);
    assert.ok(u);
    assert.equal(u.uid, Number(execFileSync('id', ['-u', plain], { encoding: 'utf8' })));
    assert.equal(u.gid, Number(execFileSync('id', ['-g', plain], { encoding: 'utf8' })));
    assert.equal(u.home, `/home/${plain}`);
    assert.equal(u.shell, '/bin/sh');
    assert.deepEqual(await db.lookupUid(u.uid), u);
    assert.equal((await db.lookupUid(0))?.name, 'root');
    assert.equal(await db.lookupName('mpcnosuchuser'), null);
    assert.equal(await db.lookupUid(4294967000), null);
  });

  it('lists groups and recognises superusers (the superuser group as supplementary and as primary group)', async () => {
    const db = new UserDb({ superuserGroup: group });
    const [u1, u2, u3, root] = await Promise.all([db.lookupName(plain), db.lookupName(member), db.lookupName(primary), db.lookupName('root')]);
    assert.ok(u1 && u2 && u3 && root);
    assert.deepEqual(await db.groupsOf(u1), [plain]);
    assert.deepEqual(await db.groupsOf(u2), [member, group]);
    assert.deepEqual(await db.groupsOf(u3), [group]);
    for (const u of [u1, u2, u3]) {
      const expected = execFileSync('id', ['-Gn', u.name], { encoding: 'utf8' }).trim().split(/\s+/).sort();
      assert.deepEqual((await db.groupsOf(u)).sort(), expected, u.name);
    }
    assert.equal(await db.isSuperuser(u1), false);
    assert.equal(await db.isSuperuser(u2), true);
    assert.equal(await db.isSuperuser(u3), true);
    assert.equal(await db.isSuperuser(root), true);
  });
});
