/**
 * Sealed params (docs/protocol.md §2.4, policy `sealed`): a node of a keyed grid may send its
 * params encrypted, so that only key holders read them. A sealed value is the object
 * `{"Sealed":"<base64url of iv ‖ ciphertext ‖ tag>","k":"<key id>"}` in place of the params:
 * AES-256-GCM with a 12-byte random iv, the key derived from the grid key by
 * HKDF-SHA256(grid key, no salt, info "MarcoPolo-Sealed-v1", 32 bytes), the additional data
 * `MarcoPolo-Sealed-v1\n<key id>`, the plaintext the compact JSON of the params. The message
 * around it is signed as any other (the HMAC covers the sealed bytes). Reference peers and nodes
 * without the key see an object with two strings.
 */
import { isJsonObject, type Json, type JsonObject } from '../protocol/json.js';
import type { GridKey } from './gridAuth.js';
import { derivedKey } from './derivedKey.js';
import { crypto } from './lazyCrypto.js';

const LABEL = 'MarcoPolo-Sealed-v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** The AES-256-GCM key of `key`. */
function sealKey(key: GridKey): Buffer {
  return derivedKey(key, LABEL);
}

/** A sealed value as it appears in a message. */
export interface SealedValue extends JsonObject {
  readonly Sealed: string;
  readonly k: string;
}

/** Seals `value` under `key`; `iv` only for test vectors (default: 12 random bytes). */
export function seal(value: Json, key: GridKey, iv: Buffer = crypto().randomBytes(IV_BYTES)): SealedValue {
  const cipher = crypto().createCipheriv('aes-256-gcm', sealKey(key), iv);
  cipher.setAAD(Buffer.from(`${LABEL}\n${key.id}`, 'latin1'));
  const body = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
  return { Sealed: Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url'), k: key.id };
}

/** Whether `value` has the form of a sealed value. */
export function isSealed(value: Json | undefined): value is SealedValue {
  if (!isJsonObject(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 2 && typeof value['Sealed'] === 'string' && typeof value['k'] === 'string';
}

/** The value sealed in `sealed`, or undefined when no key of `keys` opens it (or it was altered). */
export function unseal(sealed: SealedValue, keys: readonly GridKey[]): Json | undefined {
  const key = keys.find((k) => k.id === sealed.k);
  if (key === undefined) return undefined;
  const raw = Buffer.from(sealed.Sealed, 'base64url');
  if (raw.length < IV_BYTES + TAG_BYTES) return undefined;
  try {
    const decipher = crypto().createDecipheriv('aes-256-gcm', sealKey(key), raw.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(`${LABEL}\n${key.id}`, 'latin1'));
    decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
    const text = Buffer.concat([decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    return JSON.parse(text) as Json;
  } catch {
    return undefined;
  }
}

/** `value` with every sealed value in it that a key of `keys` opens replaced by what it holds. */
export function unsealAll(value: Json, keys: readonly GridKey[]): Json {
  if (Array.isArray(value)) return value.map((v) => unsealAll(v, keys));
  if (!isJsonObject(value)) return value;
  if (isSealed(value)) return unseal(value, keys) ?? value;
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(value)) out[k] = unsealAll(v, keys);
  return out;
}

/** How every sealed value starts in compact JSON. */
const SEALED_START = '{"Sealed":"';
const SEALED_MARK = Buffer.from(SEALED_START, 'latin1');

/** Whether compact JSON `text` may hold a sealed value (one search: most texts hold none). */
export function holdsSealed(text: string): boolean {
  return text.includes(SEALED_START);
}

/**
 * A received message (compact JSON bytes, already verified) with its sealed values opened; the
 * bytes themselves when it holds none, so messages without sealed params cost one byte search.
 */
export function unsealMessage(body: Uint8Array, keys: readonly GridKey[]): Uint8Array {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (buf.indexOf(SEALED_MARK) < 0) return body;
  let msg: Json;
  try {
    msg = JSON.parse(buf.toString('utf8')) as Json;
  } catch {
    return body;
  }
  return Buffer.from(JSON.stringify(unsealAll(msg, keys)), 'utf8');
}
