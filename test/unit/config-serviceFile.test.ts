/** One service file (docs/protocol.md §3): what is accepted, and the warning for everything that is not. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_VERIFY_REGEXP } from '../../src/config/poloConfig.js';
import { parseServiceFile, type ServiceFileOptions, type ServiceFileResult } from '../../src/config/serviceFile.js';

const FILE = '/etc/marcopolo/polo/services/web';
const root = { userService: false, verifyRegexp: new RegExp(DEFAULT_VERIFY_REGEXP) };
const user = { ...root, userService: true };

function parse(value: unknown, opts: ServiceFileOptions = root): ServiceFileResult {
  return parseServiceFile(typeof value === 'string' ? value : JSON.stringify(value), FILE, opts);
}

/** Asserts the file is skipped with a warning naming the file and containing every fragment. */
function skipped(value: unknown, ...fragments: string[]): void {
  const result = parse(value);
  assert.equal(result.ok, false, `expected a warning for ${JSON.stringify(value)}`);
  if (result.ok) return;
  assert.ok(result.warning.startsWith(`${FILE}: `), result.warning);
  assert.ok(!result.warning.includes('\n'), result.warning);
  for (const f of fragments) assert.ok(result.warning.includes(f), `${JSON.stringify(result.warning)} lacks ${JSON.stringify(f)}`);
}

describe('parseServiceFile', () => {
  it('reads the documented example', () => {
    const result = parse({ id: 'web', params: { port: 8080, path: '/index' }, groups: ['224.0.0.113'], disabled: false });
    assert.deepEqual(result, {
      ok: true,
      service: {
        id: 'web',
        params: { port: 8080, path: '/index' },
        groups: ['224.0.0.113'],
        disabled: false,
        permanent: true,
        origin: 'file',
        file: FILE,
      },
    });
  });

  it('defaults params to {}, groups to all and disabled to false; ignores unknown keys', () => {
    const result = parse({ id: 'skel', version: '1.0', 'startup-command': 'x', 'requires-auth': true });
    assert.ok(result.ok);
    assert.deepEqual(result.service.params, {});
    assert.equal(result.service.groups, undefined);
    assert.equal(result.service.disabled, false);
  });

  it('treats an empty groups list as every group and drops repeated groups', () => {
    const empty = parse({ id: 'a', groups: [] });
    assert.ok(empty.ok);
    assert.equal(empty.service.groups, undefined);
    const twice = parse({ id: 'a', groups: ['224.0.0.112', '224.0.0.112'] });
    assert.ok(twice.ok);
    assert.deepEqual(twice.service.groups, ['224.0.0.112']);
  });

  it('keeps disabled: true', () => {
    const result = parse({ id: 'a', disabled: true });
    assert.ok(result.ok);
    assert.equal(result.service.disabled, true);
  });

  it('accepts a byte-order mark', () => assert.ok(parse('\uFEFF{"id": "a"}').ok));

  it('warns on invalid JSON', () => skipped('{"id": "web",', 'not valid JSON'));
  it('warns on a non-object', () => skipped('["web"]', 'not a JSON object'));
  it('warns on a missing id', () => skipped({ params: {} }, 'no "id"'));
  it('warns on an empty id', () => skipped({ id: '' }, '"id" is empty'));
  it('warns on a non-string id', () => skipped({ id: 7 }, '"id" is a number'));
  it('warns on an id over 255 characters', () => {
    assert.ok(parse({ id: 'a'.repeat(255) }).ok);
    skipped({ id: 'a'.repeat(256) }, '"id" is longer than 255');
  });
  it('warns on params that are not an object', () => {
    skipped({ id: 'a', params: [1] }, '"params" is a list');
    skipped({ id: 'a', params: 'port=1' }, '"params" is a string');
    skipped({ id: 'a', params: null }, '"params" is null');
  });
  it('warns on groups that are not a list', () => {
    skipped({ id: 'a', groups: '224.0.0.112' }, '"groups" is a string');
    skipped({ id: 'a', groups: null }, '"groups" is null');
  });
  it('warns on a bad group entry, naming it', () => {
    skipped({ id: 'a', groups: ['224.0.0.112', '10.0.0.1'] }, '"groups" entry', "'10.0.0.1'");
    skipped({ id: 'a', groups: [224] }, '"groups" entry a number');
  });
  it('warns on a non-boolean disabled', () => skipped({ id: 'a', disabled: 'yes' }, '"disabled" is a string'));

  it('refuses user-style ids in root files', () => {
    skipped({ id: 'alice:web' }, "'alice:web'", 'user service');
  });

  it('refuses in user files the ids the publish API refuses, in plain words', () => {
    // The same rule as `polo publish my-svc` (src/config/serviceId.ts): with the default
    // verify_regexp, alice:my-svc could never be asked for.
    const dashed = parse({ id: 'my-svc' }, { ...user, ownerName: 'alice' });
    assert.deepEqual(dashed, {
      ok: false,
      warning: `${FILE}: "id": a user service id may use only letters, digits and '_' (e.g. 'my_svc'), so that 'alice:my-svc' can be asked for, skipped`,
    });
    assert.equal(parse({ id: 'token' }, user).ok, false);
    assert.ok(parse({ id: 'my_svc' }, { ...user, ownerName: 'alice' }).ok);
    // A root file may use the id: root ids are not split.
    assert.ok(parse({ id: 'my-svc' }).ok);
  });

  it('gives the same answer with a global regexp, call after call', () => {
    const g = { userService: false, verifyRegexp: /^(\w+):(\w+)$/g };
    for (let i = 0; i < 3; i++) assert.equal(parse({ id: 'a:b' }, g).ok, false);
  });

  it('refuses params whose Request-For reply would not fit one datagram', () => {
    // {"Command":"OK","Params":{"x":""}} is 34 bytes around the string.
    assert.ok(parse({ id: 'a', params: { x: 'y'.repeat(4096 - 34) } }).ok);
    skipped({ id: 'a', params: { x: 'y'.repeat(4096 - 33) } }, 'reply', '4096');
  });

  it('never lets __proto__ reach a prototype', () => {
    const result = parse('{"id": "a", "__proto__": {"polluted": 1}, "params": {"__proto__": {"polluted": 2}}}');
    assert.ok(result.ok);
    assert.equal(Object.getPrototypeOf(result.service.params), Object.prototype);
    assert.ok(Object.hasOwn(result.service.params, '__proto__'));
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  });

  it('does not take a missing field from an inherited __proto__', () => {
    skipped('{"__proto__": {"id": "evil"}}', 'no "id"');
  });
});
