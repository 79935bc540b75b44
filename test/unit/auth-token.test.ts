// Tokens: issue/verify round trip, the 44-character bound, refusal of every alteration,
// truncation and garbage, and the first format (whole, or cut by the C++ binding) still accepted.
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InvalidArgumentError } from '../../src/errors.js';
import { MAX_ISSUED_TOKEN_LENGTH, MAX_TOKEN_LENGTH, issueToken, verifyToken } from '../../src/auth/token.js';

const SECRET = Buffer.from('0123456789abcdef0123456789abcdef');
const OTHER = Buffer.from('fedcba9876543210fedcba9876543210');

/** A first-format token, computed here from its definition rather than by the code under test. */
function legacyToken(secret: Uint8Array, uid: number): string {
  return `mp1.${uid}.${createHmac('sha256', secret).update(`mp1.${uid}`).digest('base64url')}`;
}

/** What the reference C++ binding sends: `fgets(buf, 50, f)` keeps at most 49 characters. */
const fgets50 = (content: string): string => content.slice(0, 49).split('\n')[0] as string;

describe('issueToken / verifyToken', () => {
  it('fits the longest token, for uid 4294967295, in 44 characters', () => {
    const longest = issueToken(SECRET, 4294967295);
    assert.equal(longest, `mp2.1z141z3.${longest.slice(12)}`);
    assert.equal(longest.length, 44);
    assert.equal(MAX_ISSUED_TOKEN_LENGTH, 44);
    // A uid's base-36 text only grows with the uid, so no token is longer than this one.
    for (const uid of [0, 9, 35, 36, 1000, 9999, 65534, 2 ** 31, 4294967294]) {
      assert.ok(issueToken(SECRET, uid).length <= longest.length, `uid ${uid}`);
    }
    // The C++ binding reads it whole.
    assert.equal(fgets50(longest), longest);
  });

  it('round-trips every uid, including 0 and the largest', () => {
    for (const uid of [0, 1, 35, 36, 1000, 65534, 4294967294, 4294967295]) {
      const t = issueToken(SECRET, uid);
      assert.match(t, /^mp2\.[0-9a-z]+\.[A-Za-z0-9_-]{32}$/);
      assert.equal(t.split('.')[1], uid.toString(36));
      assert.deepEqual(verifyToken(SECRET, t), { ok: true, uid, legacy: false });
    }
  });

  it('carries the first 192 bits of HMAC-SHA256 over the text before the MAC', () => {
    const t = issueToken(SECRET, 1000);
    const expected = createHmac('sha256', SECRET).update('mp2.rs').digest().subarray(0, 24).toString('base64url');
    assert.equal(t, `mp2.rs.${expected}`);
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
    // Rewriting the uid field keeps A's MAC, which does not fit B.
    assert.deepEqual(verifyToken(SECRET, a.replace('mp2.rs.', 'mp2.rt.')), { ok: false, reason: 'bad-mac' });
    assert.deepEqual(verifyToken(SECRET, a.replace('mp2.rs.', 'mp2.0.')), { ok: false, reason: 'bad-mac' });
  });

  it('refuses tokens minted under another secret', () => {
    assert.deepEqual(verifyToken(SECRET, issueToken(OTHER, 0)), { ok: false, reason: 'bad-mac' });
  });

  it('tolerates surrounding whitespace and newlines', () => {
    const t = issueToken(SECRET, 42);
    for (const v of [`${t}\n`, `${t}\r\n`, ` ${t} `, `\t${t}\n\n`]) assert.deepEqual(verifyToken(SECRET, v), { ok: true, uid: 42, legacy: false });
    assert.equal(verifyToken(SECRET, `${t.slice(0, 10)} ${t.slice(10)}`).ok, false);
  });

  it('refuses every single-character alteration', () => {
    const t = issueToken(SECRET, 1000);
    const alphabet = 'ABZaz09_-.+/=!';
    for (let i = 0; i < t.length; i++) {
      for (const c of alphabet) {
        if (c === t[i]) continue;
        const altered = t.slice(0, i) + c + t.slice(i + 1);
        // A uid character changed to another is a well-formed token for another uid.
        assert.equal(verifyToken(SECRET, altered).ok, false, altered);
      }
    }
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
      'mp2',
      `mp2.05.${mac}`,
      `mp2.-5.${mac}`,
      `mp2.+5.${mac}`,
      `mp2.5Z.${mac}`,
      `mp2.1z141z4.${mac}`, // 4294967296: beyond 32 bits
      `mp2.zzzzzzzz.${mac}`,
      `mp3.5.${mac}`,
      `MP2.5.${mac}`,
      `mp2.5.${mac}=`,
      `mp2.5.${mac}A`,
      `mp2.5.${mac.replace(/.$/, '+')}`,
      `mp1.5.${mac}`,
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
      assert.equal(verifyToken(SECRET, `mp2.${i.toString(36)}.${randomBytes(24).toString('base64url')}`).ok, false);
      assert.equal(verifyToken(SECRET, `mp1.${i}.${randomBytes(32).toString('base64url')}`).ok, false);
    }
  });

  it('refuses invalid uids and empty secrets when issuing', () => {
    for (const uid of [-1, 1.5, NaN, 4294967296, Number.MAX_SAFE_INTEGER]) {
      assert.throws(() => issueToken(SECRET, uid), InvalidArgumentError);
    }
    assert.throws(() => issueToken(Buffer.alloc(0), 1), InvalidArgumentError);
    assert.throws(() => verifyToken(Buffer.alloc(0), 'x'), InvalidArgumentError);
  });
});

describe('first-format tokens (mp1)', () => {
  it('still prove their uid, marked legacy so the file gets replaced', () => {
    for (const uid of [0, 7, 1000, 65534, 4294967294]) {
      assert.deepEqual(verifyToken(SECRET, legacyToken(SECRET, uid)), { ok: true, uid, legacy: true });
      assert.deepEqual(verifyToken(SECRET, `${legacyToken(SECRET, uid)}\n`), { ok: true, uid, legacy: true });
    }
  });

  it('still prove their uid when cut to 49 characters by the C++ binding', () => {
    for (const uid of [10, 1000, 1234, 65534, 4294967294]) {
      const whole = legacyToken(SECRET, uid);
      assert.ok(whole.length > 49);
      const cut = fgets50(whole);
      assert.equal(cut.length, 49);
      assert.deepEqual(verifyToken(SECRET, cut), { ok: true, uid, legacy: true });
    }
  });

  it('refuses other secrets, other uids, alterations and other cuts', () => {
    const whole = legacyToken(SECRET, 1000);
    const cut = whole.slice(0, 49);
    assert.deepEqual(verifyToken(SECRET, legacyToken(OTHER, 1000)), { ok: false, reason: 'bad-mac' });
    assert.deepEqual(verifyToken(SECRET, legacyToken(OTHER, 1000).slice(0, 49)), { ok: false, reason: 'bad-mac' });
    assert.deepEqual(verifyToken(SECRET, whole.replace('mp1.1000.', 'mp1.1001.')), { ok: false, reason: 'bad-mac' });
    assert.deepEqual(verifyToken(SECRET, cut.replace('mp1.1000.', 'mp1.1001.')), { ok: false, reason: 'bad-mac' });
    for (let i = 9; i < cut.length; i++) {
      const c = cut[i] === 'A' ? 'B' : 'A';
      assert.equal(verifyToken(SECRET, cut.slice(0, i) + c + cut.slice(i + 1)).ok, false, `position ${i}`);
    }
    // Only the fgets cut, 49 characters, is a legacy token: every other truncation is refused.
    for (let n = 0; n < whole.length; n++) {
      if (n !== 49) assert.equal(verifyToken(SECRET, whole.slice(0, n)).ok, false, `length ${n}`);
    }
    // A one-digit uid's token is 49 characters whole; cut shorter, it is refused.
    assert.equal(verifyToken(SECRET, legacyToken(SECRET, 7).slice(0, 48)).ok, false);
  });

  it('refuses a non-canonical encoding of the whole MAC', () => {
    const t = legacyToken(SECRET, 7);
    const last = t.at(-1) as string;
    // The last of 43 base64url characters carries 2 unused bits; flip one of them.
    const alpha = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const twin = alpha[alpha.indexOf(last) ^ 1] as string;
    assert.deepEqual(Buffer.from(t.slice(-43, -1) + twin, 'base64url'), Buffer.from(t.slice(-43), 'base64url'));
    assert.deepEqual(verifyToken(SECRET, t.slice(0, -1) + twin), { ok: false, reason: 'bad-mac' });
  });

  it('refuses malformed first-format shapes', () => {
    const mac = legacyToken(SECRET, 5).split('.')[2] as string;
    for (const v of [`mp1.05.${mac}`, `mp1.-5.${mac}`, `mp1.99999999999.${mac}`, `mp1.5.${mac}=`, `mp1.4294967296.${mac}`]) {
      assert.deepEqual(verifyToken(SECRET, v), { ok: false, reason: 'malformed' }, v);
    }
  });
});
