/**
 * Keys derived from a grid key, one per use (sealing params, signing registry entries): each use
 * gets its own key, so a MAC or ciphertext of one can never pass for the other's.
 * HKDF-SHA256(grid key, no salt, info `label`, 32 bytes), computed once per key and label.
 */
import type { GridKey } from './gridAuth.js';
import { crypto } from './lazyCrypto.js';

const derived = new WeakMap<GridKey, Map<string, Buffer>>();

/** The 32-byte key for `label` derived from `key`. */
export function derivedKey(key: GridKey, label: string): Buffer {
  let byLabel = derived.get(key);
  if (byLabel === undefined) derived.set(key, (byLabel = new Map()));
  let k = byLabel.get(label);
  if (k === undefined) {
    k = Buffer.from(crypto().hkdfSync('sha256', key.key, Buffer.alloc(0), label, 32));
    byLabel.set(label, k);
  }
  return k;
}
