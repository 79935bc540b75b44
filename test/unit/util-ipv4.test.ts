/** The hand-written IPv4 check (src/util/ipv4.ts) agrees with node:net's on every input tried. */
import assert from 'node:assert/strict';
import { isIPv4 as netIsIPv4, isIPv6 as netIsIPv6 } from 'node:net';
import { test } from 'node:test';
import fc from 'fast-check';
import { isIPv4, isIPv6 } from '../../src/util/ipv4.js';

test('isIPv4 agrees with net.isIPv4 on edge cases', () => {
  for (const text of ['1.2.3.4', '0.0.0.0', '255.255.255.255', '256.1.1.1', '01.2.3.4', '1.2.3', '1.2.3.4.5', '', '1..3.4', ' 1.2.3.4', '1.2.3.4\n', '+1.2.3.4', '1e2.1.1.1', '0x1.1.1.1', '١.1.1.1']) {
    assert.equal(isIPv4(text), netIsIPv4(text), JSON.stringify(text));
  }
});

test('isIPv4 agrees with net.isIPv4 on generated dotted strings', () => {
  const octet = fc.oneof(fc.integer({ min: 0, max: 999 }).map(String), fc.string({ maxLength: 4 }));
  fc.assert(fc.property(fc.array(octet, { minLength: 1, maxLength: 6 }), (parts) => isIPv4(parts.join('.')) === netIsIPv4(parts.join('.'))));
});

test('isIPv6 is net.isIPv6', () => {
  for (const text of ['::1', 'fe80::1', '1.2.3.4', 'web', '::ffff:1.2.3.4', ':']) assert.equal(isIPv6(text), netIsIPv6(text), text);
});
