/**
 * Registry entries of keyed grids (src/etcd/signedEntry.ts, docs/protocol.md §10.1): the test
 * vector of the docs, what each policy takes, and entries forged, moved, replayed on another
 * lease or signed by an unknown key refused (sealed entries: test/unit/etcd-registration.test.ts).
 * The whole path over a real etcd is in test/integration/registry-etcd-keyed.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gridKey } from '../../src/auth/gridAuth.js';
import { openEntry, signEntry, type EntryTrust } from '../../src/etcd/signedEntry.js';

/** The docs' vector: key bytes 00..1f (id 630dcd29). */
const KEY = gridKey(Buffer.from(Array.from({ length: 32 }, (_, i) => i)));
const OTHER = gridKey(Buffer.alloc(32, 7));
const ETCD_KEY = '/marcopolo/v1/grids/224.0.0.112:1337/nodes/198.51.100.5';
const LEASE = '7587869139263829512';
const TEXT = '{"instance":"a1","rev":1,"params":{},"services":[]}';
const VECTOR = `{"Signed":${JSON.stringify(TEXT)},"Lease":"${LEASE}","k":"630dcd29","Tag":"xM_BdTvzhJKq7ow8iU_sz7KqCQYvzAYvfEce0INHdOw"}`;

const trust = (policy: EntryTrust['policy'], keys = [KEY]): EntryTrust => ({ keys, policy });
const open = (value: string, t: EntryTrust | undefined, key = ETCD_KEY, lease = LEASE) => openEntry(key, Buffer.from(value), lease, t);

describe('signed registry entries', () => {
  it('signs as the documented vector (checked with Python hmac and hashlib)', () => {
    assert.equal(KEY.id, '630dcd29');
    assert.equal(signEntry(ETCD_KEY, TEXT, LEASE, KEY), VECTOR);
  });

  it('a key holder takes a signed entry as verified; a second key verifies during a rotation', () => {
    assert.deepEqual(open(VECTOR, trust('required')), { text: TEXT, verified: true });
    assert.deepEqual(open(VECTOR, trust('sealed', [OTHER, KEY])), { text: TEXT, verified: true });
    assert.deepEqual(open(VECTOR, trust('preferred')), { text: TEXT, verified: true });
  });

  it('refuses an entry on another lease, at another key, with an altered text or tag, or signed by an unknown key', () => {
    assert.equal(open(VECTOR, trust('required'), ETCD_KEY, '0'), undefined, 'put back without its lease');
    assert.equal(open(VECTOR, trust('required'), ETCD_KEY, '42'), undefined, 'put back on another lease');
    assert.equal(open(VECTOR, trust('required'), ETCD_KEY.replace('198.51.100.5', '198.51.100.6')), undefined, 'moved to another node');
    const altered = VECTOR.replace('\\"rev\\":1', '\\"rev\\":2');
    assert.notEqual(altered, VECTOR);
    assert.equal(open(altered, trust('required')), undefined, 'text altered');
    assert.equal(open(VECTOR.replace('xM_B', 'xM_C'), trust('preferred')), undefined, 'tag altered: refused even under preferred');
    assert.equal(open(VECTOR.replace(/"Tag":"[^"]*"/, '"Tag":""'), trust('required')), undefined, 'empty tag');
    assert.equal(open(VECTOR, trust('required', [OTHER])), undefined, 'unknown key');
    assert.equal(open(signEntry(ETCD_KEY, TEXT, LEASE, OTHER), trust('required')), undefined, 'signed by a key not held');
  });

  it('an unsigned entry: refused under required and sealed, unverified under preferred, taken without keys', () => {
    assert.equal(open(TEXT, trust('required')), undefined);
    assert.equal(open(TEXT, trust('sealed')), undefined);
    assert.deepEqual(open(TEXT, trust('preferred')), { text: TEXT, verified: false });
    assert.deepEqual(open(TEXT, trust('off')), { text: TEXT });
    assert.deepEqual(open(TEXT, undefined), { text: TEXT });
  });

  it('a reader without keys takes the signed value as it stands (as a keyless client takes a signed reply)', () => {
    assert.deepEqual(open(VECTOR, undefined), { text: TEXT });
    assert.deepEqual(open(VECTOR, trust('off')), { text: TEXT });
  });
});
