/** Loading a services folder: every file, in name order, one warning per file left out, never an exception. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { DEFAULT_VERIFY_REGEXP } from '../../src/config/poloConfig.js';
import { isSkippedFileName, loadServiceDir, MAX_SERVICE_FILE_BYTES } from '../../src/config/serviceDir.js';

const top = mkdtempSync(path.join(tmpdir(), 'mp-svcdir-'));
after(() => rmSync(top, { recursive: true, force: true }));
const root = { userService: false, verifyRegexp: new RegExp(DEFAULT_VERIFY_REGEXP) };
let counter = 0;

/** A fresh folder holding `files` (name → JSON value, or raw text). */
function folder(files: Record<string, unknown>): string {
  const dir = path.join(top, `d${++counter}`);
  mkdirSync(dir);
  for (const [name, value] of Object.entries(files)) {
    writeFileSync(path.join(dir, name), typeof value === 'string' ? value : JSON.stringify(value));
  }
  return dir;
}

/** Asserts exactly one warning matching each pattern, in any order, and no other. */
function assertWarnings(warnings: string[], ...patterns: RegExp[]): void {
  assert.equal(warnings.length, patterns.length, warnings.join('\n'));
  for (const p of patterns) assert.ok(warnings.some((w) => p.test(w)), `no warning matches ${p}:\n${warnings.join('\n')}`);
}

describe('loadServiceDir', () => {
  it('reads every regular file, any name, sorted by name', async () => {
    const dir = folder({ zeta: { id: 'z' }, 'alpha.json': { id: 'a', params: { port: 1 } }, mid: { id: 'm' } });
    const { services, warnings } = await loadServiceDir(dir, root);
    assert.deepEqual(warnings, []);
    assert.deepEqual(
      services.map((s) => [s.id, s.file]),
      [
        ['a', path.join(dir, 'alpha.json')],
        ['m', path.join(dir, 'mid')],
        ['z', path.join(dir, 'zeta')],
      ],
    );
    assert.ok(services.every((s) => s.origin === 'file' && s.permanent));
  });

  it('gives a missing folder as an empty result with one warning', async () => {
    const dir = path.join(top, 'nowhere');
    const { services, warnings } = await loadServiceDir(dir, root);
    assert.deepEqual(services, []);
    assertWarnings(warnings, new RegExp(`^${dir}: .*no services loaded`));
  });

  it('skips dotfiles, editor backups and .tmp files silently, and what the caller skips', async () => {
    const dir = folder({
      '.hidden': { id: 'h' },
      'web~': { id: 'b' },
      '#web#': { id: 'e' },
      'web.tmp': { id: 't' },
      token: 'not json at all',
      web: { id: 'web' },
    });
    const { services, warnings } = await loadServiceDir(dir, { ...root, skip: (n) => n === 'token' });
    assert.deepEqual(warnings, []);
    assert.deepEqual(
      services.map((s) => s.id),
      ['web'],
    );
    assert.equal(isSkippedFileName('web'), false);
  });

  it('warns about an invalid file and still loads the rest', async () => {
    const dir = folder({
      a: { id: 'a' },
      broken: '{"id": ',
      noparams: { id: 'p', params: [1] },
      nogroups: { id: 'g', groups: '224.0.0.112' },
      empty: { id: '' },
      z: { id: 'z' },
    });
    const { services, warnings } = await loadServiceDir(dir, root);
    assert.deepEqual(
      services.map((s) => s.id),
      ['a', 'z'],
    );
    assertWarnings(
      warnings,
      new RegExp(`^${path.join(dir, 'broken')}: not valid JSON`),
      new RegExp(`^${path.join(dir, 'noparams')}: "params"`),
      new RegExp(`^${path.join(dir, 'nogroups')}: "groups"`),
      new RegExp(`^${path.join(dir, 'empty')}: "id" is empty`),
    );
  });

  it('warns about entries that cannot be read: a folder and a dangling symlink', async () => {
    const dir = folder({ ok: { id: 'ok' } });
    mkdirSync(path.join(dir, 'looks-like-a-file'));
    symlinkSync(path.join(dir, 'gone'), path.join(dir, 'dangling'));
    const { services, warnings } = await loadServiceDir(dir, root);
    assert.deepEqual(
      services.map((s) => s.id),
      ['ok'],
    );
    assertWarnings(
      warnings,
      new RegExp(`^${path.join(dir, 'looks-like-a-file')}: not a regular file`),
      new RegExp(`^${path.join(dir, 'dangling')}: cannot read`),
    );
  });

  it('follows a symlink to a regular file, not to a folder', async () => {
    const other = folder({ target: { id: 'linked' } });
    const dir = folder({});
    symlinkSync(path.join(other, 'target'), path.join(dir, 'link'));
    symlinkSync(other, path.join(dir, 'dirlink'));
    const { services, warnings } = await loadServiceDir(dir, root);
    assert.deepEqual(
      services.map((s) => [s.id, s.file]),
      [['linked', path.join(dir, 'link')]],
    );
    assertWarnings(warnings, /dirlink: not a regular file/);
  });

  it('warns about a file over 64 KiB', async () => {
    const pad = ' '.repeat(MAX_SERVICE_FILE_BYTES);
    const dir = folder({ big: `{"id": "big"}${pad}`, small: { id: 'small' } });
    const { services, warnings } = await loadServiceDir(dir, root);
    assert.deepEqual(
      services.map((s) => s.id),
      ['small'],
    );
    assertWarnings(warnings, /big: \d+ bytes, over the 65536-byte limit/);
  });

  it('warns about a file that is not UTF-8', async () => {
    const dir = folder({});
    writeFileSync(path.join(dir, 'latin1'), Buffer.from([0x7b, 0x22, 0xe9, 0x22, 0x7d]));
    const { warnings } = await loadServiceDir(dir, root);
    assertWarnings(warnings, /latin1: not valid UTF-8/);
  });

  it('skips a duplicate id in an overlapping group, naming both files', async () => {
    const dir = folder({
      a: { id: 'web', params: { n: 1 } },
      b: { id: 'web', params: { n: 2 } },
    });
    const { services, warnings } = await loadServiceDir(dir, root);
    assert.deepEqual(services.map((s) => s.params), [{ n: 1 }]);
    assertWarnings(warnings, new RegExp(`^${path.join(dir, 'b')}: id 'web' is already used by ${path.join(dir, 'a')} in every group`));
  });

  it('keeps the same id in disjoint groups; refuses it where the groups overlap', async () => {
    const dir = folder({
      a: { id: 'web', groups: ['224.0.0.112'] },
      b: { id: 'web', groups: ['224.0.0.113'] },
      c: { id: 'web', groups: ['224.0.0.113', '224.0.0.114'] },
      d: { id: 'web' },
    });
    const { services, warnings } = await loadServiceDir(dir, root);
    assert.deepEqual(
      services.map((s) => path.basename(s.file ?? '')),
      ['a', 'b'],
    );
    assertWarnings(warnings, /c: id 'web' .* in group 224\.0\.0\.113, skipped/, /d: id 'web' .* b? ?.*in group/);
  });

  it('lets an enabled service win over an earlier disabled one with the same id', async () => {
    const dir = folder({ a: { id: 'web', disabled: true }, b: { id: 'web' } });
    const { services, warnings } = await loadServiceDir(dir, root);
    assert.deepEqual(
      services.map((s) => [path.basename(s.file ?? ''), s.disabled]),
      [['b', false]],
    );
    assertWarnings(warnings, /a: id 'web' is already used by .*b/);
  });

  it('applies the publish API id rules: no user-style root id, no unfindable user id', async () => {
    const dir = folder({ u: { id: 'alice:web' } });
    assertWarnings((await loadServiceDir(dir, root)).warnings, /user service/);
    // In alice's folder the id is the bare name: alice:alice:web could never be asked for.
    const asUser = await loadServiceDir(dir, { ...root, userService: true, ownerName: 'alice' });
    assertWarnings(asUser.warnings, /letters, digits and '_'.*'alice:alice:web'/);
    const fine = await loadServiceDir(folder({ w: { id: 'web' } }), { ...root, userService: true, ownerName: 'alice' });
    assert.deepEqual(fine.warnings, []);
    assert.equal(fine.services[0]?.id, 'web');
  });

  it('with an owner, reads only files owned by that uid', async () => {
    const dir = folder({ mine: { id: 'mine' } });
    const uid = process.getuid?.() ?? 0;
    assert.equal((await loadServiceDir(dir, { ...root, owner: uid })).services.length, 1);
    const other = await loadServiceDir(dir, { ...root, owner: uid + 4242 });
    assert.deepEqual(other.services, []);
    assertWarnings(other.warnings, new RegExp(`mine: owned by uid ${uid}, not by uid ${uid + 4242}`));
  });
});
