// openPinnedDir: paths built from a pinned folder keep naming it after it is swapped for a symlink.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { UnsafeFileError } from '../../src/errors.js';
import { openPinnedDir } from '../../src/util/safePath.js';

describe('openPinnedDir', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'mp-pin-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('keeps writing into the folder it opened when the name is swapped for a symlink', async () => {
    const dir = path.join(root, 'user');
    const target = path.join(root, 'victim');
    await mkdir(dir);
    await mkdir(target);
    const pinned = await openPinnedDir(dir);
    try {
      assert.ok(pinned.stat.isDirectory());
      // The attacker moves the folder away and plants a symlink under its name.
      await rename(dir, path.join(root, 'moved'));
      await symlink(target, dir);
      await writeFile(pinned.child('file'), 'hello');
      await pinned.sync();
      assert.deepEqual(await readdir(target), []);
      assert.equal(await readFile(path.join(root, 'moved', 'file'), 'utf8'), 'hello');
    } finally {
      await pinned.close();
    }
  });

  it('refuses a symlink unless asked to follow it', async () => {
    const real = path.join(root, 'real');
    const link = path.join(root, 'link');
    await mkdir(real);
    await symlink(real, link);
    await assert.rejects(openPinnedDir(link), UnsafeFileError);
    const followed = await openPinnedDir(link, { followSymlink: true });
    await followed.close();
  });

  it('refuses files, and passes ENOENT through', async () => {
    const file = path.join(root, 'plain');
    await writeFile(file, '');
    await assert.rejects(openPinnedDir(file), UnsafeFileError);
    await assert.rejects(openPinnedDir(path.join(root, 'absent')), { code: 'ENOENT' });
  });

  it('refuses child names that leave the folder', async () => {
    const pinned = await openPinnedDir(root);
    try {
      assert.throws(() => pinned.child('../x'));
      assert.throws(() => pinned.child('/etc'));
      assert.equal(path.dirname(pinned.child('ok')), pinned.path);
    } finally {
      await pinned.close();
    }
  });
});
