// resolveInside admits one plain segment only; fileNameForId maps every id to one, reversibly.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InvalidArgumentError } from '../../src/errors.js';
import { fileNameForId, idForFileName, isPlainSegment, resolveInside } from '../../src/util/safePath.js';

const DIR = '/var/lib/marcopolo/services';

describe('resolveInside', () => {
  it('joins plain names', () => {
    assert.equal(resolveInside(DIR, 'printer'), `${DIR}/printer`);
    assert.equal(resolveInside(DIR, '.hidden'), `${DIR}/.hidden`);
    assert.equal(resolveInside(DIR, '...'), `${DIR}/...`);
    assert.equal(resolveInside(DIR, 'ñandú 🐦'), `${DIR}/ñandú 🐦`);
    assert.equal(resolveInside('rel/dir', 'x'), path.resolve('rel/dir', 'x'));
    assert.equal(resolveInside(DIR, 'a'.repeat(255)), `${DIR}/${'a'.repeat(255)}`);
  });

  it('refuses anything that could leave the folder or confuse the file system', () => {
    const bad: unknown[] = [
      '',
      '.',
      '..',
      '../../etc/x',
      '/etc/passwd',
      'a/b',
      'a\\b',
      '..\\x',
      'a\0b',
      'a\nb',
      'a\x1bb',
      'a\x7f',
      'a\u0085',
      '\ud800',
      'x\udc00y',
      'a'.repeat(256),
      'é'.repeat(128), // 256 bytes
      undefined,
      null,
      42,
      ['a'],
    ];
    for (const name of bad) {
      assert.throws(() => resolveInside(DIR, name as string), InvalidArgumentError, JSON.stringify(name));
      assert.equal(isPlainSegment(name), false);
    }
  });
});

describe('fileNameForId', () => {
  it('keeps ordinary ids as they are (the reference file names)', () => {
    for (const id of ['printer', 'web-server_2', 'org.example.svc', 'a.b..c', 'x.']) assert.equal(fileNameForId(id), id);
  });

  it('encodes everything else, including a leading dot', () => {
    assert.equal(fileNameForId('.'), '%2E');
    assert.equal(fileNameForId('..'), '%2E.');
    assert.equal(fileNameForId('.hidden'), '%2Ehidden');
    assert.equal(fileNameForId('../../etc/x'), '%2E.%2F..%2Fetc%2Fx');
    assert.equal(fileNameForId('/etc/passwd'), '%2Fetc%2Fpasswd');
    assert.equal(fileNameForId('a\0b'), 'a%00b');
    assert.equal(fileNameForId('my service'), 'my%20service');
    assert.equal(fileNameForId('100%'), '100%25');
    assert.equal(fileNameForId('ñ'), '%C3%B1');
  });

  it('refuses ids that cannot be stored', () => {
    assert.throws(() => fileNameForId(''), InvalidArgumentError);
    assert.throws(() => fileNameForId('\ud800'), InvalidArgumentError);
    assert.throws(() => fileNameForId('/'.repeat(86)), InvalidArgumentError); // 258 bytes encoded
    assert.equal(fileNameForId('/'.repeat(85)).length, 255);
  });

  it('always yields a plain segment that decodes back to the id (property)', () => {
    const ids = fc.oneof(
      fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }),
      fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 80 }),
      fc.constantFrom('.', '..', '...', '.tmp', '%', '%2E', 'token'),
    );
    fc.assert(
      fc.property(ids, (id) => {
        let name: string;
        try {
          name = fileNameForId(id);
        } catch (err) {
          // Only too-long ids are refused.
          return err instanceof InvalidArgumentError && Buffer.byteLength(id) * 3 > 255;
        }
        return isPlainSegment(name) && !name.startsWith('.') && idForFileName(name) === id;
      }),
      { numRuns: 2000 },
    );
  });

  it('is injective (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }), fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }), (a, b) =>
        a === b ? true : fileNameForId(a) !== fileNameForId(b),
      ),
    );
  });

  it('reads reference file names leniently', () => {
    assert.equal(idForFileName('my service'), 'my service');
    assert.equal(idForFileName('50%off'), '50%off');
    assert.equal(idForFileName('a%'), 'a%');
    assert.equal(idForFileName('%ff'), undefined); // not UTF-8
  });
});
