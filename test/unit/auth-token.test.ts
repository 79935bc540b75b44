// Tokens: issue/verify round trip, and refusal of every alteration, truncation and garbage.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InvalidArgumentError } from '../../src/errors.js';
import { MAX_TOKEN_LENGTH, issueToken, verifyToken } from '../../src/auth/token.js';

const SECRET = Buffer.from('0123456789abcdef0123456789abcdef');
const OTHER = Buffer.from('fedcba9876543210fedcba9876543210');

describe('issueToken / verifyToken', () => {
  it('round-trips every uid, including 0 and the largest', () => {
    for (const uid of [0, 1, 1000, 65534, 4294967294]) {
      const t = issueToken(SECRET, uid);
      assert.match(t, /^mp1\.[0-9]+\.[A-Za-z0-9_-]{43}$/);
      assert.deepEqual(verifyToken(SECRET, t), { ok: true, uid });
    }
  });

  it('is deterministic per uid and differs between uids and secrets', () => {
    assert.equal(issueToken(SECRET, 1000), issueToken(SECRET, 1000));
    assert.notEqual(issueToken(SECRET, 1000), issueToken(SECRET, 1001));
    assert.notEqual(issueToken(SECRET, 1000), issueToken(OTHER, 1000));
  });

  it("proves A's uid, never B's", () => {
    const a = issueToken(SECRET, 1000);
    const r = verifyToken(SECRET, a);
    assert.ok(r.ok);
    assert.equal(r.uid, 1000);
    assert.notEqual(r.uid, 1001);
    // Rewriting the uid field keeps A's MAC, which does not fit B.
    assert.deepEqual(verifyToken(SECRET, a.replace('mp1.1000.', 'mp1.1001.')), { ok: false, reason: 'bad-mac' });
    assert.deepEqual(verifyToken(SECRET, a.replace('mp1.1000.', 'mp1.0.')), { ok: false, reason: 'bad-mac' });
  });

  it('refuses tokens minted under another secret', () => {
    assert.deepEqual(verifyToken(SECRET, issueToken(OTHER, 0)), { ok: false, reason: 'bad-mac' });
  });

  it('tolerates surrounding whitespace and newlines', () => {
    const t = issueToken(SECRET, 42);
    for (const v of [`${t}\n`, `${t}\r\n`, ` ${t} `, `\t${t}\n\n`]) assert.deepEqual(verifyToken(SECRET, v), { ok: true, uid: 42 });
    assert.equal(verifyToken(SECRET, `${t.slice(0, 10)} ${t.slice(10)}`).ok, false);
  });

  it('refuses every single-character alteration', () => {
    const t = issueToken(SECRET, 1000);
    const alphabet = 'ABZaz09_-.+/=!';
    for (let i = 0; i < t.length; i++) {
      for (const c of alphabet) {
        if (c === t[i]) continue;
        const altered = t.slice(0, i) + c + t.slice(i + 1);
        const r = verifyToken(SECRET, altered);
        // A uid digit changed to another digit is a well-formed token for another uid.
        assert.equal(r.ok, false, altered);
      }
    }
  });

  it('refuses a non-canonical encoding of the right MAC', () => {
    const t = issueToken(SECRET, 7);
    const last = t.at(-1) as string;
    // The last of 43 base64url characters carries 2 unused bits; flip one of them.
    const alpha = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const twin = alpha[alpha.indexOf(last) ^ 1] as string;
    assert.deepEqual(Buffer.from(t.slice(-43, -1) + twin, 'base64url'), Buffer.from(t.slice(-43), 'base64url'));
    assert.deepEqual(verifyToken(SECRET, t.slice(0, -1) + twin), { ok: false, reason: 'bad-mac' });
  });

  it('refuses every truncation and extension', () => {
    const t = issueToken(SECRET, 31337);
    for (let n = 0; n < t.length; n++) assert.equal(verifyToken(SECRET, t.slice(0, n)).ok, false, `length ${n}`);
    assert.equal(verifyToken(SECRET, `${t}A`).ok, false);
    assert.equal(verifyToken(SECRET, `x${t}`).ok, false);
  });

  it('refuses malformed shapes', () => {
    const mac = issueToken(SECRET, 5).split('.')[2] as string;
    for (const v of [
      '',
      'mp1',
      `mp1.05.${mac}`,
      `mp1.-5.${mac}`,
      `mp1.+5.${mac}`,
      `mp1.4294967295.${mac}`,
      `mp1.99999999999.${mac}`,
      `mp2.5.${mac}`,
      `MP1.5.${mac}`,
      `mp1.5.${mac}=`,
      `mp1.5.${mac.replace(/.$/, '+')}`,
      'q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq8w=', // a reference AES token
      'x'.repeat(MAX_TOKEN_LENGTH + 1),
      ' '.repeat(10_000_000),
    ]) {
      assert.deepEqual(verifyToken(SECRET, v), { ok: false, reason: 'malformed' }, v.slice(0, 60));
    }
  });

  it('refuses non-strings without throwing', () => {
    const t = issueToken(SECRET, 1);
    for (const v of [undefined, null, 0, 1, NaN, true, {}, [], [t], { toString: () => t }, Buffer.from(t), Symbol('t'), 10n, () => t]) {
      assert.deepEqual(verifyToken(SECRET, v), { ok: false, reason: 'malformed' });
    }
  });

  it('never throws and never accepts random input (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.anything(), fc.string({ unit: 'binary' }), fc.string({ unit: 'binary-ascii', maxLength: 300 })), (v) => {
        return verifyToken(SECRET, v).ok === false;
      }),
      { numRuns: 3000 },
    );
    for (let i = 0; i < 200; i++) {
      const junk = randomBytes(1 + (i % 100)).toString('latin1');
      assert.equal(verifyToken(SECRET, junk).ok, false);
      assert.equal(verifyToken(SECRET, `mp1.${i}.${randomBytes(32).toString('base64url')}`).ok, false);
    }
  });

  it('refuses invalid uids and empty secrets when issuing', () => {
    for (const uid of [-1, 1.5, NaN, 4294967295, Number.MAX_SAFE_INTEGER]) {
      assert.throws(() => issueToken(SECRET, uid), InvalidArgumentError);
    }
    assert.throws(() => issueToken(Buffer.alloc(0), 1), InvalidArgumentError);
    assert.throws(() => verifyToken(Buffer.alloc(0), 'x'), InvalidArgumentError);
  });
});
