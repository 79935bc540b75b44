/** The value validators shared by config files and flags: typed results, one-line errors naming where and what. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  checkPort,
  checkTimeoutMs,
  isMulticastIPv4,
  parseGroup,
  parseGroupList,
  parseInteger,
  parseIPv4,
  parseJsonObject,
  parseLevel,
  parsePort,
  parseRegExp,
  parseTimeoutMs,
  showValue,
} from '../../src/config/values.js';
import { ConfigError } from '../../src/errors.js';

/** Asserts a ConfigError on one line whose message contains every fragment. */
function rejects(fn: () => unknown, ...fragments: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.code, 'MP_ERR_CONFIG');
    assert.ok(!err.message.includes('\n'), `one line: ${err.message}`);
    for (const f of fragments) assert.ok(err.message.includes(f), `${JSON.stringify(err.message)} lacks ${JSON.stringify(f)}`);
    return true;
  });
}

describe('parsePort', () => {
  it('accepts 1..65535', () => {
    assert.equal(parsePort('1', '--port'), 1);
    assert.equal(parsePort(' 65535 ', '--port'), 65535);
  });
  for (const bad of ['0', '65536', '-1', '13.5', 'abc', '', '0x10', '1e3']) {
    it(`refuses '${bad}', naming where and the value`, () => rejects(() => parsePort(bad, '--port'), '--port', `'${bad}'`));
  }
  it('checks typed ports too', () => {
    assert.equal(checkPort(80, '--port'), 80);
    rejects(() => checkPort(1.5, '--port'), '--port', "'1.5'");
  });
});

describe('parseGroup / parseGroupList', () => {
  it('accepts 224.0.0.0/4 dotted quads', () => {
    assert.equal(parseGroup('224.0.0.112', 'g'), '224.0.0.112');
    assert.equal(parseGroup('239.255.255.255', 'g'), '239.255.255.255');
    assert.equal(isMulticastIPv4('240.0.0.1'), false);
  });
  it('accepts IPv6 groups, a twin in its IPv4 spelling', () => {
    assert.equal(parseGroup('FF02::ABCD:1', 'g'), 'ff02::abcd:1');
    assert.equal(parseGroup('ff02::224:0:0:113', 'g'), '224.0.0.113');
    assert.deepEqual(parseGroupList('224.0.0.112 ff02::224:0:0:112', 'k'), ['224.0.0.112']);
  });
  for (const bad of ['223.255.255.255', '240.0.0.1', '10.0.0.1', '224.0.0', '224.0.0.1.5', '0224.0.0.1', 'fe80::1', 'ff02::1%eth0', 'host']) {
    it(`refuses '${bad}'`, () => rejects(() => parseGroup(bad, '--group'), '--group', `'${bad}'`, 'multicast'));
  }
  it('splits on whitespace and commas, dropping duplicates', () => {
    assert.deepEqual(parseGroupList('224.0.0.112 224.0.0.113', 'k'), ['224.0.0.112', '224.0.0.113']);
    assert.deepEqual(parseGroupList('224.0.0.112, 224.0.0.113,224.0.0.112', 'k'), ['224.0.0.112', '224.0.0.113']);
  });
  it('names the bad entry of a list', () => rejects(() => parseGroupList('224.0.0.112 10.1.1.1', 'k'), "'10.1.1.1'"));
  it('refuses an empty list', () => rejects(() => parseGroupList('  ', 'k'), 'k', 'no multicast group'));
});

describe('parseIPv4', () => {
  it('accepts unicast addresses', () => {
    assert.equal(parseIPv4('192.168.1.10', '--interface'), '192.168.1.10');
    assert.equal(parseIPv4('127.0.0.1', '--interface'), '127.0.0.1');
  });
  it('refuses multicast, broadcast, reserved and names', () => {
    for (const bad of ['224.0.0.1', '255.255.255.255', '240.1.1.1', 'eth0', '1.2.3'])
      rejects(() => parseIPv4(bad, '--interface'), '--interface', `'${bad}'`);
  });
  it('accepts 0.0.0.0 only when asked to', () => {
    rejects(() => parseIPv4('0.0.0.0', '--interface'), '--interface');
    assert.equal(parseIPv4('0.0.0.0', '--bind', { allowAny: true }), '0.0.0.0');
  });
});

describe('parseJsonObject', () => {
  it('returns the object', () => assert.deepEqual(parseJsonObject('{"hostname": "a", "n": 1}', 'k'), { hostname: 'a', n: 1 }));

  it("refuses the reference's shipped JSON string, suggesting the object", () =>
    rejects(
      () => parseJsonObject(`"{'hostname': 'martin'}"`, 'polo.cfg: [polo] polo_params'),
      'polo.cfg: [polo] polo_params',
      'is a JSON string, not an object',
      '{"hostname":"martin"}',
    ));

  it('suggests double quotes for a Python dict', () =>
    rejects(() => parseJsonObject(`{'hostname': 'martin'}`, '--params'), '--params', 'not valid JSON', '{"hostname":"martin"}'));

  for (const [bad, kind] of [['[1]', 'a list'], ['3', 'a number'], ['null', 'null'], ['true', 'a boolean']] as const) {
    it(`refuses ${bad} (${kind})`, () => rejects(() => parseJsonObject(bad, '--params'), '--params', 'not a JSON object'));
  }

  it('keeps __proto__ as an own key without touching prototypes', () => {
    const obj = parseJsonObject('{"__proto__": {"polluted": true}}', 'k');
    assert.ok(Object.hasOwn(obj, '__proto__'));
    assert.equal(Object.getPrototypeOf(obj), Object.prototype);
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  });
});

describe('other validators', () => {
  it('parseInteger: bounds and syntax', () => {
    assert.equal(parseInteger('-10', 'k', -100, 100), -10);
    assert.equal(parseInteger('+3', 'k', 0, 255), 3);
    rejects(() => parseInteger('256', 'hops', 0, 255), 'hops', "'256'", 'from 0 to 255');
    rejects(() => parseInteger('1.0', 'k', 0, 9), "'1.0'");
  });
  it('parseLevel: pino and Python names', () => {
    assert.equal(parseLevel('DEBUG', 'k'), 'debug');
    assert.equal(parseLevel('WARNING', 'k'), 'warn');
    assert.equal(parseLevel('CRITICAL', 'k'), 'fatal');
    assert.equal(parseLevel('NOTSET', 'k'), 'trace');
    rejects(() => parseLevel('loud', '--log-level'), '--log-level', "'loud'");
  });
  it('parseRegExp: compiles or names the reason', () => {
    assert.ok(parseRegExp('^a:b$', 'k').test('a:b'));
    rejects(() => parseRegExp('(?P<user>\\w+)', 'verify_regexp'), 'verify_regexp', 'not a valid regular expression');
  });
  it('parseTimeoutMs: floats, positive, within timer range', () => {
    assert.equal(parseTimeoutMs('1000.0', 'k'), 1000);
    assert.equal(parseTimeoutMs('2.5', 'k'), 2.5);
    assert.equal(parseTimeoutMs('1e3', 'k'), 1000);
    for (const bad of ['0', '-5', 'inf', 'nan', '3000000000', 'x']) rejects(() => parseTimeoutMs(bad, 'timeout'), 'timeout', `'${bad}'`);
    rejects(() => checkTimeoutMs(Number.NaN, '--timeout'), '--timeout');
  });
  it('showValue keeps messages on one line and short', () => {
    assert.equal(showValue('a\nb\u0001'), "'a\\nb\\x01'");
    assert.ok(showValue('x'.repeat(1000)).length < 200);
  });
});
