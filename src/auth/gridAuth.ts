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

/**
 * node:crypto on first use: loading it (with the stream modules it needs) costs `marco` about
 * 2 ms of start-up, and a query on a grid without a key never signs or verifies.
 */
let cryptoModule: typeof import('node:crypto') | undefined;
function crypto(): typeof import('node:crypto') {
  cryptoModule ??= process.getBuiltinModule('node:crypto');
  return cryptoModule;
}

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

/** How a receiver treats unsigned messages. */
export type AuthPolicy = 'required' | 'preferred' | 'off';

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
  if (v === 'required' || v === 'preferred' || v === 'off') return v;
  throw new ConfigError(`${where}: ${JSON.stringify(value)} is not one of required, preferred, off`);
}

/**
 * Nonces seen within the window, bounded; a nonce seen again is a replay. Two generations of
 * sets: nonces go into the current one; when it is two windows old (or holds half the bound) it
 * becomes the previous one and the old previous is dropped. A message is accepted up to one
 * window late, so a nonce is remembered at least two windows, unless more than maxEntries / 2
 * signed messages arrive within them (over 500 a second with the defaults): then a replay of
 * one of the oldest could pass once. O(1) per message, no scan.
 */
export class ReplayCache {
  private current = new Set<string>();
  private previous = new Set<string>();
  private since = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly windowMs: number = DEFAULT_AUTH_WINDOW_S * 1000,
    private readonly maxEntries: number = 65_536,
  ) {}

  /** Records `nonce` at `now` (ms); false when it was seen before (a replay). */
  add(nonce: string, now: number): boolean {
    if (this.current.has(nonce) || this.previous.has(nonce)) return false;
    if (now - this.since >= 2 * this.windowMs || this.current.size >= this.maxEntries / 2) {
      this.previous = now - this.since >= 4 * this.windowMs ? new Set() : this.current;
      this.current = new Set();
      this.since = now;
    }
    this.current.add(nonce);
    return true;
  }

  get size(): number {
    return this.current.size + this.previous.size;
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

function mac(key: GridKey, time: number, nonce: string, replyTo: string, body: Uint8Array): Buffer {
  return crypto().createHmac('sha256', key.key).update(`${MAC_LABEL}\n${key.id}\n${time}\n${nonce}\n${replyTo}\n`).update(body).digest();
}

/**
 * Nonces of this process: 9 random bytes, then a counter. Unique without a random draw per
 * message (which costs as much as the HMAC); a restarted process draws a new prefix.
 */
let noncePrefix: string | undefined;
let nonceCounter = 0;
function freshNonce(): string {
  noncePrefix ??= crypto().randomBytes(9).toString('base64url');
  nonceCounter = (nonceCounter + 1) % Number.MAX_SAFE_INTEGER;
  return `${noncePrefix}${nonceCounter.toString(36)}`;
}

/**
 * Signs `body`, a compact JSON object (as our codec writes it): returns it with the `"Auth"`
 * object appended as its last key.
 */
export function signDatagram(body: Uint8Array, key: GridKey, options: SignOptions = {}): Signed {
  const time = options.time ?? Math.floor(Date.now() / 1000);
  const nonce = options.nonce === undefined ? freshNonce() : options.nonce.toString('base64url');
  const replyTo = options.replyTo ?? '';
  const tag = mac(key, time, nonce, replyTo, body).toString('base64url');
  // The body without its final '}', then the authenticator as the last key, then the '}'.
  const tail = `,"Auth":{"v":1,"k":"${key.id}","t":${time},"n":"${nonce}",${replyTo === '' ? '' : `"r":"${replyTo}",`}"m":"${tag}"}}`;
  const head = body.byteLength - 1;
  const bytes = Buffer.allocUnsafe(head + tail.length);
  bytes.set(body.subarray(0, head));
  bytes.write(tail, head, 'latin1');
  return { bytes, nonce };
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

/**
 * The authenticator exactly as signDatagram writes it: receivers accept this one form only, so
 * there is one way to write a valid message (and no JSON parse per datagram).
 */
const AUTH_FORM = /^\{"v":1,"k":"([0-9a-f]{8})","t":(\d{1,12}),"n":"([A-Za-z0-9_-]{1,64})",(?:"r":"([A-Za-z0-9_-]{1,64})",)?"m":"([A-Za-z0-9_-]{43})"\}$/;

/** Checks the authenticator of a datagram (see the module comment). Never throws. */
export function verifyDatagram(data: Uint8Array, options: VerifyOptions): Verification {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const at = buf.lastIndexOf(AUTH_MARK);
  if (at < 0) return { kind: 'unsigned', body: data };
  const invalid = (reason: Extract<Verification, { kind: 'invalid' }>['reason']): Verification => ({ kind: 'invalid', reason });
  if (buf[buf.length - 1] !== 0x7d) return invalid('malformed');
  const form = AUTH_FORM.exec(buf.toString('latin1', at + AUTH_MARK.length, buf.length - 1));
  if (form === null) return invalid('malformed');
  const [, k, time, n, r, m] = form as unknown as [string, string, string, string, string | undefined, string];
  const t = Number(time);
  const key = options.keys.find((x) => x.id === k);
  if (key === undefined) return invalid('unknown-key');
  const body = Buffer.allocUnsafe(at + 1);
  buf.copy(body, 0, 0, at);
  body[at] = 0x7d;
  const expected = mac(key, t, n, r ?? '', body);
  const got = Buffer.from(m, 'base64url');
  if (got.length !== expected.length || !crypto().timingSafeEqual(got, expected)) return invalid('bad-tag');
  const now = options.time ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - t) > (options.windowS ?? DEFAULT_AUTH_WINDOW_S)) return invalid('stale');
  if (options.replyTo !== undefined && (r === undefined || !options.replyTo.has(r))) return invalid('not-our-query');
  if (options.replay !== undefined && !options.replay.add(n, now * 1000)) return invalid('replayed');
  return { kind: 'valid', body, nonce: n, key, replyTo: r };
}
