/**
 * polo.cfg keys and flags of the abuse limits and of authenticated grids: key files relative to
 * the config file, GROUP=FILE, flags replacing the file's keys, the policy, and errors that name
 * the file, key and value.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { keysOfGroup, allKeys } from '../../src/config/authConfig.js';
import { loadPoloConfig } from '../../src/config/poloConfig.js';
import { ConfigError } from '../../src/errors.js';

const dir = mkdtempSync(path.join(tmpdir(), 'mp-authcfg-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const warn = (): void => {};

function write(name: string, content: string | Buffer, mode = 0o600): string {
  const file = path.join(dir, name);
  writeFileSync(file, content, { mode });
  return file;
}

describe('[polo] auth and guard keys', () => {
  const a = write('a.key', Buffer.alloc(32, 1));
  const b = write('b.key', Buffer.alloc(32, 2));
  const c = write('c.key', Buffer.alloc(32, 3));

  it('reads key_files relative to the config file, GROUP=FILE, and auth', () => {
    const cfg = write('polo.cfg', '[polo]\nkey_files = a.key 224.0.0.113=c.key b.key\nauth = preferred\nunicast_scope = any\ngrid_size = 300\n', 0o644);
    const config = loadPoloConfig({ file: cfg, warn });
    assert.equal(config.auth?.policy, 'preferred');
    assert.deepEqual(config.auth?.keys.map((k) => k.file), [a, b]);
    assert.deepEqual(keysOfGroup(config.auth!, '224.0.0.113').map((k) => k.file), [c]);
    assert.deepEqual(keysOfGroup(config.auth!, '224.0.0.112').map((k) => k.file), [a, b]);
    assert.equal(allKeys(config.auth!).length, 3);
    assert.equal(config.guard.unicastScope, 'any');
    assert.equal(config.guard.gridSize, 300);
  });

  it('flags replace the file\'s keys; required is the default with a key; no key, no auth', () => {
    const cfg = write('polo2.cfg', '[polo]\nkey_files = a.key\n', 0o644);
    const config = loadPoloConfig({ file: cfg, warn, overrides: { keys: [b], unicastScope: 'on-link' } });
    assert.equal(config.auth?.policy, 'required');
    assert.deepEqual(config.auth?.keys.map((k) => k.file), [b]);
    assert.equal(loadPoloConfig({ file: write('polo3.cfg', '[polo]\n', 0o644), warn }).auth, undefined);
  });

  it('names the file and key of a bad value', () => {
    const bad = (text: string, pattern: RegExp): void => {
      const cfg = write('bad.cfg', text, 0o644);
      assert.throws(() => loadPoloConfig({ file: cfg, warn }), (err: unknown) => err instanceof ConfigError && pattern.test(err.message));
    };
    bad('[polo]\nauth = maybe\n', /bad\.cfg: \[polo\] auth: "maybe" is not one of required, preferred, sealed, off/);
    bad('[polo]\nkey_files = missing.key\n', /missing\.key: cannot read the grid key: no such file/);
    bad('[polo]\nunicast_scope = world\n', /\[polo\] unicast_scope: .*world.* is not 'on-link' or 'any'/);
    bad('[polo]\nreply_rate_total = lots\n', /\[polo\] reply_rate_total/);
    write('open.key', Buffer.alloc(32, 4), 0o644);
    bad('[polo]\nkey_files = open.key\n', /open\.key: the grid key has mode 0644/);
  });
});
