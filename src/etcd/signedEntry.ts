/**
 * Registry entries of keyed grids (docs/protocol.md §10.1). A polod that holds a grid's key
 * writes each value of that grid as an envelope
 *
 *   {"Signed":"<the value's JSON text>","Lease":"<etcd lease id>","k":"<key id>","Tag":"<base64url>"}
 *
 * where Tag is HMAC-SHA256 under a key derived from the grid key (HKDF-SHA256, no salt, info
 * "MarcoPolo-Registry-v1") over "MarcoPolo-Registry-v1\n<etcd key>\n<lease>\n<text>". The etcd
 * key binds an entry to its grid and node address (it cannot be moved to another node or grid),
 * the lease to the polod that wrote it: readers take an entry only when it hangs on the lease it
 * names, so a copy put back after that polod left (its lease gone) is refused. Anyone who can
 * write etcd without the key can delete entries, or put back an older value of a node's own
 * entries while that node's lease lives; never forge one.
 */
import type { AuthPolicy, GridKey } from '../auth/gridAuth.js';
import { derivedKey } from '../auth/derivedKey.js';
import { crypto } from '../auth/lazyCrypto.js';
import { jsonObjectOf } from '../protocol/json.js';

const LABEL = 'MarcoPolo-Registry-v1';

/** How a reader judges entries: its keys of the grid and its policy (docs/protocol.md §2.4). */
export interface EntryTrust {
  readonly keys: readonly GridKey[];
  readonly policy: AuthPolicy;
}

/** An entry as read: the value's JSON text and, for a keyed reader, whether a key signed it. */
export interface OpenedEntry {
  readonly text: string;
  readonly verified?: boolean;
}

function tag(key: GridKey, etcdKey: string, lease: string, text: string): Buffer {
  return crypto().createHmac('sha256', derivedKey(key, LABEL)).update(`${LABEL}\n${etcdKey}\n${lease}\n`, 'utf8').update(text, 'utf8').digest();
}

/** The value polod writes at `etcdKey` on `lease` for `text`, signed with `key`. */
export function signEntry(etcdKey: string, text: string, lease: string, key: GridKey): string {
  return JSON.stringify({ Signed: text, Lease: lease, k: key.id, Tag: tag(key, etcdKey, lease, text).toString('base64url') });
}

interface Envelope {
  readonly Signed: string;
  readonly Lease: string;
  readonly k: string;
  readonly Tag: string;
}

function readEnvelope(text: string): Envelope | undefined {
  if (!text.startsWith('{"Signed":')) return undefined;
  const parsed = jsonObjectOf(text);
  if (parsed === undefined) return undefined;
  const { Signed, Lease, k, Tag } = parsed;
  return typeof Signed === 'string' && typeof Lease === 'string' && typeof k === 'string' && typeof Tag === 'string' ? { Signed, Lease, k, Tag } : undefined;
}

/**
 * The entry at `etcdKey` (its value, on lease `lease`) as `trust` may use it, or undefined.
 * Without keys (or policy off) every entry is used as it stands, signed or not, as a keyless
 * client takes a signed reply. With keys: a signed entry must carry a good tag of one of them
 * and hang on the lease it names (verified); an unsigned one is used only under `preferred`
 * (not verified); a bad tag is never used.
 */
export function openEntry(etcdKey: string, value: Buffer, lease: string, trust: EntryTrust | undefined): OpenedEntry | undefined {
  const text = value.toString('utf8');
  const envelope = readEnvelope(text);
  if (trust === undefined || trust.policy === 'off' || trust.keys.length === 0) return { text: envelope?.Signed ?? text };
  if (envelope === undefined) return trust.policy === 'preferred' ? { text, verified: false } : undefined;
  const key = trust.keys.find((k) => k.id === envelope.k);
  if (key === undefined || envelope.Lease !== lease) return undefined;
  const given = Buffer.from(envelope.Tag, 'base64url');
  const expected = tag(key, etcdKey, envelope.Lease, envelope.Signed);
  if (given.length !== expected.length || !crypto().timingSafeEqual(given, expected)) return undefined;
  return { text: envelope.Signed, verified: true };
}
