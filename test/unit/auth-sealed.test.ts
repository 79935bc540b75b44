/**
 * Sealed params (src/auth/sealed.ts): the test vector of docs/protocol.md §2.4 (checked against
 * Python's `cryptography` when it was made), a round trip, and what cannot be opened: another
 * key, an altered ciphertext, a value that is not sealed; whole messages opened in place.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gridKey } from '../../src/auth/gridAuth.js';
import { isSealed, seal, unseal, unsealMessage } from '../../src/auth/sealed.js';

const KEY = gridKey(Buffer.from(Array.from({ length: 32 }, (_, i) => i)));
const OTHER = gridKey(Buffer.alloc(32, 7));
const VECTOR = { Sealed: 'AQEBAQEBAQEBAQEBWb1xw4f8ZYCn0o4QDT1k2YOvUKzaRZW1wmjz8Pw', k: '630dcd29' };

describe('sealed params', () => {
  it('seals the test vector of docs/protocol.md and opens it', () => {
    assert.deepEqual(seal({ port: 8080 }, KEY, Buffer.alloc(12, 1)), VECTOR);
    assert.deepEqual(unseal(VECTOR, [OTHER, KEY]), { port: 8080 });
  });

  it('opens a fresh seal (a new iv each time), and nothing it should not', () => {
    const params = { port: 8080, path: '/ü', list: [1, null, { a: true }] };
    const a = seal(params, KEY);
    const b = seal(params, KEY);
    assert.notEqual(a.Sealed, b.Sealed);
    assert.deepEqual(unseal(a, [KEY]), params);
    assert.equal(unseal(a, [OTHER]), undefined, 'another key');
    assert.equal(unseal({ ...a, k: OTHER.id }, [OTHER]), undefined, 'another key under its id');
    const raw = Buffer.from(a.Sealed, 'base64url');
    raw[14] = (raw[14] as number) ^ 1;
    assert.equal(unseal({ ...a, Sealed: raw.toString('base64url') }, [KEY]), undefined, 'an altered ciphertext');
    assert.equal(unseal({ ...a, Sealed: 'AAAA' }, [KEY]), undefined, 'too short');
    assert.equal(isSealed({ Sealed: 'x', k: 'y', more: 1 }), false);
    assert.equal(isSealed({ port: 1 }), false);
  });

  it('opens every sealed value of a message in place, and leaves other messages as they are', () => {
    const message = {
      Command: 'OK',
      Services: [{ id: 'web', params: seal({ port: 80 }, KEY) }, { id: 'x', params: seal({ port: 81 }, OTHER) }],
      Params: seal({ hostname: 'h1' }, KEY),
    };
    const opened = JSON.parse(Buffer.from(unsealMessage(Buffer.from(JSON.stringify(message)), [KEY])).toString()) as Record<string, unknown>;
    assert.deepEqual(opened['Services'], [{ id: 'web', params: { port: 80 } }, { id: 'x', params: message.Services[1]?.params }], 'what the keys do not open stays sealed');
    assert.deepEqual(opened['Params'], { hostname: 'h1' });
    const plain = Buffer.from('{"Command":"OK","Params":{"port":80}}');
    assert.equal(unsealMessage(plain, [KEY]), plain);
  });
});
