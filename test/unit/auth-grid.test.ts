/**
 * Authenticated grids (src/auth/gridAuth.ts): the test vectors of docs/protocol.md §2.4
 * (checked against an independent HMAC implementation when they were made), and every way a
 * message is refused: a forged tag, an unknown key, a stale timestamp, a replayed nonce, a reply
 * to another query, bytes added after the authenticator; key files that are too short or
 * readable by others.
 */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { gridKey, readGridKeyFile, ReplayCache, signDatagram, verifyDatagram } from '../../src/auth/gridAuth.js';
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
