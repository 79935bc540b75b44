// loadOrCreateSecret: first-start creation, reuse, reference secret files, unsafe files refused.
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execFileSync } from 'node:child_process';
import { ConfigError, UnsafeFileError } from '../../src/errors.js';
import { SECRET_BYTES, loadOrCreateSecret } from '../../src/auth/secret.js';

describe('loadOrCreateSecret', () => {
  let dir: string;
  let n = 0;
  const fresh = (): string => path.join(dir, `case${n++}`, 'secret');
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mp-secret-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates 32 random bytes with mode 0600 at first start, then reuses them', async () => {
    const file = fresh();
    const s = await loadOrCreateSecret(file);
    assert.equal(s.length, SECRET_BYTES);
    const st = await stat(file);
    assert.equal(st.mode & 0o7777, 0o600);
    assert.equal(st.uid, process.geteuid?.());
    assert.deepEqual(await readFile(file), s);
    assert.deepEqual(await loadOrCreateSecret(file), s);
    assert.notDeepEqual(await loadOrCreateSecret(fresh()), s);
    assert.deepEqual((await readdir(path.dirname(file))).sort(), ['secret']);
  });

  it('gives every concurrent caller the same secret', async () => {
    const file = fresh();
    const all = await Promise.all(Array.from({ length: 20 }, () => loadOrCreateSecret(file)));
    for (const s of all) assert.deepEqual(s, all[0]);
    assert.deepEqual(await readdir(path.dirname(file)), ['secret']);
  });

  it('uses a generated 32-byte secret verbatim, even if it ends in a newline byte', async () => {
    const file = fresh();
    await mkdir(path.dirname(file));
    const raw = Buffer.concat([Buffer.alloc(31, 7), Buffer.from('\n')]);
    await writeFile(file, raw, { mode: 0o600 });
    assert.deepEqual(await loadOrCreateSecret(file), raw);
  });

  it("accepts the reference's text secrets, trimming one trailing newline", async () => {
    for (const [content, key] of [
      ['ABCDEFGHIJKLMNOPQRSTUVWXYZ012345\n', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ012345'],
      ['ABCDEFGHIJKLMNOPQRSTUVWX\r\n', 'ABCDEFGHIJKLMNOPQRSTUVWX'],
      ['ABCDEFGHIJKLMNOP', 'ABCDEFGHIJKLMNOP'],
    ] as const) {
      const file = fresh();
      await mkdir(path.dirname(file));
      await writeFile(file, content, { mode: 0o600 });
      assert.deepEqual(await loadOrCreateSecret(file), Buffer.from(key));
    }
  });

  it('refuses a secret readable by others, naming the file and mode', async () => {
    for (const mode of [0o644, 0o640, 0o604, 0o660]) {
      const file = fresh();
      await mkdir(path.dirname(file));
      await writeFile(file, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ012345');
      await chmod(file, mode);
      await assert.rejects(loadOrCreateSecret(file), (err: unknown) => {
        assert.ok(err instanceof UnsafeFileError);
        assert.equal(err.path, file);
        assert.ok(err.message.includes(file));
        assert.ok(err.message.includes(`0${mode.toString(8)}`), err.message);
        return true;
      });
      // Refused, not repaired.
      assert.equal((await stat(file)).mode & 0o777, mode);
    }
  });

  it('refuses files that cannot be secrets', async () => {
    const short = fresh();
    await mkdir(path.dirname(short));
    await writeFile(short, 'tooshort\n', { mode: 0o600 });
    await assert.rejects(loadOrCreateSecret(short), ConfigError);

    const empty = fresh();
    await mkdir(path.dirname(empty));
    await writeFile(empty, '', { mode: 0o600 });
    await assert.rejects(loadOrCreateSecret(empty), ConfigError);

    const asDir = fresh();
    await mkdir(asDir, { recursive: true, mode: 0o700 });
    await assert.rejects(loadOrCreateSecret(asDir), UnsafeFileError);

    const fifo = fresh();
    await mkdir(path.dirname(fifo));
    execFileSync('mkfifo', ['-m', '600', fifo]);
    await assert.rejects(loadOrCreateSecret(fifo), UnsafeFileError); // and does not hang
  });

  it('checks the file a symlink points to', async () => {
    const real = fresh();
    await mkdir(path.dirname(real));
    await writeFile(real, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ012345', { mode: 0o644 });
    await chmod(real, 0o644);
    const link = fresh();
    await mkdir(path.dirname(link));
    await symlink(real, link);
    await assert.rejects(loadOrCreateSecret(link), UnsafeFileError);
  });
});
