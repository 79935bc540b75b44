/**
 * Authenticated grids (src/auth/gridAuth.ts): the test vectors of docs/protocol.md §2.4
 * (checked against an independent HMAC implementation when they were made), and every way a
 * message is refused: a forged tag, an unknown key, a stale timestamp, a replayed nonce, a reply
 * to another query, bytes added after the authenticator; key files that are too short or
 * readable by others.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { chmod, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { gridKey, readGridKeyFile, ReplayCache, signDatagram, signReply, verifyDatagram } from '../../src/auth/gridAuth.js';
import { ConfigError } from '../../src/errors.js';

const KEY = gridKey(Buffer.from(Array.from({ length: 32 }, (_, i) => i)));
const OTHER = gridKey(Buffer.alloc(32, 7));
const T = 1764460800;
const QUERY = '{"Command":"Marco","Auth":{"v":1,"k":"630dcd29","t":1764460800,"n":"q6urq6urq6urq6urq6urqw","m":"Far5Q0CyC73AkoFA4Y_xm0pAStlRmHPccFXA2K9KQXE"}}';
const REPLY =
  '{"Command":"Polo","Params":{"hostname":"polo-a"},"Auth":{"v":1,"k":"630dcd29","t":1764460801,"n":"zc3Nzc3Nzc3Nzc3Nzc3NzQ","r":"q6urq6urq6urq6urq6urqw","m":"rJvWab53c2uTun78bTDnCCcTFCioqVdl3pyb5lPhho8"}}';

describe('grid authentication', () => {
  it('signs the test vectors of docs/protocol.md', () => {
    assert.equal(KEY.id, '630dcd29');
    const q = signDatagram(Buffer.from('{"Command":"Marco"}'), KEY, { time: T, nonce: Buffer.alloc(16, 0xab) });
    assert.equal(q.bytes.toString(), QUERY);
    const r = signDatagram(Buffer.from('{"Command":"Polo","Params":{"hostname":"polo-a"}}'), KEY, { time: T + 1, nonce: Buffer.alloc(16, 0xcd), replyTo: q.nonce });
    assert.equal(r.bytes.toString(), REPLY);
  });

  it('verifies them, returning the exact signed message', () => {
    const v = verifyDatagram(Buffer.from(REPLY), { keys: [OTHER, KEY], time: T, replyTo: new Set(['q6urq6urq6urq6urq6urqw']) });
    assert.equal(v.kind, 'valid');
    assert.equal(v.kind === 'valid' && Buffer.from(v.body).toString(), '{"Command":"Polo","Params":{"hostname":"polo-a"}}');
    assert.equal(verifyDatagram(Buffer.from('{"Command": "Marco"}'), { keys: [KEY] }).kind, 'unsigned');
  });

  it('refuses forged, unknown-key, stale, replayed, misdirected and extended messages', () => {
    const reason = (data: string, extra: Partial<Parameters<typeof verifyDatagram>[1]> = {}): string => {
      const v = verifyDatagram(Buffer.from(data), { keys: [KEY], time: T, ...extra });
      return v.kind === 'invalid' ? v.reason : v.kind;
    };
    assert.equal(reason(QUERY.replace('Marco', 'Marcp')), 'bad-tag', 'a changed body');
    assert.equal(reason(QUERY.replace('"t":1764460800', '"t":1764460801')), 'bad-tag', 'a changed timestamp');
    assert.equal(reason(QUERY, { keys: [OTHER] }), 'unknown-key');
    const forged = signDatagram(Buffer.from('{"Command":"Marco"}'), { ...OTHER, id: KEY.id }, { time: T });
    assert.equal(reason(forged.bytes.toString()), 'bad-tag', 'signed with another key under our id');
    assert.equal(reason(QUERY, { time: T + 31 }), 'stale');
    assert.equal(reason(QUERY, { time: T - 31 }), 'stale');
    assert.equal(reason(QUERY, { time: T + 30 }), 'valid');
    const replay = new ReplayCache();
    assert.equal(reason(QUERY, { replay }), 'valid');
    assert.equal(reason(QUERY, { replay }), 'replayed');
    assert.equal(reason(REPLY, { replyTo: new Set(['other']) }), 'not-our-query');
    assert.equal(reason(QUERY, { replyTo: new Set(['q6urq6urq6urq6urq6urqw']) }), 'not-our-query', 'a query is no reply');
    assert.equal(reason(`${QUERY.slice(0, -1)},"Command":"Services"}`), 'malformed', 'bytes after the authenticator');
    assert.equal(reason('{"Command":"Marco","Auth":{"v":1}}'), 'malformed');
    assert.equal(reason('{"Command":"Marco","Auth":[1]}'), 'malformed');
    assert.equal(reason(QUERY.replace('"t":1764460800', '"t":01764460800')), 'malformed', 'a time with a leading zero');
  });

  it('computes the same tags as crypto.createHmac, for keys of any length and messages of any size', () => {
    for (const length of [32, 64, 65, 200]) {
      const key = gridKey(Buffer.alloc(length, length));
      for (const size of [2, 100, 3000, 60_000]) {
        const body = Buffer.from(`{"x":"${'a'.repeat(size)}"}`);
        const signed = signDatagram(body, key, { time: T, nonce: Buffer.alloc(16, 1), replyTo: 'abc' });
        const text = signed.bytes.toString('latin1');
        const expected = createHmac('sha256', key.key).update(`MarcoPolo-Auth-v1\n${key.id}\n${T}\n${signed.nonce}\nabc\n`).update(body).digest('base64url');
        assert.ok(text.endsWith(`"m":"${expected}"}}`), `key of ${length} bytes, body of ${body.length}`);
        assert.equal(verifyDatagram(signed.bytes, { keys: [key], time: T }).kind, 'valid');
      }
    }
  });

  it('accepts exactly the one documented form of the authenticator (random mutations, checked against a regular expression of it)', () => {
    // The form of docs/protocol.md §2.4 as a regular expression; the receiver reads bytes instead.
    const FORM = /,"Auth":\{"v":1,"k":"([0-9a-f]{8})","t":(0|[1-9]\d{0,11}),"n":"([A-Za-z0-9_-]{1,64})",(?:"r":"([A-Za-z0-9_-]{1,64})",)?"m":"([A-Za-z0-9_-]{43})"\}\}$/;
    const alphabet = '{}":,01aAz_-9vktnrm\\ ';
    let seed = 12345;
    const random = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    let valid = 0;
    for (let k = 0; k < 20_000; k++) {
      const base = k % 2 === 0 ? QUERY : REPLY;
      const chars = [...base];
      const edits = 1 + random(3);
      for (let e = 0; e < edits; e++) {
        const at = base.indexOf('"Auth"') + random(base.length - base.indexOf('"Auth"'));
        const op = random(3);
        const c = alphabet[random(alphabet.length)] as string;
        if (op === 0) chars[at] = c;
        else if (op === 1) chars.splice(at, 0, c);
        else chars.splice(at, 1);
      }
      const text = chars.join('');
      const v = verifyDatagram(Buffer.from(text, 'latin1'), { keys: [KEY], time: T });
      const matches = FORM.test(text) && text.lastIndexOf(',"Auth":') === text.search(FORM);
      const parsed = v.kind === 'valid' || (v.kind === 'invalid' && v.reason !== 'malformed');
      if (text.includes(',"Auth":')) assert.equal(parsed, matches, text);
      if (v.kind === 'valid') valid++;
    }
    assert.ok(valid > 0, 'some mutations leave a valid message (outside the tag)');
  });

  it('gives every message its own nonce: one prefix per process, then a counter in base 36 (signed queries and replies alike, across carries)', () => {
    let last: { prefix: string; count: number } | undefined;
    // 50 000 nonces: the counter passes 36^2 and 36^3, where every digit carries.
    for (let k = 0; k < 50_000; k++) {
      let nonce: string;
      if (k % 2 === 0) nonce = signDatagram(Buffer.from('{"Command":"Marco"}'), KEY).nonce;
      else {
        const v = verifyDatagram(signReply(Buffer.from('{"Command":"Polo"}'), KEY, 'q6urq6urq6urq6urq6urqw'), { keys: [KEY] });
        assert.equal(v.kind, 'valid');
        nonce = v.kind === 'valid' ? v.nonce : '';
      }
      const prefix = nonce.slice(0, 12);
      const count = Number.parseInt(nonce.slice(12), 36);
      assert.match(prefix, /^[A-Za-z0-9_-]{12}$/);
      assert.equal(nonce.slice(12), count.toString(36), nonce);
      if (last !== undefined) assert.deepEqual({ prefix, count }, { prefix: last.prefix, count: last.count + 1 }, nonce);
      last = { prefix, count };
    }
  });

  it('remembers nonces across its two generations and forgets them after', () => {
    const cache = new ReplayCache(1000, 64);
    assert.equal(cache.add('a', 0), true);
    assert.equal(cache.add('a', 10), false);
    for (let k = 0; k < 40; k++) assert.equal(cache.add(`n${k}`, 100), true);
    // 'a' moved to the previous generation when the current one filled up: still a replay.
    assert.equal(cache.add('a', 200), false);
    assert.equal(cache.add('n39', 2500), false);
    // Four windows later the next nonce drops both generations (such old messages are stale anyway).
    assert.equal(cache.add('b', 10_000), true);
    assert.equal(cache.add('a', 10_001), true);
    assert.equal(cache.add('b', 10_002), false);
    assert.ok(cache.size <= 64);
  });
});

describe('grid key files', () => {
  let dir = '';
  after(() => rm(dir, { recursive: true, force: true }));

  it('reads a 0600 file of 32 bytes or more, and names the file and the problem otherwise', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'mp-gridkey-'));
    const good = path.join(dir, 'grid.key');
    await writeFile(good, Buffer.alloc(40, 1), { mode: 0o600 });
    assert.equal(readGridKeyFile(good).key.length, 40);
    const short = path.join(dir, 'short.key');
    await writeFile(short, Buffer.alloc(31, 1), { mode: 0o600 });
    const open = path.join(dir, 'open.key');
    await writeFile(open, Buffer.alloc(32, 1));
    await chmod(open, 0o644);
    const link = path.join(dir, 'link.key');
    await symlink(good, link);
    const refused = (file: string, pattern: RegExp): void => {
      assert.throws(() => readGridKeyFile(file), (err: unknown) => err instanceof ConfigError && err.message.startsWith(file) && pattern.test(err.message));
    };
    refused(short, /31 bytes; it needs at least 32/);
    refused(open, /mode 0644; it must be readable by its owner only/);
    refused(link, /symbolic link/);
    refused(path.join(dir, 'missing.key'), /no such file/);
    refused(dir, /not a regular file/);
  });
});
