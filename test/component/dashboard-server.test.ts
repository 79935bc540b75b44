/**
 * The dashboard's state and web server on a real socket (127.0.0.1, port 0): the page, the JSON
 * snapshot, the Server-Sent Events stream following changes, and the Host check that keeps
 * rebound DNS names out.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { DashboardState, servicesChange, type DashboardSnapshot } from '../../src/dashboard/state.js';
import { serveDashboard } from '../../src/dashboard/server.js';
import type { Member } from '../../src/membership/view.js';

const GROUP = '224.0.0.112';
const member = (address: string, services: Member['services']): Member => ({
  address,
  kind: services === undefined ? 'reference' : 'announcing',
  params: { hostname: `n${address.slice(-1)}` },
  services,
});

function get(port: number, path: string, host = `127.0.0.1:${port}`): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The SSE stream's snapshots, as they arrive. */
function subscribe(port: number): { next(): Promise<DashboardSnapshot>; close(): void } {
  const frames: DashboardSnapshot[] = [];
  const waiters: Array<() => void> = [];
  let buffer = '';
  const req = request({ host: '127.0.0.1', port, path: '/events' }, (res) => {
    assert.equal(res.headers['content-type'], 'text/event-stream');
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = frame.split('\n').find((l) => l.startsWith('data: '));
        if (data !== undefined) frames.push(JSON.parse(data.slice(6)) as DashboardSnapshot);
        for (const w of waiters.splice(0)) w();
      }
    });
  });
  req.on('error', () => undefined);
  req.end();
  return {
    async next() {
      for (;;) {
        const frame = frames.shift();
        if (frame !== undefined) return frame;
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    },
    close: () => req.destroy(),
  };
}

test('the page, /state and /events follow the state; unknown hosts and paths are refused', async (t) => {
  const state = new DashboardState([GROUP]);
  state.memberSeen(GROUP, member('10.0.0.1', [{ id: 'web', params: { port: 80 } }]));
  const server = await serveDashboard(state, '127.0.0.1', 0);
  t.after(() => server.close());

  const page = await get(server.port, '/');
  assert.equal(page.status, 200);
  assert.match(page.type, /text\/html/);
  assert.match(page.body, /new EventSource\("events"\)/);
  assert.doesNotMatch(page.body, /https?:\/\//, 'the page loads nothing from elsewhere');

  const snap = JSON.parse((await get(server.port, '/state')).body) as DashboardSnapshot;
  assert.deepEqual(snap.groups[0]?.nodes.map((n) => [n.address, n.services?.map((s) => s.id)]), [['10.0.0.1', ['web']]]);

  const stream = subscribe(server.port);
  t.after(() => stream.close());
  assert.equal((await stream.next()).groups[0]?.nodes.length, 1);
  // A reference node: no list until a Services query answers; then a node leaves.
  state.memberSeen(GROUP, member('10.0.0.2', undefined));
  let next = await stream.next();
  assert.equal(next.groups[0]?.nodes.find((n) => n.address === '10.0.0.2')?.services, null);
  state.servicesFound(GROUP, '10.0.0.2', [{ id: 'printer', params: {} }]);
  next = await stream.next();
  assert.equal(next.groups[0]?.nodes.find((n) => n.address === '10.0.0.2')?.servicesFrom, 'query');
  state.memberGone(GROUP, '10.0.0.1', 'goodbye');
  next = await stream.next();
  assert.deepEqual(next.groups[0]?.nodes.map((n) => n.address), ['10.0.0.2']);
  assert.deepEqual(next.events.slice(0, 2).map((e) => [e.event, e.address, e.detail]), [
    ['down', '10.0.0.1', 'goodbye'],
    ['services', '10.0.0.2', '+printer'],
  ]);

  assert.equal((await get(server.port, '/', 'dashboard.example.com')).status, 421);
  assert.equal((await get(server.port, '/', `localhost:${server.port}`)).status, 200);
  assert.equal((await get(server.port, '/nope')).status, 404);
});

test('servicesChange words added, removed and changed services', () => {
  assert.equal(servicesChange(null, null), '');
  assert.equal(servicesChange(null, [{ id: 'a', params: {} }]), '+a');
  assert.equal(
    servicesChange([{ id: 'a', params: { p: 1 } }, { id: 'b', params: {} }], [{ id: 'a', params: { p: 2 } }, { id: 'c', params: {} }]),
    '~a +c -b',
  );
});
