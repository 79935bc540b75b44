/**
 * marcod shares its capacity per client: a local user parking long requests gets "busy" past
 * their share, while another user's request is served at once. Real marcod (as root, as a test
 * stand-in for its service user), real Unix users sending from their own sockets (setpriv), the
 * kernel telling marcod whose socket each request came from. LAN: a polod on h1, marcod on h2.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { requireNetns, netnsAvailable } from '../helpers/netns.js';
import { GROUP_112, lanFixture, logIs, startPolod } from '../helpers/lan-daemons.js';
import { json, rawRequests, startMarcod } from '../helpers/marcod-lan.js';
import { asUser, createUsers, removeUsers, userNames, type TestUser } from '../helpers/unix-users.js';
import { waitFor } from '../helpers/wait.js';

const fixture = lanFixture({ name: 'i11m', hosts: 2, subnet: 112 });
const H1 = { Address: '10.201.112.1', Params: { hostname: 'h1' } };
const NAMES = userNames('mpm', 2);
const SHARE = 8;

after(async () => {
  await removeUsers(NAMES);
});

test('one user parking long requests gets busy past their share; another user is served meanwhile', async (t) => {
  if (!requireNetns(t) || !netnsAvailable().ok) return;
  const [hog, other] = (await createUsers(NAMES)) as [TestUser, TestUser];
  const lan = await fixture.lan();
  await startPolod(fixture, lan.host(1), { groups: [GROUP_112] });
  // Room for 12 requests in all: without shares, the hog alone would fill it.
  const marcod = await startMarcod(fixture, lan.host(2), { args: ['--max-requests', '12', '--max-requests-per-client', String(SHARE)] });
  // Nobody offers this service: each request stays in flight until its deadline (`fresh`: a
  // network query every time, never an instant answer from marcod's warm view).
  const parked = json({ Command: 'Request-For', Params: 'nobody-offers-this', timeout: 4000, fresh: true });
  const hogging = rawRequests(marcod.host, Array.from({ length: 20 }, () => parked), { barrier: false, prefix: asUser(hog) });
  await waitFor(() => marcod.logs(logIs('request received', { request: 'Request-For "nobody-offers-this"' })).length >= SHARE, {
    what: "the hog's share of requests to be in flight",
  });
  // Each from its own socket, yet one client: the kernel names the same uid for all of them.
  const [served] = await rawRequests(marcod.host, [json({ Command: 'Marco', max_nodes: 1, timeout: 10_000 })], { prefix: asUser(other) });
  assert.deepEqual(served?.reply, [H1]);
  const replies = (await hogging).map((o) => JSON.stringify(o.reply));
  assert.equal(replies.filter((r) => r === '{"Error":"busy"}').length, 20 - SHARE, replies.join(' '));
  assert.equal(replies.filter((r) => r === '[]').length, SHARE, replies.join(' '));
});
