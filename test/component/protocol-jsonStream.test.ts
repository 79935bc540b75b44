/**
 * The publish API's request splitter: reference bindings send one object per write with no
 * delimiter, newer clients newline-delimited JSON, and TCP may cut or merge writes anywhere.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { JsonObjectSplitter, type Frame } from '../../src/protocol/jsonStream.js';

const enc = (s: string): Buffer => Buffer.from(s, 'utf8');

/** Feeds `chunks` and returns the frames as [kind, text] pairs. */
function split(chunks: (string | Uint8Array)[], max?: number): [string, string | number][] {
  const splitter = new JsonObjectSplitter(max);
  const out: Frame[] = [];
  for (const c of chunks) out.push(...splitter.push(typeof c === 'string' ? enc(c) : c));
  return out.map((f) => (f.kind === 'too-large' ? [f.kind, f.size] : [f.kind, f.bytes.toString('utf8')]));
}

/** Strings rich in the characters the splitter must get right: braces, quotes, escapes, UTF-8. */
const tricky = fc.string({ unit: fc.constantFrom('{', '}', '[', ']', '"', '\\', 'a', ' ', '\n', 'é', '😀', '\u0000') });
const value = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    tricky,
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(tricky, tie('value'), { maxKeys: 3 }),
  ),
})).value;
const object = fc.dictionary(tricky, value, { maxKeys: 4 });
const separator = fc.constantFrom('', '\n', ' ', '\r\n', '\t\n  ');

describe('JsonObjectSplitter', () => {
  it('yields the same objects for any split of any concatenation (with or without newlines)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(object, separator), { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (items, cutSeeds) => {
          const texts = items.map(([o]) => JSON.stringify(o));
          const stream = enc(items.map(([, sep], i) => `${texts[i]}${sep}`).join(''));
          // Cut anywhere, also inside a multi-byte character.
          const cuts = [...new Set(cutSeeds.map((n) => n % (stream.length + 1)))].sort((a, b) => a - b);
          const chunks: Uint8Array[] = [];
          let at = 0;
          for (const c of [...cuts, stream.length]) {
            chunks.push(stream.subarray(at, c));
            at = c;
          }
          const frames = split(chunks);
          assert.deepEqual(
            frames.map(([kind]) => kind),
            texts.map(() => 'object'),
          );
          assert.deepEqual(
            frames.map(([, text]) => JSON.parse(text as string) as unknown),
            texts.map((t) => JSON.parse(t) as unknown),
          );
        },
      ),
      { numRuns: 500 },
    );
  });

  it('splits objects written back to back, as reference bindings send them', () => {
    assert.deepEqual(split(['{"a":1}{"b":"}{"}']), [
      ['object', '{"a":1}'],
      ['object', '{"b":"}{"}'],
    ]);
  });

  it('splits newline-delimited objects and skips blank lines', () => {
    assert.deepEqual(split(['{"a":1}\n\n  {"b":2}\r\n']), [
      ['object', '{"a":1}'],
      ['object', '{"b":2}'],
    ]);
  });

  it('joins one object sent in pieces, even inside a string escape', () => {
    assert.deepEqual(split(['{"s":"a\\', '"}', 'b"}']), [['object', '{"s":"a\\"}b"}']]);
  });

  it('counts brackets outside strings only', () => {
    assert.deepEqual(split(['{"a":[{"b":"]]}}"}]}', '{}']), [
      ['object', '{"a":[{"b":"]]}}"}]}'],
      ['object', '{}'],
    ]);
  });

  it('reports a partial request until its end arrives', () => {
    const s = new JsonObjectSplitter();
    assert.equal(s.partial, false);
    assert.deepEqual(s.push(enc('  {"a":')), []);
    assert.equal(s.partial, true);
    assert.equal(s.push(enc('1}')).length, 1);
    assert.equal(s.partial, false);
  });

  it('cuts garbage at a newline, or at the end of what arrived, and resynchronises', () => {
    assert.deepEqual(split(['hello\n{"a":1}']), [
      ['garbage', 'hello'],
      ['object', '{"a":1}'],
    ]);
    assert.deepEqual(split(['not json', '{"a":1}']), [
      ['garbage', 'not json'],
      ['object', '{"a":1}'],
    ]);
    assert.deepEqual(split(['[1,2]\n']), [['garbage', '[1,2]']]);
  });

  it('refuses a request over the limit, complete or not, and nothing after it', () => {
    assert.deepEqual(split(['{"a":"0123456789"}{}'], 10), [['too-large', 18]]);
    const s = new JsonObjectSplitter(16);
    assert.deepEqual(s.push(enc('{"a":"')), []);
    const frames = s.push(enc('x'.repeat(20)));
    assert.equal(frames.length, 1);
    assert.equal(frames[0]?.kind, 'too-large');
    assert.equal(s.dead, true);
    assert.deepEqual(s.push(enc('"}{}')), []);
  });

  it('keeps what came before an oversized request', () => {
    assert.deepEqual(split(['{}{"a":"0123456789"}'], 10), [
      ['object', '{}'],
      ['too-large', 18],
    ]);
  });
});
