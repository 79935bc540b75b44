/**
 * Binding tokens: proof that a local caller is a given uid.
 *
 * A token is `mp1.<uid>.<mac>`, where `<mac>` is HMAC-SHA256(secret, "mp1.<uid>") in unpadded
 * base64url. It replaces the reference's unauthenticated AES-ECB token, which anyone could alter
 * (PROTOCOL.md §6). Only polod knows the secret, so only polod can mint a token; it writes the
 * token for uid U into U's own 0600 token file, so whoever can present it can read U's files,
 * which is the proof of identity. Tokens are deterministic: re-issuing yields the same string,
 * and revoking all of them means replacing the secret file. Bindings treat the token as opaque.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';

/** Version tag of the token format; a future format gets a new tag. */
export const TOKEN_VERSION = 'mp1';

/** Largest string `verifyToken` looks at; real tokens are under 60 characters. */
export const MAX_TOKEN_LENGTH = 256;

/** Highest valid uid: (uid_t)-1 = 4294967295 means "no uid" to the kernel. */
const MAX_UID = 0xfffffffe;

/** Leading zeros are refused so each uid has exactly one token string. */
const TOKEN_RE = /^mp1\.(0|[1-9][0-9]{0,9})\.([A-Za-z0-9_-]{43})$/;

/** Why `verifyToken` refused a token: not a token at all, or a token polod did not issue. */
export type TokenRefusal = 'malformed' | 'bad-mac';

/** Outcome of `verifyToken`. */
export type TokenVerification = { ok: true; uid: number } | { ok: false; reason: TokenRefusal };

function isUid(uid: unknown): uid is number {
  return typeof uid === 'number' && Number.isInteger(uid) && uid >= 0 && uid <= MAX_UID;
}

function mac(secret: Uint8Array, uid: number): string {
  return createHmac('sha256', secret).update(`${TOKEN_VERSION}.${uid}`).digest('base64url');
}

function checkSecret(secret: Uint8Array): void {
  if (!(secret instanceof Uint8Array) || secret.length === 0) {
    throw new InvalidArgumentError('token secret must be a non-empty Buffer');
  }
}

/**
 * The token proving `uid`, under `secret`.
 * @throws InvalidArgumentError if `uid` is not an integer in 0..4294967294 or the secret is empty.
 */
export function issueToken(secret: Uint8Array, uid: number): string {
  checkSecret(secret);
  if (!isUid(uid)) throw new InvalidArgumentError(`uid must be an integer between 0 and ${MAX_UID}, got ${String(uid)}`);
  return `${TOKEN_VERSION}.${uid}.${mac(secret, uid)}`;
}

/**
 * Checks a token presented by a binding and returns the uid it proves. Surrounding whitespace
 * (a trailing newline from reading the file verbatim) is ignored. Never throws on the token:
 * anything that is not a string of the right shape is 'malformed'; a well-formed token whose
 * MAC does not match (altered, or minted under another secret) is 'bad-mac'.
 * @throws InvalidArgumentError only if `secret` is empty (a programming error, not input).
 */
export function verifyToken(secret: Uint8Array, token: unknown): TokenVerification {
  checkSecret(secret);
  // Length first: never spend work proportional to an attacker's megabyte string.
  if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: 'malformed' };
  const m = TOKEN_RE.exec(token.trim());
  if (m === null) return { ok: false, reason: 'malformed' };
  const uid = Number(m[1]);
  if (!isUid(uid)) return { ok: false, reason: 'malformed' };
  // Compare the base64url text rather than decoded bytes: a non-canonical encoding of the right
  // MAC (different unused low bits in the last character) is refused, so each uid has one token.
  // Both sides are 43 ASCII characters (the regex guarantees it), as timingSafeEqual requires.
  const given = Buffer.from(m[2] as string, 'latin1');
  const expected = Buffer.from(mac(secret, uid), 'latin1');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad-mac' };
  return { ok: true, uid };
}
