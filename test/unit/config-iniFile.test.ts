/** INI reading: the `ini` dialect smoothed towards the reference's RawConfigParser files. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { parseIni, readIniFile } from '../../src/config/iniFile.js';
import { ConfigError } from '../../src/errors.js';

const dir = mkdtempSync(path.join(tmpdir(), 'mp-ini-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function section(text: string, name = 'polo'): ReadonlyMap<string, string> | undefined {
  return parseIni(text, 'test.cfg').get(name);
}

describe('readIniFile', () => {
  it('reports a missing file distinctly, without throwing', () => {
    const file = path.join(dir, 'absent.cfg');
    assert.deepEqual(readIniFile(file), { found: false, file });
  });

  it('reads the sections of an existing file', () => {
    const file = path.join(dir, 'polo.cfg');
    writeFileSync(file, '[polo]\nport = 1400\n\n[other]\nx = 1\n');
    const read = readIniFile(file);
    assert.ok(read.found);
    assert.equal(read.sections.get('polo')?.get('port'), '1400');
    assert.equal(read.sections.get('other')?.get('x'), '1');
  });

  it('refuses a folder given as a file, naming it', () => {
    const sub = path.join(dir, 'a-folder.cfg');
    mkdirSync(sub);
    assert.throws(() => readIniFile(sub), (err: unknown) => err instanceof ConfigError && err.message.includes(sub));
  });
});

describe('parseIni', () => {
  it('keeps values as raw text: true/false/null and numbers stay strings', () => {
    const s = section('[polo]\ndebug = true\nx = false\ny = null\nport = 1337\n');
    assert.equal(s?.get('debug'), 'true');
    assert.equal(s?.get('x'), 'false');
    assert.equal(s?.get('y'), 'null');
    assert.equal(s?.get('port'), '1337');
  });

  it('keeps backslashes of regular expressions', () => {
    assert.equal(section('[polo]\nverify_regexp = ^([\\d\\w]+):([\\d\\w]+)$\n')?.get('verify_regexp'), '^([\\d\\w]+):([\\d\\w]+)$');
  });

  it('lower-cases keys, as RawConfigParser does', () => {
    assert.equal(section('[polo]\nPort = 1400\n')?.get('port'), '1400');
  });

  it('accepts the `key: value` form', () => {
    const s = section('[polo]\nport: 1400\nverify_regexp: ^(\\w+):(\\w+)$\n');
    assert.equal(s?.get('port'), '1400');
    assert.equal(s?.get('verify_regexp'), '^(\\w+):(\\w+)$');
  });

  it('turns a single-quoted JSON value back into JSON text', () => {
    const s = section(`[polo]\npolo_params = '{"color": "#fff"}'\n`);
    assert.deepEqual(JSON.parse(s?.get('polo_params') ?? ''), { color: '#fff' });
  });

  it('gives a JSON object value verbatim', () => {
    assert.equal(section('[polo]\npolo_params = {"hostname": "a"}\n')?.get('polo_params'), '{"hostname": "a"}');
  });

  it('reports `key[]` lines under their RawConfigParser name', () => {
    const s = section('[polo]\nmulticast_addrs[] = 224.0.0.1\nmulticast_addrs[] = 224.0.0.2\n');
    assert.equal(s?.get('multicast_addrs[]'), '224.0.0.1\n224.0.0.2');
    assert.equal(s?.has('multicast_addrs'), false);
  });

  it('gives dotted sections back their names', () => {
    const sections = parseIni('[polo]\na = 1\n[polo.extra]\nb = 2\n', 'f');
    assert.equal(sections.get('polo')?.get('a'), '1');
    assert.equal(sections.get('polo')?.has('extra'), false);
    assert.equal(sections.get('polo.extra')?.get('b'), '2');
  });

  it('refuses keys outside any section, naming file and key', () => {
    assert.throws(
      () => parseIni('port = 1337\n', 'x.cfg'),
      (err: unknown) => err instanceof ConfigError && /x\.cfg: key 'port' is outside any \[section\]/.test(err.message),
    );
  });

  it('skips comments and a byte-order mark', () => {
    const s = section('\uFEFF# comment\n; other\n[polo]\nport = 1\n');
    assert.deepEqual([...(s ?? [])], [['port', '1']]);
  });

  it('ignores a __proto__ key', () => {
    const s = section('[polo]\n__proto__ = x\nport = 1\n');
    assert.equal(s?.get('__proto__'), undefined);
    assert.equal(({} as Record<string, unknown>)['x'], undefined);
  });
});
