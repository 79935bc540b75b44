/**
 * The Providers hint (docs/protocol.md §8.4): how many nodes of a link offer a service, as a
 * polod's view counts them from announcements (MembershipView.providersOn), and how the hint is
 * written into and read from an OK reply (src/membership/wire.ts).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sourceLinks } from '../../src/membership/links.js';
import { MembershipView } from '../../src/membership/view.js';
import { FAST_TIMING } from '../../src/membership/timing.js';
import { providersHint, withProvidersHint, type Announcement } from '../../src/membership/wire.js';
import { encodeReply } from '../../src/protocol/codec.js';
import type { JsonObject } from '../../src/protocol/json.js';
import type { NetInterface } from '../../src/transport/interfaces.js';

const interfaces: NetInterface[] = [
  { name: 'eth0', ipv4: [{ iface: 'eth0', address: '10.0.1.5', prefixLength: 24 }], ipv6: ['fe80::5'] },
  { name: 'eth1', ipv4: [{ iface: 'eth1', address: '10.0.2.5', prefixLength: 24 }], ipv6: [] },
];

let instances = 0;
const announcing = (ids: string[] | undefined, failing?: string[]): Announcement => ({
  instance: `n${++instances}`,
  rev: 1,
  every: 1000,
  members: 2,
  params: {},
  services: ids?.map((id) => ({ id, params: {} })),
  refs: [],
  ...(failing && { failing }),
});

const polodView = (): MembershipView => new MembershipView({ timing: FAST_TIMING, selfInstance: 'self', linkOf: sourceLinks(interfaces) });

describe('MembershipView.providersOn', () => {
  it('counts the members of the link that list the service, and the owner', () => {
    const view = polodView();
    view.hearAnnouncement('10.0.1.1', announcing(['web', 'ftp']));
    view.hearAnnouncement('10.0.1.2', announcing(['web']));
    view.hearAnnouncement('10.0.1.3', announcing([]));
    // On another LAN of the host: not reached by a query over eth0.
    view.hearAnnouncement('10.0.2.1', announcing(['web']));
    assert.equal(view.providersOn('eth0', 'web'), 3);
    assert.equal(view.providersOn('eth0', 'ftp'), 2);
    assert.equal(view.providersOn('eth0', 'printer'), 1, 'the owner alone');
    assert.equal(view.providersOn('eth1', 'web'), 2);
    // A routed asker (no link of ours) reaches every IPv4 member.
    assert.equal(view.providersOn('', 'web'), 4);
  });

  it('leaves out a service held back by a failing health check', () => {
    const view = polodView();
    // A withdrawn service is named under Failing, not listed (docs/protocol.md §8.2).
    view.hearAnnouncement('10.0.1.1', announcing(['web'], ['db']));
    assert.equal(view.providersOn('eth0', 'db'), 1);
    assert.equal(view.providersOn('eth0', 'web'), 2);
  });

  it('knows nothing on a link where a member may offer the service unseen', () => {
    const view = polodView();
    view.hearAnnouncement('10.0.1.1', announcing(['web']));
    // One of ours whose list did not fit its announcement.
    view.hearAnnouncement('10.0.2.1', announcing(undefined));
    assert.equal(view.providersOn('eth0', 'web'), 2);
    assert.equal(view.providersOn('eth1', 'web'), undefined);
    // A reference node answers Request-For but never says what it offers.
    view.hearPolo('10.0.1.9', { hostname: 'reference' }, undefined);
    assert.equal(view.providersOn('eth0', 'web'), undefined);
    // One of ours heard only by its Polo reply so far (its services unread).
    const other = polodView();
    other.hearPolo('10.0.1.7', {}, 3);
    assert.equal(other.providersOn('eth0', 'web'), undefined);
  });

  it('counts each family of a dual-stack link apart, and follows changes of the members', () => {
    const view = polodView();
    view.hearAnnouncement('10.0.1.1', announcing(['web']));
    view.hearAnnouncement('fe80::1%eth0', announcing(['web']));
    view.hearAnnouncement('fe80::2%eth0', announcing(['web']));
    assert.equal(view.providersOn('eth0', 'web'), 2);
    assert.equal(view.providersOn('%eth0', 'web'), 3);
    // A new revision without the service, then a goodbye: the counts follow at once.
    const next = { ...announcing(['ftp']), instance: 'moved' };
    view.hearAnnouncement('fe80::2%eth0', next);
    assert.equal(view.providersOn('%eth0', 'web'), 2);
    view.hearGoodbye('fe80::2%eth0', 'moved');
    assert.equal(view.providersOn('%eth0', 'ftp'), 1);
  });
});

describe('the Providers hint on the wire', () => {
  it('is the last key of the OK reply, and only a count from 1 is read', () => {
    const plain = encodeReply({ command: 'OK', params: { port: 8080, path: '/a' } });
    const hinted = new TextDecoder().decode(withProvidersHint(plain, 12));
    assert.equal(hinted, '{"Command":"OK","Params":{"port":8080,"path":"/a"},"Providers":12}');
    assert.equal(providersHint(JSON.parse(hinted) as JsonObject), 12);
    for (const bad of [0, -1, 1.5, '3', null, 1e9]) assert.equal(providersHint({ Command: 'OK', Providers: bad }), undefined, String(bad));
  });
});
