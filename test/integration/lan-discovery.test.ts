/**
 * Discovery across hosts of a namespace LAN: three polods (h1..h3) and the marco command on a
 * fourth host (h4). Discover finds exactly the three with their node params, and --max-nodes,
 * --exclude and --param narrow the answer; request-for returns each host's own params of the
 * service; a polod killed with SIGKILL is gone from the next answer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requireNetns } from '../helpers/netns.js';
import { lanFixture, marcoNodes, startPolod, type JsonNode, type Polod } from '../helpers/lan-daemons.js';

const fixture = lanFixture({ name: 'disc', hosts: 4, subnet: 31 });
const addr = (i: number): string => `10.201.31.${i}`;

/** Each host's params of the `web` service, and its node params. */
const WEB: Record<number, Record<string, unknown>> = {
  1: { port: 8080, path: '/index' },
  2: { port: 9090 },
  3: { port: 8080, path: '/alt' },
};
const NODE_PARAMS: Record<number, Record<string, unknown>> = {
  1: { hostname: 'h1' },
  2: { role: 'db', hostname: 'h2' },
  3: { hostname: 'h3' },
};

let started: Promise<Polod[]> | undefined;

/** The three polods, started once for the whole file. */
function polods(): Promise<Polod[]> {
  started ??= (async () => {
    const lan = await fixture.lan();
    return Promise.all(
      [1, 2, 3].map((i) =>
        startPolod(fixture, lan.host(i), {
          ...(i === 2 ? { params: { role: 'db' } } : {}),
          services: {
            web: { id: 'web', params: WEB[i] },
            ...(i === 2 ? { only2: { id: 'only-h2', params: { who: 'h2' } } } : {}),
          },
        }),
      ),
    );
  })();
  return started;
}

/** The expected Marco answer of the hosts `which`. */
function nodesOf(which: readonly number[], params: Record<number, Record<string, unknown>> = NODE_PARAMS): JsonNode[] {
  return which.map((i) => ({ address: addr(i), params: params[i] ?? {} }));
}

test('discover from a fourth host finds exactly the three polods, each with its hostname', async (t) => {
  if (!requireNetns(t)) return;
  await polods();
  const client = (await fixture.lan()).host(4);
  // Ends once the three answered; the deadline only bounds a failure.
  const { code, nodes } = await marcoNodes(client, ['discover', '--max-nodes', '3', '--timeout', '10000']);
  assert.equal(code, 0);
  assert.deepEqual(nodes, nodesOf([1, 2, 3]));
});

test('discover --max-nodes 2 returns two of the three', async (t) => {
  if (!requireNetns(t)) return;
  await polods();
  const client = (await fixture.lan()).host(4);
  const { code, nodes } = await marcoNodes(client, ['discover', '--timeout', '3000', '--max-nodes', '2']);
  assert.equal(code, 0);
  assert.equal(nodes.length, 2);
  for (const n of nodes) assert.deepEqual([n], nodesOf([Number(n.address.split('.')[3])]));
  assert.notEqual(nodes[0]?.address, nodes[1]?.address);
});

test('discover --exclude drops that address, --param keeps only the matching nodes', async (t) => {
  if (!requireNetns(t)) return;
  await polods();
  const client = (await fixture.lan()).host(4);
  // These wait out their deadline, so a node that should be dropped has had two seconds to show.
  const [excluded, twoExcluded, byRole, byHost, none] = await Promise.all([
    marcoNodes(client, ['discover', '--timeout', '2000', '--exclude', addr(2)]),
    marcoNodes(client, ['discover', '--timeout', '2000', '--exclude', addr(1), '--exclude', addr(3)]),
    marcoNodes(client, ['discover', '--timeout', '2000', '--param', 'role=db']),
    marcoNodes(client, ['discover', '--timeout', '2000', '--param', 'hostname=h3']),
    marcoNodes(client, ['discover', '--timeout', '2000', '--param', 'role=web']),
  ]);
  assert.equal(excluded.code, 0);
  assert.deepEqual(excluded.nodes, nodesOf([1, 3]));
  assert.deepEqual(twoExcluded.nodes, nodesOf([2]));
  assert.equal(byRole.code, 0);
  assert.deepEqual(byRole.nodes, nodesOf([2]));
  assert.deepEqual(byHost.nodes, nodesOf([3]));
  assert.equal(none.code, 1, 'a filter nobody matches is "nobody answered"');
  assert.deepEqual(none.nodes, []);
});

test('request-for across hosts returns each host its own params of the service', async (t) => {
  if (!requireNetns(t)) return;
  await polods();
  const client = (await fixture.lan()).host(4);
  // All three offer web: that query ends once they answered. The others wait out their
  // deadline, so a node that should not answer has had two seconds to show.
  const [web, web8080, only2, missing] = await Promise.all([
    marcoNodes(client, ['request-for', 'web', '--max-nodes', '3', '--timeout', '10000']),
    marcoNodes(client, ['request-for', 'web', '--timeout', '2000', '--param', 'port=8080']),
    marcoNodes(client, ['request-for', 'only-h2', '--timeout', '2000']),
    marcoNodes(client, ['request-for', 'nosuchservice', '--timeout', '2000']),
  ]);
  assert.equal(web.code, 0);
  assert.deepEqual(web.nodes, nodesOf([1, 2, 3], WEB));
  assert.deepEqual(web8080.nodes, nodesOf([1, 3], WEB));
  assert.deepEqual(only2.nodes, [{ address: addr(2), params: { who: 'h2' } }]);
  assert.equal(missing.code, 1, 'nobody offers it: no reply at all, exit 1');
  assert.deepEqual(missing.nodes, []);
});

test('a polod killed with SIGKILL is missing from the next discover', async (t) => {
  if (!requireNetns(t)) return;
  const [, , h3] = await polods();
  assert.ok(h3);
  const client = (await fixture.lan()).host(4);
  h3.proc.kill('SIGKILL');
  assert.equal((await h3.proc.exited).signal, 'SIGKILL');
  const [found, web] = await Promise.all([
    marcoNodes(client, ['discover', '--timeout', '2000']),
    marcoNodes(client, ['request-for', 'web', '--timeout', '2000']),
  ]);
  assert.equal(found.code, 0);
  assert.deepEqual(found.nodes, nodesOf([1, 2]));
  assert.deepEqual(web.nodes, nodesOf([1, 2], WEB));
});
