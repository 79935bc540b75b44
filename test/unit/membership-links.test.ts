/**
 * Link-by-link counting of live discovery (src/membership/links.ts, MembershipView.sizeOn and
 * complete): a host on two LANs, or on one LAN over IPv4 and IPv6, counts each link apart, so
 * a Members hint or an announcement carries the count of the link it goes out on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ownAddresses, sourceLinks, withZone } from '../../src/membership/links.js';
import { MembershipView } from '../../src/membership/view.js';
import { FAST_TIMING } from '../../src/membership/timing.js';
import type { Announcement } from '../../src/membership/wire.js';
import type { NetInterface } from '../../src/transport/interfaces.js';

const interfaces: NetInterface[] = [
  { name: 'eth0', ipv4: [{ iface: 'eth0', address: '10.0.1.5', prefixLength: 24 }], ipv6: ['fe80::5'] },
  { name: 'eth1', ipv4: [{ iface: 'eth1', address: '10.0.2.5', prefixLength: 24 }], ipv6: [] },
];

const announcement = (instance: string, members: number): Announcement => ({
  instance,
  rev: 1,
  every: 1000,
  members,
  params: {},
  services: [],
  refs: [],
});

test('sources map to links: IPv4 by interface network, IPv6 by zone, routed IPv4 to no link', () => {
  const linkOf = sourceLinks(interfaces);
  assert.equal(linkOf('10.0.1.9'), 'eth0');
  assert.equal(linkOf('10.0.2.9'), 'eth1');
  assert.equal(linkOf('192.0.2.1'), '');
  assert.equal(linkOf('fe80::9%eth0'), '%eth0');
  assert.equal(linkOf('fd00::9'), '%');
  assert.equal(withZone('fe80::9', 'eth0'), 'fe80::9%eth0');
  assert.equal(withZone('fe80::9%eth1', 'eth0'), 'fe80::9%eth1');
  assert.equal(withZone('fd00::9', 'eth0'), 'fd00::9');
  assert.deepEqual(ownAddresses(['10.0.1.5'], interfaces), ['10.0.1.5', 'fe80::5', 'fe80::5%eth0']);
});

test("a polod's view counts each link and family apart; routed nodes count on every IPv4 link", () => {
  const view = new MembershipView({ timing: FAST_TIMING, selfInstance: 'self', linkOf: sourceLinks(interfaces) });
  view.hearAnnouncement('10.0.1.1', announcement('a', 2));
  view.hearAnnouncement('10.0.1.2', announcement('b', 3));
  // The same dual-stack node over IPv6, and a node of the other LAN.
  view.hearAnnouncement('fe80::1%eth0', announcement('a', 2));
  view.hearAnnouncement('10.0.2.1', announcement('c', 2));
  assert.equal(view.size, 5);
  assert.equal(view.sizeOn('eth0'), 3);
  assert.equal(view.sizeOn('%eth0'), 2);
  assert.equal(view.sizeOn('eth1'), 2);
  assert.equal(view.sizeOn(''), 4, 'an asker on no link: every IPv4 node');
  assert.equal(view.nodes, 4, 'the dual-stack node is one node');
  view.hearAnnouncement('192.0.2.7', announcement('r', 1));
  assert.deepEqual([view.sizeOn('eth0'), view.sizeOn('eth1'), view.sizeOn('%eth0')], [4, 3, 2]);
  view.hearGoodbye('10.0.1.2', 'b');
  assert.equal(view.sizeOn('eth0'), 3, 'counts follow the view');
});

test("a watcher's view is complete link by link", () => {
  const view = new MembershipView({ timing: FAST_TIMING, linkOf: sourceLinks(interfaces) });
  view.hearAnnouncement('10.0.1.1', announcement('a', 2));
  view.hearAnnouncement('10.0.2.1', announcement('c', 1));
  // 10.0.1.1 counts two nodes on eth0; the view holds one there (two in all).
  assert.equal(view.complete, false, 'a node of eth0 is missing, whatever eth1 holds');
  view.hearAnnouncement('10.0.1.2', announcement('b', 2));
  assert.equal(view.complete, true);
  // Without links, the old rule: the largest count against the whole view.
  const flat = new MembershipView({ timing: FAST_TIMING });
  flat.hearAnnouncement('10.0.1.1', announcement('a', 2));
  flat.hearAnnouncement('10.0.2.1', announcement('c', 1));
  assert.equal(flat.complete, true);
});
