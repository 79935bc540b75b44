/**
 * marcod's wire forms, without sockets: every request key with its tolerated spellings and its
 * error, the exact datagrams the reference bindings send, and replies that must fit one frame.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encodeMarcodReply } from '../../src/marcod/reply.js';
import { parseRequest, type MarcodRequest, type ParsedRequest } from '../../src/marcod/request.js';
import { MAX_REQUEST_BYTES, MAX_REQUEST_TIMEOUT_MS } from '../../src/marcod/limits.js';

const parse = (value: unknown): ParsedRequest =>
  parseRequest(new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value)));

function ok(value: unknown): MarcodRequest {
  const parsed = parse(value);
  if (!parsed.ok) assert.fail(`expected a valid request, got error ${JSON.stringify(parsed.error)}`);
  return parsed.request;
}

/** The error of a refused request; asserts that it names `key`. */
function refused(value: unknown, key?: string): string | true {
  const parsed = parse(value);
  if (parsed.ok) assert.fail(`expected an error for ${JSON.stringify(value)}`);
  if (key !== undefined) {
    assert.equal(typeof parsed.error, 'string');
    assert.match(parsed.error as string, new RegExp(`\\b${key.replace('-', '\\-')}\\b`), `the error names ${key}`);
  }
  return parsed.error;
}

const MARCO_DEFAULTS = { maxNodes: 0, exclude: [], params: undefined, timeout: undefined, group: undefined, retries: 0 };

describe('requests the reference bindings send', () => {
  test('Python marco()', () => {
    const request = ok('{"Command": "Marco", "max_nodes": null, "exclude": [], "params": {}, "timeout": 1000, "group": "224.0.0.112"}');
    assert.deepEqual(request, { command: 'Marco', ...MARCO_DEFAULTS, timeout: 1000, group: '224.0.0.112' });
  });

  test('Python request_for(): Request-for, no group, node null', () => {
    const request = ok(
      '{"Command": "Request-for", "Params": "web", "node": null, "max_nodes": null, "exclude": [], "params": {}, "timeout": 1000}',
    );
    assert.deepEqual(request, { command: 'Request-For', service: 'web', ...MARCO_DEFAULTS, timeout: 1000 });
  });

  test('C++ marco() and request_for(): max_nodes 0 means no limit', () => {
    assert.deepEqual(ok('{"Command":"Marco","max_nodes":0,"exclude":[],"timeout":2000,"group":"224.0.0.112"}'), {
      command: 'Marco',
      ...MARCO_DEFAULTS,
      timeout: 2000,
      group: '224.0.0.112',
    });
    assert.deepEqual(ok('{"Command":"Request-for","Params":"web","max_nodes":3,"exclude":[],"timeout":2000,"group":"224.0.0.113"}'), {
      command: 'Request-For',
      service: 'web',
      ...MARCO_DEFAULTS,
      maxNodes: 3,
      timeout: 2000,
      group: '224.0.0.113',
    });
  });

  test('Java: "max-nodes" is read (the reference ignored it)', () => {
    const request = ok('{"Command":"Marco","max-nodes":2,"exclude":[],"params":{},"timeout":2000,"group":"224.0.0.112"}');
    assert.equal(request.command === 'Marco' && request.maxNodes, 2);
  });

  test('Python services()', () => {
    assert.deepEqual(ok('{"Command": "Services", "node": "10.0.0.1", "timeout": 1000}'), {
      command: 'Services',
      node: '10.0.0.1',
      timeout: 1000,
      group: undefined,
      envelope: false,
    });
  });
});

describe('Command', () => {
  test('missing or unknown gives exactly {"Error": true}, as the reference', () => {
    for (const value of [{}, { Command: 'Nope' }, { Command: 'marco' }, { Command: 42 }, { Command: null }, { Params: 'web' }]) {
      assert.equal(refused(value), true, JSON.stringify(value));
    }
  });

  test('Request-For and Request-for are both accepted; Params must be a non-empty string', () => {
    assert.equal(ok({ Command: 'Request-For', Params: 'a:b' }).command, 'Request-For');
    assert.equal(ok({ Command: 'Request-for', Params: 'a:b' }).command, 'Request-For');
    refused({ Command: 'Request-For' }, 'Params');
    refused({ Command: 'Request-For', Params: '' }, 'Params');
    refused({ Command: 'Request-For', Params: ['web'] }, 'Params');
  });

  test('Services needs a node; Envelope and group are read', () => {
    refused({ Command: 'Services' }, 'node');
    refused({ Command: 'Services', node: 7 }, 'node');
    assert.deepEqual(ok({ Command: 'Services', node: 'h1', Envelope: true, group: '224.0.0.113' }), {
      command: 'Services',
      node: 'h1',
      timeout: undefined,
      group: '224.0.0.113',
      envelope: true,
    });
  });
});

describe('datagrams that are not requests get a reason', () => {
  test('not JSON, not an object, not UTF-8, too deep, too large', () => {
    assert.match(String(refused('hello')), /not valid JSON/);
    assert.match(String(refused('{"Command": "Marco"')), /not valid JSON/);
    assert.match(String(refused('[]')), /not a JSON object/);
    assert.match(String(refused('"Marco"')), /not a JSON object/);
    assert.match(String(refused('null')), /not a JSON object/);
    const badUtf8 = parseRequest(Uint8Array.of(0x7b, 0xff, 0x7d));
    assert.ok(!badUtf8.ok && /UTF-8/.test(String(badUtf8.error)));
    assert.match(String(refused(`{"Command":"Marco","params":${'['.repeat(100)}${']'.repeat(100)}}`)), /nested deeper/);
    const huge = JSON.stringify({ Command: 'Marco', pad: 'x'.repeat(MAX_REQUEST_BYTES) });
    assert.match(String(refused(huge)), new RegExp(`request of ${huge.length} bytes exceeds the ${MAX_REQUEST_BYTES}-byte limit`));
  });
});

describe('timeout', () => {
  const timeoutOf = (timeout: unknown): number | undefined => {
    const request = ok({ Command: 'Marco', timeout });
    return request.timeout;
  };

  test('an int, a float (rounded up) or a numeric string', () => {
    assert.equal(timeoutOf(1500), 1500);
    assert.equal(timeoutOf(1500.2), 1501);
    assert.equal(timeoutOf(0.1), 1);
    assert.equal(timeoutOf('2000'), 2000);
    assert.equal(timeoutOf(' 250.5 '), 251);
    assert.equal(timeoutOf(MAX_REQUEST_TIMEOUT_MS), MAX_REQUEST_TIMEOUT_MS);
  });

  test('missing, null and 0 mean the configured default', () => {
    assert.equal(ok({ Command: 'Marco' }).timeout, undefined);
    assert.equal(timeoutOf(null), undefined);
    assert.equal(timeoutOf(0), undefined);
    assert.equal(timeoutOf('0'), undefined);
  });

  test('non-numeric, negative, huge: an error naming timeout', () => {
    for (const bad of ['abc', '', '-5', '1e3', -1, MAX_REQUEST_TIMEOUT_MS + 1, 1e300, true, [1000], { ms: 1 }]) {
      refused({ Command: 'Marco', timeout: bad }, 'timeout');
    }
    refused({ Command: 'Services', node: 'h1', timeout: 'soon' }, 'timeout');
  });
});

describe('max_nodes and max-nodes', () => {
  const maxOf = (request: Record<string, unknown>): number => {
    const parsed = ok({ Command: 'Marco', ...request });
    return parsed.command === 'Marco' ? parsed.maxNodes : -1;
  };

  test('null, 0 and absent mean no limit; integers and digit strings are limits', () => {
    assert.equal(maxOf({}), 0);
    assert.equal(maxOf({ max_nodes: null }), 0);
    assert.equal(maxOf({ max_nodes: 0 }), 0);
    assert.equal(maxOf({ max_nodes: 3 }), 3);
    assert.equal(maxOf({ max_nodes: 3.0 }), 3);
    assert.equal(maxOf({ max_nodes: '4' }), 4);
    assert.equal(maxOf({ 'max-nodes': 5 }), 5);
    assert.equal(maxOf({ 'max-nodes': null }), 0);
  });

  test('max_nodes wins over max-nodes unless it is null', () => {
    assert.equal(maxOf({ max_nodes: 2, 'max-nodes': 5 }), 2);
    assert.equal(maxOf({ max_nodes: null, 'max-nodes': 5 }), 5);
  });

  test('non-numeric, negative or fractional: an error naming the key as sent', () => {
    for (const bad of ['two', -1, 1.5, true, [2], {}]) {
      refused({ Command: 'Marco', max_nodes: bad }, 'max_nodes');
      refused({ Command: 'Request-For', Params: 'web', 'max-nodes': bad }, 'max-nodes');
    }
  });
});

describe('exclude, params, group, retries, extra keys', () => {
  test('exclude: a list of IPv4 strings; null is empty; anything else is an error', () => {
    const request = ok({ Command: 'Marco', exclude: ['10.0.0.1', '10.0.0.2'] });
    assert.deepEqual(request.command === 'Marco' && request.exclude, ['10.0.0.1', '10.0.0.2']);
    assert.deepEqual(ok({ Command: 'Marco', exclude: null }), { command: 'Marco', ...MARCO_DEFAULTS });
    refused({ Command: 'Marco', exclude: '10.0.0.1' }, 'exclude');
    refused({ Command: 'Marco', exclude: { ip: '10.0.0.1' } }, 'exclude');
    refused({ Command: 'Marco', exclude: [['10.0.0.1', 1337]] }, 'exclude');
    refused({ Command: 'Marco', exclude: ['polo-a'] }, 'exclude');
  });

  test('params: an object filter; {} and null mean none; anything else is an error', () => {
    const request = ok({ Command: 'Marco', params: { role: 'db' } });
    assert.deepEqual(request.command === 'Marco' && request.params, { role: 'db' });
    assert.deepEqual(ok({ Command: 'Marco', params: {} }), { command: 'Marco', ...MARCO_DEFAULTS });
    assert.deepEqual(ok({ Command: 'Marco', params: null }), { command: 'Marco', ...MARCO_DEFAULTS });
    refused({ Command: 'Marco', params: 'role=db' }, 'params');
    refused({ Command: 'Marco', params: [['role', 'db']] }, 'params');
  });

  test('group: a multicast address, read for Request-For too (bug B16)', () => {
    const request = ok({ Command: 'Request-For', Params: 'web', group: '224.0.0.113' });
    assert.equal(request.command === 'Request-For' && request.group, '224.0.0.113');
    assert.deepEqual(ok({ Command: 'Marco', group: '' }), { command: 'Marco', ...MARCO_DEFAULTS });
    assert.deepEqual(ok({ Command: 'Marco', group: null }), { command: 'Marco', ...MARCO_DEFAULTS });
    refused({ Command: 'Marco', group: '10.0.0.1' }, 'group');
    refused({ Command: 'Marco', group: 112 }, 'group');
  });

  test('retries: a small non-negative integer', () => {
    const request = ok({ Command: 'Marco', retries: 2 });
    assert.equal(request.command === 'Marco' && request.retries, 2);
    refused({ Command: 'Marco', retries: -1 }, 'retries');
    refused({ Command: 'Marco', retries: 1000 }, 'retries');
    refused({ Command: 'Marco', retries: 'twice' }, 'retries');
  });

  test('extra keys are ignored: node on Marco and Request-For, anything unknown', () => {
    assert.deepEqual(ok({ Command: 'Marco', node: '10.0.0.9', Auth: 'x', __proto__x: 1 }), { command: 'Marco', ...MARCO_DEFAULTS });
    assert.deepEqual(ok(JSON.parse('{"Command":"Marco","__proto__":{"timeout":5}}')), { command: 'Marco', ...MARCO_DEFAULTS });
  });
});

describe('replies', () => {
  const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
  const node = (i: number, pad = 0): { address: string; params: Record<string, string> } => ({
    address: `10.0.0.${i}`,
    params: { hostname: `h${i}`, pad: 'x'.repeat(pad) },
  });

  test('nodes: [{"Address","Params"}] and [] when nobody answered', () => {
    assert.equal(text(encodeMarcodReply({ kind: 'nodes', nodes: [] }, 4096).bytes), '[]');
    const { bytes, dropped } = encodeMarcodReply({ kind: 'nodes', nodes: [{ address: '10.0.0.1', params: { hostname: 'a' } }] }, 4096);
    assert.equal(text(bytes), '[{"Address":"10.0.0.1","Params":{"hostname":"a"}}]');
    assert.equal(dropped, 0);
  });

  test('errors: {"Error":true} exactly, or a reason cut to fit', () => {
    assert.equal(text(encodeMarcodReply({ kind: 'error', error: true }, 4096).bytes), '{"Error":true}');
    assert.equal(text(encodeMarcodReply({ kind: 'error', error: 'busy' }, 4096).bytes), '{"Error":"busy"}');
    const long = encodeMarcodReply({ kind: 'error', error: 'é'.repeat(1000) }, 64).bytes;
    assert.ok(long.byteLength <= 64);
    assert.equal(typeof (JSON.parse(text(long)) as { Error: unknown }).Error, 'string');
  });

  test('an oversize node list keeps the longest prefix of whole nodes that fits the frame', () => {
    const nodes = Array.from({ length: 20 }, (_, i) => node(i + 1, 300));
    for (const frame of [4096, 2048, 400, 64]) {
      const { bytes, dropped } = encodeMarcodReply({ kind: 'nodes', nodes }, frame);
      assert.ok(bytes.byteLength <= frame, `${bytes.byteLength} <= ${frame}`);
      const list = JSON.parse(text(bytes)) as Array<{ Address: string }>;
      assert.equal(list.length + dropped, 20);
      assert.deepEqual(
        list.map((n) => n.Address),
        nodes.slice(0, list.length).map((n) => n.address),
        'a prefix, in arrival order',
      );
      const withOneMore = encodeMarcodReply({ kind: 'nodes', nodes: nodes.slice(0, list.length + 1) }, 1 << 20).bytes;
      assert.ok(withOneMore.byteLength > frame, 'one more node would not have fit');
    }
  });

  test('Services: a bare array, or the envelope with Address null when nobody answered', () => {
    const result = { address: '10.0.0.1', services: [{ id: 'web', params: { port: 80 } }] };
    assert.equal(text(encodeMarcodReply({ kind: 'services', result, envelope: false }, 4096).bytes), '[{"id":"web","params":{"port":80}}]');
    assert.equal(text(encodeMarcodReply({ kind: 'services', result: undefined, envelope: false }, 4096).bytes), '[]');
    assert.equal(
      text(encodeMarcodReply({ kind: 'services', result, envelope: true }, 4096).bytes),
      '{"Address":"10.0.0.1","Services":[{"id":"web","params":{"port":80}}]}',
    );
    assert.equal(
      text(encodeMarcodReply({ kind: 'services', result: undefined, envelope: true }, 4096).bytes),
      '{"Address":null,"Services":[]}',
    );
    const many = { address: '10.0.0.1', services: Array.from({ length: 50 }, (_, i) => ({ id: `s${i}`, params: { pad: 'y'.repeat(100) } })) };
    const cut = encodeMarcodReply({ kind: 'services', result: many, envelope: true }, 1024);
    assert.ok(cut.bytes.byteLength <= 1024);
    const parsed = JSON.parse(text(cut.bytes)) as { Services: unknown[]; Truncated?: boolean };
    assert.equal(parsed.Truncated, true);
    assert.equal(parsed.Services.length + cut.dropped, 50);
    // A large service early in the list does not hide the smaller ones after it.
    const big = { address: '10.0.0.1', services: [{ id: 'big', params: { pad: 'z'.repeat(3000) } }, ...many.services.slice(0, 3)] };
    const skipped = encodeMarcodReply({ kind: 'services', result: big, envelope: false }, 2048);
    assert.deepEqual(
      (JSON.parse(text(skipped.bytes)) as { id: string }[]).map((s) => s.id),
      ['s0', 's1', 's2'],
    );
    assert.equal(skipped.dropped, 1);
    const cutByNode = encodeMarcodReply({ kind: 'services', result: { ...result, truncated: true }, envelope: true }, 4096);
    assert.equal((JSON.parse(text(cutByNode.bytes)) as { Truncated?: boolean }).Truncated, true);
  });
});
