// writeFileAtomic and removeFile: modes, owners, symlinks at the final name, no leftovers, and
// readers never seeing a partial file.
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { InvalidArgumentError, IoError } from '../../src/errors.js';
import { isErrno, removeFile, writeFileAtomic } from '../../src/util/atomicFile.js';

const isRoot = process.getuid?.() === 0;

describe('writeFileAtomic', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mp-atomic-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const leftovers = async (): Promise<string[]> => (await readdir(dir)).filter((n) => n.endsWith('.tmp'));

  it('creates and replaces files with the exact mode, whatever the umask', async () => {
    const file = path.join(dir, 'a');
    const old = process.umask(0o077);
    try {
      await writeFileAtomic(file, 'one', { mode: 0o644 });
      assert.equal((await stat(file)).mode & 0o7777, 0o644);
      await writeFileAtomic(file, Buffer.from('two'), { mode: 0o600 });
      assert.equal((await stat(file)).mode & 0o7777, 0o600);
      assert.equal(await readFile(file, 'utf8'), 'two');
    } finally {
      process.umask(old);
    }
    assert.deepEqual(await leftovers(), []);
  });

  it('sets owner and group before the file appears', { skip: !isRoot && 'needs root' }, async () => {
    const file = path.join(dir, 'owned');
    await writeFileAtomic(file, 'x', { mode: 0o600, uid: 54321, gid: 54322 });
    const st = await stat(file);
    assert.equal(st.uid, 54321);
    assert.equal(st.gid, 54322);
    assert.equal(st.mode & 0o7777, 0o600);
  });

  it('replaces a symlink at the final name instead of writing through it', async () => {
    const victim = path.join(dir, 'victim');
    await writeFile(victim, 'precious', { mode: 0o644 });
    const file = path.join(dir, 'link');
    await symlink(victim, file);
    await writeFileAtomic(file, 'new', { mode: 0o600 });
    assert.ok((await lstat(file)).isFile());
    assert.equal(await readFile(victim, 'utf8'), 'precious');
    assert.equal((await stat(victim)).mode & 0o777, 0o644);
  });

  it('cleans up and reports IoError when the rename fails', async () => {
    const sub = path.join(dir, 'isdir');
    await mkdir(path.join(sub, 'child'), { recursive: true });
    await assert.rejects(writeFileAtomic(sub, 'x', { mode: 0o600 }), (err: unknown) => {
      assert.ok(err instanceof IoError);
      assert.match(err.message, /isdir/);
      return true;
    });
    assert.deepEqual(await leftovers(), []);
    await assert.rejects(writeFileAtomic(path.join(dir, 'nodir', 'x'), 'x', { mode: 0o600 }), IoError);
  });

  it('in exclusive mode never clobbers an existing file', async () => {
    const file = path.join(dir, 'excl');
    await writeFileAtomic(file, 'first', { mode: 0o600, exclusive: true });
    await assert.rejects(writeFileAtomic(file, 'second', { mode: 0o600, exclusive: true }), (err: unknown) => {
      assert.ok(err instanceof IoError);
      assert.ok(isErrno(err, 'EEXIST'));
      return true;
    });
    assert.equal(await readFile(file, 'utf8'), 'first');
    assert.deepEqual(await leftovers(), []);
  });

  it('refuses bad modes and ids', async () => {
    const file = path.join(dir, 'bad');
    await assert.rejects(writeFileAtomic(file, 'x', { mode: -1 }), InvalidArgumentError);
    await assert.rejects(writeFileAtomic(file, 'x', { mode: 0o10000 }), InvalidArgumentError);
    await assert.rejects(writeFileAtomic(file, 'x', { mode: 0o600, uid: -5 }), InvalidArgumentError);
    await assert.rejects(writeFileAtomic(file, 'x', { mode: 0o600, gid: 4294967295 }), InvalidArgumentError);
    await assert.rejects(lstat(file), { code: 'ENOENT' });
  });

  it('handles names near NAME_MAX', async () => {
    const file = path.join(dir, 'n'.repeat(255));
    await writeFileAtomic(file, 'x', { mode: 0o600 });
    assert.equal(await readFile(file, 'utf8'), 'x');
  });

  it('never lets a reader see a partial file', async () => {
    const file = path.join(dir, 'big');
    const versions = ['a', 'b', 'c', 'd'].map((c) => c.repeat(512 * 1024));
    await writeFileAtomic(file, versions[0] as string, { mode: 0o644 });
    let writing = true;
    const writer = (async () => {
      for (let i = 0; i < 40; i++) await writeFileAtomic(file, versions[i % versions.length] as string, { mode: 0o644 });
      writing = false;
    })();
    let reads = 0;
    while (writing) {
      const content = await readFile(file, 'utf8');
      assert.ok(versions.includes(content), `read ${content.length} bytes that are no complete version`);
      reads++;
    }
    await writer;
    assert.ok(reads > 0);
    assert.deepEqual(await leftovers(), []);
  });
});

describe('removeFile', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mp-remove-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('removes files, tolerates ENOENT, removes symlinks but not their targets', async () => {
    const file = path.join(dir, 'f');
    await writeFile(file, 'x');
    assert.equal(await removeFile(file), true);
    assert.equal(await removeFile(file), false);
    const target = path.join(dir, 'target');
    await writeFile(target, 'keep');
    await symlink(target, path.join(dir, 'l'));
    assert.equal(await readlink(path.join(dir, 'l')), target);
    assert.equal(await removeFile(path.join(dir, 'l')), true);
    assert.equal(await readFile(target, 'utf8'), 'keep');
  });

  it('reports other failures as IoError', async () => {
    await mkdir(path.join(dir, 'd'));
    await assert.rejects(removeFile(path.join(dir, 'd')), IoError);
  });
});
