/**
 * Binding tokens: proof that a local caller is a given uid.
 *
 * A token is `mp2.<uid>.<mac>`: `<uid>` in base 36 (lower case, no leading zeros) and `<mac>` the
 * first 24 bytes (192 bits) of HMAC-SHA256(secret, "mp2.<uid>") in unpadded base64url (32
 * characters). The longest, for uid 4294967295 (`1z141z3`), is 44 characters: the length of the
 * reference's own tokens, and within the 49 characters the reference's C++ binding reads from the
 * token file (docs/protocol.md §5.1 gives the format and its strength).
 *
 * It replaces the reference's unauthenticated AES-ECB token, which anyone could alter. Only polod
 * knows the secret, so only polod can mint a token; it writes the token for uid U into U's own
 * 0600 token file, so whoever can present it can read U's files, which is the proof of identity.
 * Tokens are deterministic: re-issuing yields the same string, and revoking all of them means
 * replacing the secret file. Bindings treat the token as opaque.
 *
 * The first format, `mp1.<uid decimal>.<43-character full MAC>` (52 characters for uid 1000 and
 * up), is still accepted, and so is its first 49 characters (what the C++ binding sends when it
 * reads such a file): polod then rewrites the user's file with the current token (handler.ts).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';

/** Version tag of the token format; a future format gets a new tag. */
export const TOKEN_VERSION = 'mp2';

/** Longest token issued (uid 4294967295). */
export const MAX_ISSUED_TOKEN_LENGTH = 44;

/** Largest string `verifyToken` looks at; real tokens are at most 52 characters. */
export const MAX_TOKEN_LENGTH = 256;

/**
 * Highest uid a token can name: uid_t is 32 bits. (uid_t)-1 means "no uid" to the kernel, and
 * Request-token refuses it, so polod never issues that one; the format still covers it.
 */
const MAX_UID = 0xffffffff;

/** MAC bytes kept: 192 bits, 32 base64url characters without unused bits. */
const MAC_BYTES = 24;

/** Base 36 without leading zeros: each uid has exactly one token string. */
const TOKEN_RE = /^mp2\.(0|[1-9a-z][0-9a-z]{0,6})\.([A-Za-z0-9_-]{32})$/;

/** The first format: decimal uid, the whole 43-character MAC. */
const LEGACY_RE = /^mp1\.(0|[1-9][0-9]{0,9})\.([A-Za-z0-9_-]{43})$/;

/**
 * A first-format token cut by the C++ binding's `fgets(buf, 50, f)`: exactly 49 characters, so
 * 42 to 34 MAC characters (252 to 204 bits) remain for uids of 2 to 10 digits, more than a
 * current token carries. Uids of one digit gave 49-character tokens, which fgets did not cut.
 */
const LEGACY_CUT_LENGTH = 49;
const LEGACY_CUT_RE = /^mp1\.([1-9][0-9]{1,9})\.([A-Za-z0-9_-]{34,42})$/;

/** Why `verifyToken` refused a token: not a token at all, or a token polod did not issue. */
export type TokenRefusal = 'malformed' | 'bad-mac';

/**
 * Outcome of `verifyToken`. `legacy` is true for a token of the first format (whole or cut by
 * the C++ binding): valid, but the user's token file should be replaced by the current token.
 */
export type TokenVerification = { ok: true; uid: number; legacy: boolean } | { ok: false; reason: TokenRefusal };

function isUid(uid: unknown): uid is number {
  return typeof uid === 'number' && Number.isInteger(uid) && uid >= 0 && uid <= MAX_UID;
}

/** `mp2.<uid base 36>`: the part of the token the MAC covers. */
function head(uid: number): string {
  return `${TOKEN_VERSION}.${uid.toString(36)}`;
}

function mac(secret: Uint8Array, uid: number): string {
  return createHmac('sha256', secret).update(head(uid)).digest().subarray(0, MAC_BYTES).toString('base64url');
}

function legacyMac(secret: Uint8Array, uid: number): string {
  return createHmac('sha256', secret).update(`mp1.${uid}`).digest('base64url');
}

function checkSecret(secret: Uint8Array): void {
  if (!(secret instanceof Uint8Array) || secret.length === 0) {
    throw new InvalidArgumentError('token secret must be a non-empty Buffer');
  }
}

/** Constant-time equality of two secrets' texts (tokens, MACs): no early exit on the first difference. */
export function sameText(given: string, expected: string): boolean {
  const a = Buffer.from(given, 'utf8');
  const b = Buffer.from(expected, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The token proving `uid`, under `secret`.
 * @throws InvalidArgumentError if `uid` is not an integer in 0..4294967295 or the secret is empty.
 */
export function issueToken(secret: Uint8Array, uid: number): string {
  checkSecret(secret);
  if (!isUid(uid)) throw new InvalidArgumentError(`uid must be an integer between 0 and ${MAX_UID}, got ${String(uid)}`);
  return `${head(uid)}.${mac(secret, uid)}`;
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
  const text = token.trim();
  const current = TOKEN_RE.exec(text);
  if (current !== null) {
    const uid = parseInt(current[1] as string, 36);
    if (!isUid(uid)) return { ok: false, reason: 'malformed' };
    // Compare the base64url text rather than decoded bytes; 24 bytes are exactly 32 characters,
    // so there are no unused bits and no second spelling of the same MAC.
    return sameText(current[2] as string, mac(secret, uid)) ? { ok: true, uid, legacy: false } : { ok: false, reason: 'bad-mac' };
  }
  const legacy = LEGACY_RE.exec(text) ?? (text.length === LEGACY_CUT_LENGTH ? LEGACY_CUT_RE.exec(text) : null);
  if (legacy === null) return { ok: false, reason: 'malformed' };
  const uid = Number(legacy[1]);
  if (!isUid(uid)) return { ok: false, reason: 'malformed' };
  const given = legacy[2] as string;
  // A whole first-format MAC must be canonical (its last character has 2 unused bits, compared
  // as text); a cut one is the leading characters of the right MAC, which fgets left.
  return sameText(given, legacyMac(secret, uid).slice(0, given.length))
    ? { ok: true, uid, legacy: true }
    : { ok: false, reason: 'bad-mac' };
}
