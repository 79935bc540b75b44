/** marcod's configuration: reference defaults, the [marco] keys, validation and flag overrides. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { gridKey } from '../../src/auth/gridAuth.js';
import { loadMarcoConfig, type LoadMarcoConfigOptions } from '../../src/config/marcoConfig.js';
import { ConfigError } from '../../src/errors.js';

const dir = mkdtempSync(path.join(tmpdir(), 'mp-marcocfg-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const NO_DEFAULT = path.join(dir, 'no-such-default.cfg');
let counter = 0;

function load(text: string | undefined, overrides: LoadMarcoConfigOptions['overrides'] = {}) {
  const warnings: string[] = [];
  const base = { overrides, warn: (m: string) => warnings.push(m), defaultFile: NO_DEFAULT };
  if (text === undefined) return { config: loadMarcoConfig(base), warnings, file: '' };
  const file = path.join(dir, `marco-${++counter}.cfg`);
  writeFileSync(file, text);
  return { config: loadMarcoConfig({ ...base, file }), warnings, file };
}

function fails(text: string | undefined, overrides: LoadMarcoConfigOptions['overrides'], ...fragments: string[]): void {
  assert.throws(
    () => load(text, overrides),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.ok(!err.message.includes('\n'), err.message);
      for (const f of fragments) assert.ok(err.message.includes(f), `${JSON.stringify(err.message)} lacks ${JSON.stringify(f)}`);
      return true;
    },
  );
}

describe('loadMarcoConfig', () => {
  it("uses the reference's defaults when the default file is missing", () => {
    const { config, warnings } = load(undefined);
    assert.deepEqual(warnings, []);
    assert.deepEqual(config, {
      bindAddress: process.platform === 'linux' ? '127.0.1.1' : '127.0.0.1',
      marcoPort: 1338,
      group: '224.0.0.112',
      poloPort: 1337,
      timeoutMs: 1000,
      frameSize: 4096,
      interfaces: [],
      logLevel: 'info',
      keys: [],
    });
  });

  it('refuses a missing --config file', () => {
    const file = path.join(dir, 'missing.cfg');
    assert.throws(
      () => loadMarcoConfig({ file, warn: () => {} }),
      (err: unknown) => err instanceof ConfigError && err.message.includes(file),
    );
  });

  it('reads every key; timeout may be a float', () => {
    const { config, warnings } = load(
      '[marco]\nmarcoport = 1348\nbinding_iface = 127.0.0.1\nmulticast_addr = 224.0.0.113\npoloport = 1347\n' +
        'timeout = 1500.5\nframe_size = 2048\nlogging_level = DEBUG\ndebug = True\nlogging_dir = /var/log\n' +
        'logging_file = marcod.log\nlogging_format = %(message)s\n',
    );
    assert.deepEqual(warnings, []);
    assert.equal(config.marcoPort, 1348);
    assert.equal(config.bindAddress, '127.0.0.1');
    assert.equal(config.group, '224.0.0.113');
    assert.equal(config.poloPort, 1347);
    assert.equal(config.timeoutMs, 1500.5);
    assert.equal(config.frameSize, 2048);
    assert.equal(config.logLevel, 'debug');
  });

  it('reads `port` as an alias of poloport; two different values are an error', () => {
    assert.equal(load('[marco]\nport = 1400\n').config.poloPort, 1400);
    assert.equal(load('[marco]\nport = 1400\npoloport = 1400\n').config.poloPort, 1400);
    fails('[marco]\nport = 1400\npoloport = 1401\n', {}, 'poloport', "'1401'", "'1400'");
  });

  it('warns about unknown keys and a missing [marco] section', () => {
    const a = load('[marco]\nretries = 3\n');
    assert.deepEqual(a.warnings, [`${a.file}: unknown key 'retries' in [marco], ignored`]);
    const b = load('[polo]\nport = 1\n');
    assert.match(b.warnings[0] ?? '', /no \[marco\] section/);
  });

  it('refuses bad values, naming file, key and value', () => {
    fails('[marco]\nmarcoport = 99999\n', {}, 'marco-', '[marco] marcoport', "'99999'");
    fails('[marco]\nbinding_iface = localhost\n', {}, 'binding_iface', "'localhost'");
    fails('[marco]\nmulticast_addr = 10.0.0.1\n', {}, 'multicast_addr', "'10.0.0.1'");
    fails('[marco]\ntimeout = 0\n', {}, 'timeout', "'0'");
    fails('[marco]\ntimeout = soon\n', {}, 'timeout', "'soon'");
    fails('[marco]\nframe_size = 10\n', {}, 'frame_size', "'10'");
    fails('[marco]\nlogging_level = LOUD\n', {}, 'logging_level', "'LOUD'");
  });

  it('flags override the file', () => {
    const { config } = load('[marco]\nbinding_iface = 127.0.0.1\npoloport = 1400\nmulticast_addr = 224.0.0.113\ntimeout = 500\n', {
      bind: '0.0.0.0',
      marcoPort: 1500,
      port: 1401,
      group: '224.0.0.114',
      timeoutMs: 250,
      logLevel: 'error',
      interfaces: ['10.0.0.5'],
    });
    assert.equal(config.bindAddress, '0.0.0.0');
    assert.equal(config.marcoPort, 1500);
    assert.equal(config.poloPort, 1401);
    assert.equal(config.group, '224.0.0.114');
    assert.equal(config.timeoutMs, 250);
    assert.equal(config.logLevel, 'error');
    assert.deepEqual(config.interfaces, ['10.0.0.5']);
  });

  it('flags are validated, naming the flag', () => {
    fails(undefined, { bind: '224.0.0.1' }, '--bind');
    fails(undefined, { port: 70000 }, '--polo-port', "'70000'");
    fails(undefined, { marcoPort: -1 }, '--port');
    fails(undefined, { group: '10.0.0.1' }, '--group');
    fails(undefined, { timeoutMs: -1 }, '--timeout');
    fails(undefined, { interfaces: ['0.0.0.0'] }, '--interface');
  });

  it('reads grid keys (key_files, relative to the file) and the policy; --key replaces them', () => {
    const key = path.join(dir, 'grid.key');
    const other = path.join(dir, 'other.key');
    writeFileSync(key, Buffer.alloc(32, 1), { mode: 0o600 });
    writeFileSync(other, Buffer.alloc(32, 2), { mode: 0o600 });
    const { config } = load('[marco]\nkey_files = grid.key, other.key\nauth = preferred\n');
    assert.deepEqual(config.keys.map((k) => k.file), [key, other]);
    assert.equal(config.auth, 'preferred');
    const flagged = load('[marco]\nkey_files = missing.key\n', { keys: [gridKey(Buffer.alloc(32, 3))], auth: 'required' }).config;
    assert.deepEqual(flagged.keys.map((k) => k.id), [gridKey(Buffer.alloc(32, 3)).id], '--key: the file\'s list is not read');
    assert.equal(flagged.auth, 'required');
    assert.equal(load('[marco]\nkey_files = grid.key\nauth = off\n').config.auth, 'off');
  });

  it('refuses bad key settings with one line naming the file, key and problem', () => {
    fails('[marco]\nkey_files = missing.key\n', {}, '[marco] key_files', 'missing.key', 'no such file');
    writeFileSync(path.join(dir, 'short.key'), Buffer.alloc(8, 1), { mode: 0o600 });
    fails('[marco]\nkey_files = short.key\n', {}, '[marco] key_files', 'short.key', '8 bytes');
    fails('[marco]\nkey_files = 224.0.0.112=grid.key\n', {}, '[marco] key_files', "per-group keys (GROUP=FILE) are polod's");
    fails('[marco]\nauth = sometimes\n', {}, '[marco] auth', '"sometimes"');
    fails('[marco]\nauth = preferred\n', {}, '[marco] auth', "'preferred' needs a grid key");
    fails(undefined, { auth: 'required' }, '--auth', 'needs a grid key');
  });
});
