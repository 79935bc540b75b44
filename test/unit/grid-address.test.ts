/**
 * IPv6 grids (src/protocol/address.ts) and where a query goes (src/discovery/targets.ts): the
 * twin mapping in both directions, canonical spellings, and one datagram per interface, IPv4
 * where the link has it and the IPv6 twin where it has only IPv6.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  canonicalGroup,
  expandIPv6,
  formatIPv6,
  gridOf,
  ipv4OfTwin,
  ipv6Twin,
  isMulticastGroup,
  isMulticastIPv6,
} from '../../src/protocol/address.js';
import { groupTargets, interfaceTargets, linkResolver } from '../../src/discovery/targets.js';
import type { NetInterface } from '../../src/transport/interfaces.js';

describe('IPv6 grid addresses', () => {
  it('maps an IPv4 group to its twin and back', () => {
    assert.equal(ipv6Twin('224.0.0.112'), 'ff02::224:0:0:112');
    assert.equal(ipv6Twin('239.255.0.1'), 'ff02::239:255:0:1');
    assert.equal(ipv4OfTwin('ff02::224:0:0:112'), '224.0.0.112');
    assert.equal(ipv4OfTwin('FF02:0:0:0:239:255:0:1'), '239.255.0.1');
  });
  it('finds no twin in other IPv6 groups', () => {
    for (const g of ['ff02::1', 'ff02::abcd:1', 'ff05::224:0:0:112', 'ff02::224:0:0:256', 'ff02::10:0:0:1']) assert.equal(ipv4OfTwin(g), undefined, g);
  });
  it('spells each grid one way', () => {
    assert.equal(canonicalGroup('ff02:0::224:0:0:112'), '224.0.0.112');
    assert.equal(canonicalGroup('FF02:0:0:0:0:0:0:00FB'), 'ff02::fb');
    assert.equal(canonicalGroup('224.0.0.113'), '224.0.0.113');
  });
  it('reads a group as the grid it names, and anything else as no grid', () => {
    assert.equal(gridOf('FF02::224:0:0:112'), '224.0.0.112');
    assert.equal(gridOf('ff02:0::00fb'), 'ff02::fb');
    assert.equal(gridOf('239.1.2.3'), '239.1.2.3');
    for (const v of ['10.0.0.1', 'fe80::1', '224.0.0.112 ', '', 'ff02::1%eth0', 224, null, undefined, ['224.0.0.112']]) assert.equal(gridOf(v), undefined, String(v));
  });
  it('expands and formats IPv6 as RFC 5952 does', () => {
    assert.deepEqual(expandIPv6('::ffff:1.2.3.4'), [0, 0, 0, 0, 0, 0xffff, 0x102, 0x304]);
    assert.equal(expandIPv6('ff02::1%eth0'), undefined);
    assert.equal(formatIPv6([1, 0, 0, 2, 0, 0, 0, 3]), '1:0:0:2::3');
    assert.equal(formatIPv6([1, 0, 2, 3, 4, 5, 6, 7]), '1:0:2:3:4:5:6:7');
  });
  it('knows multicast groups of both families', () => {
    assert.ok(isMulticastIPv6('ff02::1') && isMulticastGroup('ff0e::1') && isMulticastGroup('239.0.0.1'));
    assert.ok(!isMulticastGroup('fe80::1') && !isMulticastGroup('::1') && !isMulticastGroup('10.0.0.1'));
  });
});

describe('groupTargets', () => {
  const dual: NetInterface = { name: 'eth0', ipv4: [{ iface: 'eth0', address: '10.0.0.5', prefixLength: 24 }], ipv6: ['fe80::5'] };
  const v6only: NetInterface = { name: 'eth1', ipv4: [], ipv6: ['fe80::6'] };
  const v4only: NetInterface = { name: 'eth2', ipv4: [{ iface: 'eth2', address: '10.1.0.5', prefixLength: 16 }], ipv6: [] };

  it('asks an IPv4 grid over IPv4 where a link has it, over its twin elsewhere', () => {
    assert.deepEqual(groupTargets('224.0.0.112', [dual, v6only, v4only]), [
      { address: '224.0.0.112', via: '10.0.0.5' },
      { address: 'ff02::224:0:0:112%eth1', via: '::%eth1' },
      { address: '224.0.0.112', via: '10.1.0.5' },
    ]);
  });
  it('asks an IPv6 grid on every link with IPv6', () => {
    assert.deepEqual(groupTargets('ff02::abcd:1', [dual, v6only, v4only]), [
      { address: 'ff02::abcd:1%eth0', via: '::%eth0' },
      { address: 'ff02::abcd:1%eth1', via: '::%eth1' },
    ]);
  });
  it("leaves the system's choice when there is no interface", () => {
    assert.equal(groupTargets('224.0.0.112', []), undefined);
    assert.equal(groupTargets('224.0.0.112', undefined), undefined);
  });
  it('scopes an IPv6 grid to the interface holding --interface', () => {
    assert.deepEqual(interfaceTargets('ff02::abcd:1', '10.1.0.5', [dual, v4only]), [{ address: 'ff02::abcd:1%eth2', via: '::%eth2' }]);
    assert.equal(interfaceTargets('ff02::abcd:1', '10.9.9.9', [dual]), undefined);
  });
});

describe('linkResolver', () => {
  it('places a responder on the interface whose network holds it, a link-local one by its zone', () => {
    const linkOf = linkResolver([
      { name: 'eth0', ipv4: [{ iface: 'eth0', address: '10.0.0.5', prefixLength: 24 }], ipv6: [] },
      { name: 'eth1', ipv4: [{ iface: 'eth1', address: '10.1.0.5', prefixLength: 16 }], ipv6: ['fe80::1'] },
    ]);
    assert.equal(linkOf('10.0.0.9'), 'eth0');
    assert.equal(linkOf('10.1.200.9'), 'eth1');
    assert.equal(linkOf('fe80::9%eth1'), 'eth1');
    assert.equal(linkOf('192.0.2.1'), '');
  });
});
