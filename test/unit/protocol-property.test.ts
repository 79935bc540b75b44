/**
 * Property tests of the codec: whatever bytes or JSON arrive, decode returns a message or throws
 * the one typed ProtocolError, and keys such as `__proto__` or `constructor` change no object.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ProtocolError } from '../../src/errors.js';
import { decodeQuery, decodeReply, encodeReply, type JsonObject } from '../../src/protocol/index.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Runs `fn` and returns the thrown value, if any. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err;
  }
}

function onlyTypedErrors(bytes: Uint8Array): void {
  for (const decode of [decodeQuery, decodeReply]) {
    const err = thrown(() => decode(bytes));
    if (err !== undefined) assert.ok(err instanceof ProtocolError, `unexpected ${String(err)}`);
  }
}

const dangerousKeys = fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'Command', 'Params');
const jsonWithDangerousKeys = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string(),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.oneof(dangerousKeys, fc.string()), tie('value'), { maxKeys: 5 }),
  ),
})).value;

describe('decode never raises anything but ProtocolError', () => {
  it('random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => onlyTypedErrors(bytes)), { numRuns: 3000 });
  });

  it('random JSON of any shape', () => {
    fc.assert(fc.property(fc.json(), (text) => onlyTypedErrors(enc(text))), { numRuns: 3000 });
  });

  it('random objects with a Command and Params of any type', () => {
    const message = fc.record({
      Command: fc.oneof(fc.constantFrom('Marco', 'Discover', 'Request-For', 'Request-for', 'Services', 'Polo', 'OK'), fc.string(), fc.integer()),
      Params: jsonWithDangerousKeys,
      Services: fc.option(jsonWithDangerousKeys),
    });
    fc.assert(fc.property(message, (m) => onlyTypedErrors(enc(JSON.stringify(m)))), { numRuns: 3000 });
  });

  it('truncated valid messages', () => {
    const valid = '{"Command": "Request-For", "Params": "web"}';
    for (let i = 0; i < valid.length; i++) onlyTypedErrors(enc(valid.slice(0, i)));
  });
});

describe('__proto__ and friends change no object', () => {
  it('decoding objects with dangerous keys pollutes no prototype', () => {
    fc.assert(
      fc.property(fc.dictionary(dangerousKeys, jsonWithDangerousKeys, { maxKeys: 4 }), (params) => {
        const text = `{"Command":"Polo","Params":${JSON.stringify(params)},"__proto__":{"polluted":1}}`;
        const reply = thrown(() => decodeReply(enc(text))) ?? decodeReply(enc(text));
        assert.ok(!(reply instanceof Error) || reply instanceof ProtocolError);
        assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted'), false);
        assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
        if (!(reply instanceof Error) && reply !== undefined && typeof reply === 'object' && 'params' in reply) {
          const p = (reply as { params: JsonObject }).params;
          assert.ok(Object.getPrototypeOf(p) === Object.prototype, 'params keep the plain prototype');
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('a __proto__ key in params is data, sent back as data', () => {
    const reply = decodeReply(enc('{"Command":"OK","Params":{"__proto__":{"x":1},"port":1}}'));
    assert.equal(reply.command, 'OK');
    if (reply.command !== 'OK') return;
    assert.equal(Object.getPrototypeOf(reply.params), Object.prototype);
    assert.equal((reply.params as Record<string, unknown>)['x'], undefined);
    assert.deepEqual(JSON.parse(new TextDecoder().decode(encodeReply(reply))), JSON.parse('{"Command":"OK","Params":{"__proto__":{"x":1},"port":1}}'));
  });
});

describe('hostile shapes', () => {
  it('deep nesting is refused before parsing', () => {
    const deep = `{"Command":"Marco","x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    assert.throws(() => decodeQuery(enc(deep)), { reason: 'too-large' });
    const deepSmall = `{"Command":"Marco","x":${'['.repeat(1000)}${']'.repeat(1000)}}`;
    assert.throws(() => decodeQuery(enc(deepSmall)), { reason: 'too-deep' });
  });

  it('brackets inside strings do not count as nesting', () => {
    const q = decodeQuery(enc(`{"Command":"Request-For","Params":"${'['.repeat(200)}\\"${'{'.repeat(200)}"}`));
    assert.equal(q.command, 'Request-For');
  });

  it('invalid UTF-8, overlong forms and lone surrogates are refused', () => {
    for (const bytes of [[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80]]) {
      assert.throws(() => decodeQuery(Uint8Array.from([0x7b, 0x22, ...bytes, 0x22, 0x7d])), { reason: 'invalid-utf8' });
    }
  });

  it('each malformed kind has its reason', () => {
    const cases: Array<[string, string]> = [
      ['nope', 'invalid-json'],
      ['[]', 'not-object'],
      ['null', 'not-object'],
      ['{}', 'no-command'],
      ['{"Command":1}', 'no-command'],
      ['{"Command":"marco"}', 'unknown-command'],
      ['{"Command":"Request-For"}', 'bad-field'],
      ['{"Command":"Request-For","Params":""}', 'bad-field'],
      ['{"Command":"Request-For","Params":["web"]}', 'bad-field'],
    ];
    for (const [text, reason] of cases) assert.throws(() => decodeQuery(enc(text)), { reason }, text);
  });
});
