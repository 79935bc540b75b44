/**
 * Every datagram quoted in docs/protocol.md §2.2, as seen on the wire from the reference, is a test
 * vector: queries decode to the right message, replies decode to the right result, and what we
 * encode is the compact form a reference peer parses to the same object.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decodeQuery,
  decodeReply,
  encodeFrame,
  encodeQuery,
  encodeReply,
  encodeServicesReply,
  MAX_DATAGRAM,
} from '../../src/protocol/index.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

describe('query vectors (client → group:1337)', () => {
  it('{"Command": "Marco"} (20 bytes)', () => {
    const bytes = enc('{"Command": "Marco"}');
    assert.equal(bytes.byteLength, 20);
    assert.deepEqual(decodeQuery(bytes), { command: 'Marco', wireCommand: 'Marco' });
  });

  it('{"Command": "Request-For", "Params": "web"} (43 bytes)', () => {
    const bytes = enc('{"Command": "Request-For", "Params": "web"}');
    assert.equal(bytes.byteLength, 43);
    assert.deepEqual(decodeQuery(bytes), { command: 'Request-For', service: 'web', wireCommand: 'Request-For' });
  });

  it('{"Command": "Request-For", "Params": "printer"} (47 bytes)', () => {
    const bytes = enc('{"Command": "Request-For", "Params": "printer"}');
    assert.equal(bytes.byteLength, 47);
    assert.deepEqual(decodeQuery(bytes), { command: 'Request-For', service: 'printer', wireCommand: 'Request-For' });
  });

  it('aliases Discover and Request-for, and Services', () => {
    assert.equal(decodeQuery(enc('{"Command": "Discover"}')).command, 'Marco');
    assert.deepEqual(decodeQuery(enc('{"Command": "Request-for", "Params": "web"}')), {
      command: 'Request-For',
      service: 'web',
      wireCommand: 'Request-for',
    });
    assert.equal(decodeQuery(enc('{"Command": "Services"}')).command, 'Services');
  });

  it('ignores extra keys (Auth is reserved, request ids may come)', () => {
    assert.equal(decodeQuery(enc('{"Command":"Marco","Auth":"x","Id":7}')).command, 'Marco');
  });

  it('decodes the reference escape of non-ASCII ids', () => {
    const q = decodeQuery(enc('{"Command": "Request-For", "Params": "caf\\u00e9"}'));
    assert.deepEqual(q, { command: 'Request-For', service: 'café', wireCommand: 'Request-For' });
  });

  it('encodes queries compactly', () => {
    assert.equal(dec(encodeQuery({ command: 'Marco' })), '{"Command":"Marco"}');
    assert.equal(dec(encodeQuery({ command: 'Request-For', service: 'web' })), '{"Command":"Request-For","Params":"web"}');
    assert.equal(dec(encodeQuery({ command: 'Services' })), '{"Command":"Services"}');
  });
});

describe('reply vectors (polod → client, unicast)', () => {
  it('{"Command":"Polo","Params":{"hostname":"polo-a"}} (49 bytes), byte for byte', () => {
    const wire = '{"Command":"Polo","Params":{"hostname":"polo-a"}}';
    assert.equal(enc(wire).byteLength, 49);
    assert.deepEqual(decodeReply(enc(wire)), { command: 'Polo', params: { hostname: 'polo-a' } });
    // The reference's Polo reply is compact: ours is identical.
    assert.equal(dec(encodeReply({ command: 'Polo', params: { hostname: 'polo-a' } })), wire);
  });

  it('{"Command": "OK", "Params": {"port": 8080, "path": "/index"}} (61 bytes)', () => {
    const wire = '{"Command": "OK", "Params": {"port": 8080, "path": "/index"}}';
    assert.equal(enc(wire).byteLength, 61);
    assert.deepEqual(decodeReply(enc(wire)), { command: 'OK', params: { port: 8080, path: '/index' } });
    const ours = encodeReply({ command: 'OK', params: { port: 8080, path: '/index' } });
    assert.deepEqual(JSON.parse(dec(ours)), JSON.parse(wire));
  });

  it('{"Command": "OK", "Params": {"port": 9090}} (43 bytes)', () => {
    const wire = '{"Command": "OK", "Params": {"port": 9090}}';
    assert.equal(enc(wire).byteLength, 43);
    assert.deepEqual(decodeReply(enc(wire)), { command: 'OK', params: { port: 9090 } });
  });

  it('{"Command": "OK", "Params": {"queue": "lp0"}} (45 bytes)', () => {
    const wire = '{"Command": "OK", "Params": {"queue": "lp0"}}';
    assert.equal(enc(wire).byteLength, 45);
    assert.deepEqual(decodeReply(enc(wire)), { command: 'OK', params: { queue: 'lp0' } });
  });

  it('reads a Services list from Services (reference server) or Params (reference client)', () => {
    const list = [{ id: 'web', params: { port: 8080 } }];
    assert.deepEqual(decodeReply(enc(JSON.stringify({ Command: 'OK', Services: list }))), { command: 'Services', services: list });
    assert.deepEqual(decodeReply(enc(JSON.stringify({ Command: 'OK', Params: list }))), { command: 'Services', services: list });
  });

  it('writes a Services list under both keys', () => {
    const list = [{ id: 'web', params: {} }];
    assert.deepEqual(JSON.parse(dec(encodeReply({ command: 'Services', services: list }))), {
      Command: 'OK',
      Services: list,
      Params: list,
    });
  });

  it('treats a Polo reply with string params (the reference shipped config) as empty params', () => {
    assert.deepEqual(decodeReply(enc('{"Command":"Polo","Params":"{\'hostname\': \'martin\'}"}')), {
      command: 'Polo',
      params: {},
    });
  });
});

describe('frame limit', () => {
  it('never encodes past 4096 bytes', () => {
    const big = { blob: 'x'.repeat(MAX_DATAGRAM) };
    assert.throws(() => encodeReply({ command: 'OK', params: big }), { code: 'MP_ERR_FRAME_TOO_LARGE' });
    assert.throws(() => encodeFrame({ Command: 'Polo', Params: big }), { name: 'FrameTooLargeError' });
  });

  it('cuts a Services list to whole entries that fit, each sent once, marking it', () => {
    const services = Array.from({ length: 300 }, (_, i) => ({ id: `svc-${i}`, params: { port: 1000 + i } }));
    const bytes = encodeServicesReply(services);
    assert.ok(bytes.byteLength <= MAX_DATAGRAM);
    const msg = JSON.parse(dec(bytes)) as { Services?: unknown[]; Params: unknown[]; Truncated: boolean; Total: number };
    assert.equal(msg.Truncated, true);
    assert.equal(msg.Total, 300);
    assert.equal(msg.Services, undefined);
    assert.ok(msg.Params.length > 10 && msg.Params.length < 300);
    assert.deepEqual(msg.Params, services.slice(0, msg.Params.length));
    // One more entry would not have fitted.
    const oneMore = encodeServicesReply(services.slice(0, msg.Params.length + 1), Number.MAX_SAFE_INTEGER);
    assert.ok(oneMore.byteLength > MAX_DATAGRAM - 30);
    assert.deepEqual(decodeReply(bytes), { command: 'Services', services: msg.Params, truncated: true, total: 300 });
  });

  it('sends a list that fits once but not twice whole, under Params only', () => {
    const services = [
      { id: 'big', params: { blob: 'x'.repeat(2500) } },
      { id: 'small', params: { port: 1 } },
    ];
    const msg = JSON.parse(dec(encodeServicesReply(services))) as Record<string, unknown>;
    assert.deepEqual(msg, { Command: 'OK', Params: services });
  });

  it('lists every entry that fits after one too large for the space left', () => {
    const services = [
      { id: 'a', params: { blob: 'x'.repeat(3000) } },
      { id: 'b', params: { blob: 'y'.repeat(3000) } },
      ...Array.from({ length: 5 }, (_, i) => ({ id: `s${i}`, params: { port: i } })),
    ];
    const msg = JSON.parse(dec(encodeServicesReply(services))) as { Params: { id: string }[]; Truncated: boolean; Total: number };
    assert.deepEqual(
      msg.Params.map((s) => s.id),
      ['a', 's0', 's1', 's2', 's3', 's4'],
    );
    assert.equal(msg.Truncated, true);
    assert.equal(msg.Total, 7);
  });

  it('refuses datagrams over the limit on decode', () => {
    assert.throws(() => decodeQuery(new Uint8Array(MAX_DATAGRAM + 1)), { reason: 'too-large' });
  });
});
