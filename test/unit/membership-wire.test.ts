/** The live-discovery messages: what is accepted, what is refused, and what gives way to fit a datagram. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeAnnouncement, encodeGoodbye, membersHint, readPresence, type Announcement } from '../../src/membership/wire.js';
import { decodeObject } from '../../src/protocol/codec.js';
import { heartbeatInterval, DEFAULT_TIMING, expiryAfter } from '../../src/membership/timing.js';

const base: Announcement = {
  instance: 'abc',
  rev: 2,
  every: 1000,
  members: 3,
  params: { hostname: 'h1' },
  services: [{ id: 'web', params: { port: 80 } }],
  refs: [{ address: '192.0.2.9', params: { hostname: 'old' } }],
};

const read = (bytes: Uint8Array) => readPresence(decodeObject(bytes));

describe('membership wire', () => {
  it('round-trips an announcement and a goodbye', () => {
    assert.deepEqual(read(encodeAnnouncement(base)), { kind: 'announce', announcement: base });
    assert.deepEqual(read(encodeGoodbye('abc')), { kind: 'goodbye', instance: 'abc' });
    const failing = { ...base, failing: ['printer'] };
    assert.deepEqual(read(encodeAnnouncement(failing)), { kind: 'announce', announcement: failing });
  });

  it('refuses announcements with missing or mistyped fields, and clamps Every', () => {
    const msg = { Command: 'Announce', Instance: 'x', Rev: 1, Every: 1000, Members: 2, Params: {} };
    assert.equal(readPresence({ ...msg, Instance: 7 }), undefined);
    assert.equal(readPresence({ ...msg, Instance: 'x'.repeat(65) }), undefined);
    assert.equal(readPresence({ ...msg, Rev: 'one' }), undefined);
    assert.equal(readPresence({ ...msg, Every: null }), undefined);
    assert.equal(readPresence({ ...msg, Members: 1.5 }), undefined);
    assert.equal(readPresence({ ...msg, Params: [] }), undefined);
    assert.equal(readPresence({ Command: 'Goodbye' }), undefined);
    const clamped = readPresence({ ...msg, Every: 1e12, Refs: [{ Address: 'not-ip' }, 5], Services: [{ id: 3 }] });
    assert.ok(clamped?.kind === 'announce');
    assert.equal(clamped.announcement.every, 600_000);
    assert.deepEqual(clamped.announcement.refs, []);
    assert.deepEqual(clamped.announcement.services, []);
  });

  it('tells a membership query from a plain Marco, and ignores other commands', () => {
    assert.deepEqual(readPresence({ Command: 'Marco', Membership: true }), { kind: 'marco', membership: true });
    assert.deepEqual(readPresence({ Command: 'Discover' }), { kind: 'marco', membership: false });
    assert.equal(readPresence({ Command: 'Services' }), undefined);
  });

  it('drops the refs, then the services, to fit one datagram', () => {
    const refs = Array.from({ length: 100 }, (_, i) => ({ address: `192.0.2.${i}`, params: { hostname: `node-${i}` } }));
    const withRefs = read(encodeAnnouncement({ ...base, refs }));
    assert.ok(withRefs?.kind === 'announce');
    assert.equal(withRefs.announcement.refs.length, 100, 'addresses kept without params');
    assert.deepEqual(withRefs.announcement.refs[0]?.params, {});
    const services = Array.from({ length: 400 }, (_, i) => ({ id: `service-${i}`, params: { port: i } }));
    const bytes = encodeAnnouncement({ ...base, services, refs });
    assert.ok(bytes.byteLength <= 4096);
    const cut = read(bytes);
    assert.ok(cut?.kind === 'announce');
    assert.equal(cut.announcement.services, undefined, 'services unknown, marked Truncated');
  });

  it('reads the Members hint of a Polo reply only when it is a sane count', () => {
    assert.equal(membersHint({ Command: 'Polo', Members: 20 }), 20);
    for (const bad of [0, -1, 2.5, '20', 1e9]) assert.equal(membersHint({ Command: 'Polo', Members: bad }), undefined);
  });

  it('keeps the grid at rest under 20 announcements per second, and a 50-node grid expires a dead node within 10 s', () => {
    for (const n of [1, 5, 18, 20, 50, 100, 1000]) {
      const meanInterval = heartbeatInterval(n, DEFAULT_TIMING) * (1 - DEFAULT_TIMING.jitter / 2);
      assert.ok(n / (meanInterval / 1000) <= 20.001, `${n} nodes`);
    }
    assert.ok(expiryAfter(heartbeatInterval(50, DEFAULT_TIMING), DEFAULT_TIMING) + DEFAULT_TIMING.sweepMs < 10_000);
  });
});
