/**
 * Authenticated grids (docs/protocol.md §2.4): a grid may share a key, and every query and reply
 * then carries an `"Auth"` object, the last key of the datagram's JSON, holding a key id, a
 * timestamp, a nonce, for a reply the nonce of the query it answers, and an HMAC-SHA256 over
 * all of these and the exact bytes of the message without the `"Auth"` key. Receivers reject a
 * bad tag, a timestamp outside ±30 s and a nonce seen before. The message a receiver acts on is
 * exactly the signed bytes, so nothing unsigned can ride along. Reference peers parse the JSON and
 * ignore the key.
 */
import { closeSync, constants as fsc, fstatSync, openSync, readSync } from 'node:fs';
import { ConfigError } from '../errors.js';
import { crypto } from './lazyCrypto.js';

/** Shortest key accepted, in bytes. */
export const MIN_GRID_KEY_BYTES = 32;
/** Largest key file read. */
const MAX_GRID_KEY_BYTES = 4096;
/** Default accepted clock difference, in seconds. */
export const DEFAULT_AUTH_WINDOW_S = 30;
/** Room an `"Auth"` object takes in a datagram (its longest form is 158 bytes). */
export const AUTH_RESERVE_BYTES = 192;
/** Domain separation of the MAC input: version 1 of this format. */
const MAC_LABEL = 'MarcoPolo-Auth-v1';
const AUTH_MARK = Buffer.from(',"Auth":', 'latin1');

/**
 * How a receiver treats unsigned messages; `sealed` is `required` that also sends its params
 * encrypted (src/auth/sealed.ts).
 */
export type AuthPolicy = 'required' | 'preferred' | 'sealed' | 'off';

/** One grid key. */
export interface GridKey {
  /** First 4 bytes of the key's SHA-256, in hex: names the key on the wire (never the key). */
  readonly id: string;
  readonly key: Buffer;
  /** Where it was read from, for messages. */
  readonly file?: string;
}

/** A key from raw bytes. */
export function gridKey(key: Buffer, file?: string): GridKey {
  if (key.length < MIN_GRID_KEY_BYTES) throw new ConfigError(`${file ?? 'grid key'}: ${key.length} bytes; a grid key has at least ${MIN_GRID_KEY_BYTES}`);
  const id = crypto().createHash('sha256').update(key).digest('hex').slice(0, 8);
  return file === undefined ? { id, key } : { id, key, file };
}

/**
 * Reads a key file: a regular file of at least 32 bytes that only its owner may read or write
 * (mode 0600 or stricter); its bytes are the key (`head -c 32 /dev/urandom > grid.key`).
 * Throws ConfigError naming the file and what is wrong.
 */
export function readGridKeyFile(file: string): GridKey {
  let fd: number;
  try {
    fd = openSync(file, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'ELOOP' ? 'is a symbolic link' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
    throw new ConfigError(`${file}: cannot read the grid key: ${why}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new ConfigError(`${file}: the grid key is not a regular file`);
    if ((st.mode & 0o077) !== 0) {
      throw new ConfigError(`${file}: the grid key has mode 0${(st.mode & 0o777).toString(8)}; it must be readable by its owner only (chmod 600 ${file})`);
    }
    if (st.size > MAX_GRID_KEY_BYTES) throw new ConfigError(`${file}: ${st.size} bytes is not a grid key (at most ${MAX_GRID_KEY_BYTES})`);
    const buf = Buffer.alloc(st.size);
    const n = readSync(fd, buf, 0, st.size, 0);
    const key = buf.subarray(0, n);
    if (key.length < MIN_GRID_KEY_BYTES) {
      throw new ConfigError(`${file}: the grid key has ${key.length} bytes; it needs at least ${MIN_GRID_KEY_BYTES} (head -c 32 /dev/urandom > ${file})`);
    }
    return gridKey(Buffer.from(key), file);
  } finally {
    closeSync(fd);
  }
}

/** Parses `--auth` / `auth =`. */
export function parseAuthPolicy(value: string, where: string): AuthPolicy {
  const v = value.trim().toLowerCase();
  if (v === 'required' || v === 'preferred' || v === 'sealed' || v === 'off') return v;
  throw new ConfigError(`${where}: ${JSON.stringify(value)} is not one of required, preferred, sealed, off`);
}

/**
 * Slots a new replay cache starts with: the tables double as they fill, so a cache that sees a
 * few messages (a keyed marco query's own) costs a few hundred bytes, not a megabyte up front.
 */
const REPLAY_FIRST_SLOTS = 16;

/**
 * Nonces seen within the window, bounded; a nonce seen again is a replay. Two generations of
 * tables: nonces go into the current one; when it is two windows old (or holds half the bound) it
 * becomes the previous one and the old previous is dropped. A message is accepted up to one
 * window late, so a nonce is remembered at least two windows, unless more than maxEntries / 2
 * signed messages arrive within them (over 500 a second with the defaults): then a replay of
 * one of the oldest could pass once.
 *
 * A nonce is kept as a 64-bit hash in an open-addressing table of typed arrays, not as a string
 * in a Set: at tens of thousands of messages a second, strings that live a minute are what the
 * garbage collector would spend its time on. O(1) per message, no scan, no allocation. Two
 * different nonces share a hash with a chance of about maxEntries / 2^64; only messages whose tag
 * verified are added, so nobody without the key can aim at one.
 */
export class ReplayCache {
  private current: Int32Array;
  private previous: Int32Array;
  private currentSize = 0;
  private previousSize = 0;
  private since = Number.NEGATIVE_INFINITY;
  /** Slots per table minus one (a power of two minus one); two int32 per slot. */
  private mask = REPLAY_FIRST_SLOTS - 1;
  /** Slots per table at most: each generation holds up to maxEntries / 2 at a load of one half. */
  private readonly maxSlots: number;

  constructor(
    private readonly windowMs: number = DEFAULT_AUTH_WINDOW_S * 1000,
    private readonly maxEntries: number = 65_536,
  ) {
    let slots = REPLAY_FIRST_SLOTS;
    while (slots < maxEntries) slots *= 2;
    this.maxSlots = slots;
    this.current = new Int32Array(2 * REPLAY_FIRST_SLOTS);
    this.previous = new Int32Array(2 * REPLAY_FIRST_SLOTS);
  }

  /** Records `nonce` at `now` (ms); false when it was seen before (a replay). */
  add(nonce: string, now: number): boolean {
    return this.addBytes(Buffer.from(nonce, 'latin1'), 0, nonce.length, now);
  }

  /** {@link add} of the nonce written in `buf` from `start` to `end` (ASCII). */
  addBytes(buf: Uint8Array, start: number, end: number, now: number): boolean {
    // Two independent 32-bit FNV-1a style hashes; (0, 0) marks an empty slot.
    let h1 = 0x811c9dc5;
    let h2 = 0x2545f491;
    for (let i = start; i < end; i++) {
      const c = buf[i] as number;
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x5bd1e995);
    }
    h2 ^= h2 >>> 15;
    if (h1 === 0 && h2 === 0) h2 = 1;
    if (ReplayCache.has(this.previous, this.mask, h1, h2) || ReplayCache.has(this.current, this.mask, h1, h2)) return false;
    if (now - this.since >= 2 * this.windowMs || this.currentSize >= this.maxEntries / 2) {
      const old = this.previous;
      old.fill(0);
      if (now - this.since >= 4 * this.windowMs) {
        this.current.fill(0);
        this.previousSize = 0;
      } else {
        this.previous = this.current;
        this.previousSize = this.currentSize;
        this.current = old;
      }
      this.currentSize = 0;
      this.since = now;
    }
    // Kept at most half full: the table doubles before this entry would pass that.
    if (2 * (this.currentSize + 1) > this.mask + 1 && this.mask + 1 < this.maxSlots) this.grow();
    ReplayCache.put(this.current, this.mask, h1, h2);
    this.currentSize++;
    return true;
  }

  /** Doubles both tables, moving every entry. */
  private grow(): void {
    const mask = 2 * (this.mask + 1) - 1;
    const moved = (from: Int32Array): Int32Array => {
      const to = new Int32Array(2 * (mask + 1));
      for (let i = 0; i < from.length; i += 2) {
        const a = from[i] as number;
        const b = from[i + 1] as number;
        if (a !== 0 || b !== 0) ReplayCache.put(to, mask, a, b);
      }
      return to;
    };
    this.current = moved(this.current);
    this.previous = moved(this.previous);
    this.mask = mask;
  }

  private static put(t: Int32Array, mask: number, h1: number, h2: number): void {
    let slot = (h1 ^ (h2 >>> 7)) & mask;
    while (t[2 * slot] !== 0 || t[2 * slot + 1] !== 0) slot = (slot + 1) & mask;
    t[2 * slot] = h1;
    t[2 * slot + 1] = h2;
  }

  private static has(t: Int32Array, mask: number, h1: number, h2: number): boolean {
    let slot = (h1 ^ (h2 >>> 7)) & mask;
    for (;;) {
      const a = t[2 * slot];
      const b = t[2 * slot + 1];
      if (a === h1 && b === h2) return true;
      if (a === 0 && b === 0) return false;
      slot = (slot + 1) & mask;
    }
  }

  get size(): number {
    return this.currentSize + this.previousSize;
  }
}

/** What to sign with. */
export interface SignOptions {
  /** Seconds since the epoch (default: now). */
  readonly time?: number;
  /** 16 bytes (default: random). */
  readonly nonce?: Buffer;
  /** The nonce of the query this reply answers. */
  readonly replyTo?: string;
}

/** A signed datagram and its nonce. */
export interface Signed {
  readonly bytes: Buffer;
  readonly nonce: string;
}

/**
 * HMAC-SHA256 (RFC 2104) by two calls of the one-shot crypto.hash over prepared buffers: per
 * key, a buffer that starts with the key padded with ipad and the constant head of the MAC input
 * (label and key id), and one that starts with the key padded with opad. It is the same function
 * as crypto.createHmac at less than half the cost per call, which is what a keyed polod pays
 * twice per answer (docs/protocol.md §2.4).
 */
interface MacState {
  /** ipad ⊕ key, `MarcoPolo-Auth-v1\n<id>\n`, then room for the rest of a usual message. */
  readonly inner: Buffer;
  /** Where the variable part of the MAC input starts in `inner`. */
  readonly head: number;
  /** opad ⊕ key, then room for the inner digest. */
  readonly outer: Buffer;
  /** `inner.subarray(0, n)` by n, made once: a view per MAC would be an allocation per message. */
  readonly views: Buffer[];
  /** `,"Auth":{"v":1,"k":"<id>","t":`: how every authenticator under this key starts. */
  readonly tailHead: Buffer;
}
const macStates = new WeakMap<GridKey, MacState>();
/** Messages up to this size are laid out in the key's own buffer; larger ones in {@link LARGE}. */
const INNER_ROOM = 2048;
/** Room for the largest datagram and its MAC header. */
const LARGE = Buffer.allocUnsafe(64 + 512 + 65_536);

function macState(key: GridKey): MacState {
  let state = macStates.get(key);
  if (state === undefined) {
    // A key longer than SHA-256's block is hashed first (RFC 2104).
    const k = key.key.length > 64 ? crypto().createHash('sha256').update(key.key).digest() : key.key;
    const inner = Buffer.alloc(64 + INNER_ROOM, 0x36);
    const outer = Buffer.alloc(64 + 32, 0x5c);
    for (let i = 0; i < k.length; i++) {
      inner[i] = (inner[i] as number) ^ (k[i] as number);
      outer[i] = (outer[i] as number) ^ (k[i] as number);
    }
    const head = 64 + inner.write(`${MAC_LABEL}\n${key.id}\n`, 64, 'latin1');
    state = { inner, head, outer, views: [], tailHead: Buffer.from(`,"Auth":{"v":1,"k":"${key.id}","t":`, 'latin1') };
    macStates.set(key, state);
  }
  return state;
}

const lit = (text: string): Buffer => Buffer.from(text, 'latin1');
const OPEN = lit('{"v":1,"k":"');
const TIME = lit('","t":');
const NONCE = lit(',"n":"');
const NEXT = lit('",');
const REPLY_TO = lit('"r":"');
const TAG = lit('"m":"');

/*
 * The fields of an authenticator are a few dozen ASCII characters: written byte by byte they
 * cost less than a call of Buffer's write or copy (which check their arguments first). One byte
 * per character, so latin1 text (a digest as 'binary') is written as its bytes too.
 */
function writeAscii(buf: Uint8Array, at: number, text: string): number {
  for (let i = 0; i < text.length; i++) buf[at++] = text.charCodeAt(i);
  return at;
}

function copyBytes(from: Uint8Array, start: number, end: number, to: Uint8Array, at: number): number {
  for (let i = start; i < end; i++) to[at++] = from[i] as number;
  return at;
}

/**
 * Copies `from[start, end)` to `to` at `at`; returns where it ends. A query is a few dozen bytes,
 * which a byte loop copies in less time than Buffer's copy takes to check its arguments; longer
 * ranges are copied natively.
 */
function copyRange(from: Buffer, start: number, end: number, to: Buffer, at: number): number {
  return end - start <= 64 ? copyBytes(from, start, end, to, at) : at + from.copy(to, at, start, end);
}

/** The HMAC of the first `length` bytes of `buf` (the key's inner buffer, or LARGE). */
function finish(state: MacState, buf: Buffer, length: number): string {
  let view: Buffer | undefined;
  if (buf === state.inner) view = state.views[length] ??= buf.subarray(0, length);
  else view = buf.subarray(0, length);
  // The inner digest comes back as 32 latin1 ('binary') characters (no Buffer to allocate); a
  // byte loop puts them after the opad block for less than Buffer's write costs to dispatch.
  writeAscii(state.outer, 64, crypto().hash('sha256', view, 'binary'));
  return crypto().hash('sha256', state.outer, 'base64url');
}

/**
 * Nonces of this process: 9 random bytes (12 base64url characters), then a counter in base 36
 * from 1. Unique without a random draw per message (which costs as much as the HMAC); a restarted
 * process draws a new prefix. The nonce is kept as its bytes and counted up in place (like an
 * odometer): a reply's nonce is then one short copy, with no division per digit and no string.
 */
const NONCE_PREFIX = 12;
/** Counter digits at most: 36^11 nonces (over 10^16) before a new prefix is drawn. */
const NONCE_DIGITS = 11;
/** The longest nonce {@link writeFreshNonce} writes. */
const MAX_FRESH_NONCE = NONCE_PREFIX + NONCE_DIGITS;
/** The last nonce given out: prefix then counter digits (`nonceLength` bytes); empty before the first. */
const lastNonce = Buffer.alloc(MAX_FRESH_NONCE);
let nonceLength = 0;

/** Counts the nonce up by one (base 36, most significant digit first, as `toString(36)` writes it). */
function nextNonce(): void {
  let i = nonceLength - 1;
  while (i >= NONCE_PREFIX && lastNonce[i] === 0x7a /* z */) lastNonce[i--] = 0x30;
  if (i >= NONCE_PREFIX) {
    const digit = lastNonce[i] as number;
    lastNonce[i] = digit === 0x39 ? 0x61 : digit + 1;
  } else if (nonceLength > NONCE_PREFIX && nonceLength < MAX_FRESH_NONCE) {
    // All digits were z: one more digit, 1 then zeros.
    lastNonce[NONCE_PREFIX] = 0x31;
    lastNonce[nonceLength++] = 0x30;
  } else {
    // The first nonce, or the counter ran out: a new prefix, counting from 1.
    lastNonce.write(crypto().randomBytes(9).toString('base64url'), 0, NONCE_PREFIX, 'latin1');
    lastNonce[NONCE_PREFIX] = 0x31;
    nonceLength = NONCE_PREFIX + 1;
  }
}

/** Writes this process's next nonce into `buf` at `at`; returns where it ends. */
function writeFreshNonce(buf: Uint8Array, at: number): number {
  nextNonce();
  return copyBytes(lastNonce, 0, nonceLength, buf, at);
}

/** This process's next nonce as a string (for signDatagram, which returns it). */
function freshNonce(): string {
  nextNonce();
  return lastNonce.toString('latin1', 0, nonceLength);
}

/**
 * Signs `body`, a compact JSON object (as our codec writes it): returns it with the `"Auth"`
 * object appended as its last key.
 */
export function signDatagram(body: Uint8Array, key: GridKey, options: SignOptions = {}): Signed {
  const nonce = options.nonce === undefined ? freshNonce() : options.nonce.toString('base64url');
  return { bytes: signWith(body, key, options.time ?? Math.floor(Date.now() / 1000), nonce, options.replyTo ?? ''), nonce };
}

/** {@link signDatagram} of a reply to the query of nonce `replyTo` (polod's hot path: no option objects, no nonce string). */
export function signReply(body: Uint8Array, key: GridKey, replyTo: string): Buffer {
  return signWith(body, key, Math.floor(Date.now() / 1000), undefined, replyTo);
}

/** Where {@link signWith} laid out the time, nonce and reply-to in the MAC input (start, end). */
const LAID = { t0: 0, t1: 0, n0: 0, n1: 0, r0: 0, r1: 0 };

/**
 * Lays out the MAC input of a message to send after the key's header: time, nonce (this
 * process's next one when `nonce` is undefined), reply-to, then `body`; returns its length,
 * and where the fields are in {@link LAID}.
 */
function layOut(buf: Buffer, head: number, time: number, nonce: string | undefined, replyTo: string, body: Uint8Array): number {
  const f = LAID;
  f.t0 = head;
  let at = writeAscii(buf, head, String(time));
  f.t1 = at;
  buf[at++] = 0x0a;
  f.n0 = at;
  at = nonce === undefined ? writeFreshNonce(buf, at) : writeAscii(buf, at, nonce);
  f.n1 = at;
  buf[at++] = 0x0a;
  f.r0 = at;
  at = writeAscii(buf, at, replyTo);
  f.r1 = at;
  buf[at++] = 0x0a;
  buf.set(body, at);
  return at + body.byteLength;
}

function signWith(body: Uint8Array, key: GridKey, time: number, nonce: string | undefined, replyTo: string): Buffer {
  const state = macState(key);
  // Every field is ASCII: one byte per character.
  let input = state.inner;
  if (state.head + 16 + (nonce?.length ?? MAX_FRESH_NONCE) + replyTo.length + body.byteLength > input.length) {
    input = LARGE;
    state.inner.copy(LARGE, 0, 0, state.head);
  }
  const tag = finish(state, input, layOut(input, state.head, time, nonce, replyTo, body));
  // The body, then the authenticator from its final '}' on (as the last key), then the '}'. Its
  // fields are copied from the MAC input, where they were written once.
  const f = LAID;
  const head = body.byteLength - 1;
  const replyField = f.r1 === f.r0 ? 0 : REPLY_TO.length + (f.r1 - f.r0) + NEXT.length;
  const bytes = Buffer.allocUnsafe(head + state.tailHead.length + (f.t1 - f.t0) + NONCE.length + (f.n1 - f.n0) + NEXT.length + replyField + TAG.length + 43 + 3);
  bytes.set(body, 0);
  let at = copyBytes(state.tailHead, 0, state.tailHead.length, bytes, head);
  at = copyBytes(input, f.t0, f.t1, bytes, at);
  at = copyBytes(NONCE, 0, NONCE.length, bytes, at);
  at = copyBytes(input, f.n0, f.n1, bytes, at);
  at = copyBytes(NEXT, 0, NEXT.length, bytes, at);
  if (replyField !== 0) {
    at = copyBytes(REPLY_TO, 0, REPLY_TO.length, bytes, at);
    at = copyBytes(input, f.r0, f.r1, bytes, at);
    at = copyBytes(NEXT, 0, NEXT.length, bytes, at);
  }
  at = copyBytes(TAG, 0, TAG.length, bytes, at);
  at = writeAscii(bytes, at, tag);
  writeAscii(bytes, at, '"}}');
  return bytes;
}

/** What {@link verifyDatagram} found. */
export type Verification =
  /** No `"Auth"` object: `body` is the datagram. */
  | { readonly kind: 'unsigned'; readonly body: Uint8Array }
  /** A valid authenticator: `body` is the signed message, without `"Auth"`. */
  | { readonly kind: 'valid'; readonly body: Uint8Array; readonly nonce: string; readonly key: GridKey; readonly replyTo: string | undefined }
  | { readonly kind: 'invalid'; readonly reason: 'malformed' | 'unknown-key' | 'bad-tag' | 'stale' | 'replayed' | 'not-our-query' };

/** What a receiver checks against. */
export interface VerifyOptions {
  readonly keys: readonly GridKey[];
  /** Seconds since the epoch (default: now). */
  readonly time?: number;
  /** Accepted clock difference in seconds (default 30). */
  readonly windowS?: number;
  /** Nonces seen before; the nonce of a valid message is added. */
  readonly replay?: ReplayCache;
  /** For replies: the nonces of the queries sent; a reply must answer one of them. */
  readonly replyTo?: ReadonlySet<string>;
}

/** The longest `,"Auth":{…}}` tail signDatagram writes (12-digit time, two 64-character nonces). */
const AUTH_MAX_TAIL = 240;
const B64URL = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_') B64URL[c.charCodeAt(0)] = 1;
const DIGITS = new Uint8Array(256).fill(1, 0x30, 0x3a);

/** Whether `buf` holds `lit` at `i`. */
function has(buf: Buffer, i: number, text: Buffer): boolean {
  if (i < 0 || i + text.length > buf.length) return false;
  for (let j = 0; j < text.length; j++) if (buf[i + j] !== text[j]) return false;
  return true;
}

/** The end of the run of base64url characters of `buf` from `i`, at most `max` long. */
function b64Run(buf: Buffer, i: number, max: number): number {
  const stop = Math.min(buf.length, i + max);
  let j = i;
  while (j < stop && B64URL[buf[j] as number] === 1) j++;
  return j;
}

/** The start of the run of characters of `buf` that ends before `end`, at most `max` long, whose bytes `table` marks with 1. */
function runBack(buf: Buffer, end: number, max: number, table: Uint8Array): number {
  const stop = Math.max(0, end - max);
  let j = end;
  while (j > stop && table[buf[j - 1] as number] === 1) j--;
  return j;
}

/**
 * Where `,"Auth":` starts if `buf` ends in an authenticator of the one accepted form: found by
 * walking back over its fields from the end (tag, reply-to, nonce, time: all that varies in
 * length); -1 when the walk does not fit. Only a guess: readAuth checks every byte from there.
 * It reads about as many bytes as Buffer.lastIndexOf would, without the native call.
 */
function authStartGuess(buf: Buffer): number {
  // `","m":"<43>"}}` ends the datagram; before it, the r (or n) value.
  let i = runBack(buf, buf.length - (NEXT.length + TAG.length + 43 + 3), 64, B64URL);
  if (has(buf, i - REPLY_TO.length, REPLY_TO)) i = runBack(buf, i - REPLY_TO.length - NEXT.length, 64, B64URL);
  i = runBack(buf, i - NONCE.length, 12, DIGITS);
  return i - (TIME.length + 8 + OPEN.length + AUTH_MARK.length);
}

/** Where the fields of an authenticator are in a datagram (offsets: start, end). */
interface AuthFields {
  /** Offset of the 8 hex digits of the key id. */
  k: number;
  t0: number;
  t1: number;
  time: number;
  n0: number;
  n1: number;
  /** -1 when there is no `r`. */
  r0: number;
  r1: number;
  m: number;
}
/** The one record readAuth fills (verification is synchronous): no object per message. */
const FIELDS: AuthFields = { k: 0, t0: 0, t1: 0, time: 0, n0: 0, n1: 0, r0: -1, r1: -1, m: 0 };

/**
 * Reads `{"v":1,"k":"<8 hex>","t":<1-12 digits>,"n":"<1-64 b64url>",["r":"<1-64 b64url>",]"m":"<43 b64url>"}`
 * from `buf` at `i` up to its last byte (the message's closing `}`): the authenticator exactly as
 * signDatagram writes it. Receivers accept this one form only, so there is one way to write a
 * valid message; it is read as bytes, with no JSON parse and no string per field.
 */
function readAuth(buf: Buffer, i: number): AuthFields | undefined {
  const end = buf.length - 1;
  if (buf[end] !== 0x7d || !has(buf, i, OPEN)) return undefined;
  const k = i + OPEN.length;
  for (let j = k; j < k + 8; j++) {
    const c = buf[j] ?? 0;
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return undefined;
  }
  i = k + 8;
  if (!has(buf, i, TIME)) return undefined;
  const t0 = i + TIME.length;
  let t1 = t0;
  let time = 0;
  for (let c = buf[t1] ?? 0; t1 < t0 + 12 && c >= 0x30 && c <= 0x39; c = buf[++t1] ?? 0) time = time * 10 + (c - 0x30);
  // No leading zero: one way to write a time, as the tag covers its digits.
  if (t1 === t0 || (buf[t0] === 0x30 && t1 > t0 + 1) || !has(buf, t1, NONCE)) return undefined;
  const n0 = t1 + NONCE.length;
  const n1 = b64Run(buf, n0, 64);
  if (n1 === n0 || !has(buf, n1, NEXT)) return undefined;
  i = n1 + NEXT.length;
  let r0 = -1;
  let r1 = -1;
  if (has(buf, i, REPLY_TO)) {
    r0 = i + REPLY_TO.length;
    r1 = b64Run(buf, r0, 64);
    if (r1 === r0 || !has(buf, r1, NEXT)) return undefined;
    i = r1 + NEXT.length;
  }
  if (!has(buf, i, TAG)) return undefined;
  const m = i + TAG.length;
  // The tag, then `"}` closing the authenticator, then the message's `}` (the last byte).
  if (b64Run(buf, m, 43) !== m + 43 || buf[m + 43] !== 0x22 || buf[m + 44] !== 0x7d || m + 45 !== end) return undefined;
  const f = FIELDS;
  f.k = k;
  f.t0 = t0;
  f.t1 = t1;
  f.time = time;
  f.n0 = n0;
  f.n1 = n1;
  f.r0 = r0;
  f.r1 = r1;
  f.m = m;
  return f;
}

/** Whether the 8 id characters of `buf` at `k` are `id`. */
function isKeyId(buf: Buffer, k: number, id: string): boolean {
  for (let j = 0; j < 8; j++) if (buf[k + j] !== id.charCodeAt(j)) return false;
  return true;
}

/** Checks the authenticator of a datagram (see the module comment). Never throws. */
export function verifyDatagram(data: Uint8Array, options: VerifyOptions): Verification {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  // The authenticator is the last key. Where a well-formed one starts is found from the end;
  // `,"Auth":` cannot occur inside one, so that is also the last `,"Auth":`, as searched otherwise.
  let at = authStartGuess(buf);
  let f = has(buf, at, AUTH_MARK) ? readAuth(buf, at + AUTH_MARK.length) : undefined;
  if (f === undefined) {
    at = buf.lastIndexOf(AUTH_MARK, -1, 'latin1');
    if (at < 0) return { kind: 'unsigned', body: data };
    f = at + AUTH_MAX_TAIL < buf.length ? undefined : readAuth(buf, at + AUTH_MARK.length);
    if (f === undefined) return INVALID.malformed;
  }
  let key: GridKey | undefined;
  for (const x of options.keys) {
    if (isKeyId(buf, f.k, x.id)) {
      key = x;
      break;
    }
  }
  if (key === undefined) return INVALID['unknown-key'];
  if (!sameTagBytes(macOf(key, buf, f, at), buf, f.m)) return INVALID['bad-tag'];
  const now = options.time ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - f.time) > (options.windowS ?? DEFAULT_AUTH_WINDOW_S)) return INVALID.stale;
  const replyTo = f.r0 < 0 ? undefined : buf.toString('latin1', f.r0, f.r1);
  if (options.replyTo !== undefined && (replyTo === undefined || !options.replyTo.has(replyTo))) return INVALID['not-our-query'];
  if (options.replay !== undefined && !options.replay.addBytes(buf, f.n0, f.n1, now * 1000)) return INVALID.replayed;
  const body = Buffer.allocUnsafe(at + 1);
  copyRange(buf, 0, at, body, 0);
  body[at] = 0x7d;
  return { kind: 'valid', body, nonce: buf.toString('latin1', f.n0, f.n1), key, replyTo };
}

/**
 * The tag of a received datagram: its MAC input is laid out from the datagram's own bytes (the
 * time, nonce and reply-to fields, then the body up to `at` and a `}`), with no string between.
 */
function macOf(key: GridKey, buf: Buffer, f: AuthFields, at: number): string {
  const state = macState(key);
  let out = state.inner;
  const length = state.head + (f.t1 - f.t0) + (f.n1 - f.n0) + (f.r1 - f.r0) + 3 + at + 1;
  if (length > out.length) {
    out = LARGE;
    state.inner.copy(LARGE, 0, 0, state.head);
  }
  let i = copyBytes(buf, f.t0, f.t1, out, state.head);
  out[i++] = 0x0a;
  i = copyBytes(buf, f.n0, f.n1, out, i);
  out[i++] = 0x0a;
  if (f.r0 >= 0) i = copyBytes(buf, f.r0, f.r1, out, i);
  out[i++] = 0x0a;
  i = copyRange(buf, 0, at, out, i);
  out[i++] = 0x7d;
  return finish(state, out, i);
}

/** Compares a computed tag with the 43 bytes of `buf` at `m`, in time independent of where they differ. */
function sameTagBytes(tag: string, buf: Buffer, m: number): boolean {
  let d = tag.length ^ 43;
  for (let i = 0; i < 43; i++) d |= tag.charCodeAt(i) ^ (buf[m + i] as number);
  return d === 0;
}

type InvalidReason = Extract<Verification, { kind: 'invalid' }>['reason'];
/** One frozen verdict per reason: a refused datagram allocates nothing. */
const INVALID = Object.fromEntries(
  (['malformed', 'unknown-key', 'bad-tag', 'stale', 'replayed', 'not-our-query'] as const).map((reason) => [reason, Object.freeze({ kind: 'invalid', reason })]),
) as unknown as Record<InvalidReason, Verification>;
