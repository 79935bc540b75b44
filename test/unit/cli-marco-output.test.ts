/**
 * What `marco` prints and returns, run through main() over a memory network with fake polods
 * (real processes across namespaces are tested elsewhere). A run that must hear nodes ends at
 * --max-nodes, never at a deadline the fakes would have to beat; a node a filter must drop is
 * shown absent by a fake answering last (FakeOptions.last) that the run ends with. Short
 * deadlines remain only where nothing can answer.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ExitCode } from '../../src/cli/common.js';
import { main } from '../../src/cli/marco.js';
import { MemoryNetwork } from '../../src/transport/memory.js';
import { FakePolo, holdEventLoop, offering, poloNode, silent } from '../helpers/fake-polod.js';
import { runMain, type CliRun } from '../helpers/cli-io.js';

holdEventLoop();

const GUARD = { timeout: 20_000 };
/** A --timeout no test may reach: a run that returns proves it ended at --max-nodes. */
const NEVER = '600000';

async function network(): Promise<MemoryNetwork> {
  const net = new MemoryNetwork();
  await FakePolo.start(net, '10.0.0.2', poloNode({ hostname: 'polo-a' }));
  await FakePolo.start(net, '10.0.0.13', poloNode({ hostname: 'polo-b', rack: 4, tags: ['x', 'y'] }));
  await FakePolo.start(net, '10.0.0.3', offering({ web: { port: 8080, path: '/index' } }));
  await FakePolo.start(net, '10.0.0.4', offering({ web: { port: 9090, motd: 'hello world', id: '42' } }));
  return net;
}

function run(net: MemoryNetwork, ...argv: string[]): Promise<CliRun> {
  return runMain((io) => main(argv, io, { transport: net.host('10.0.0.1'), lookup: async () => '10.0.0.7' }));
}

describe('marco discover / request-for', () => {
  test('prints an aligned table of address and key=value params, exit 0', GUARD, async () => {
    const net = await network();
    const { code, stdout, stderr } = await run(net, 'discover', '--max-nodes', '2', '--timeout', NEVER);
    assert.equal(code, ExitCode.OK);
    assert.equal(stderr, '');
    const lines = stdout.trimEnd().split('\n');
    assert.equal(lines[0], 'ADDRESS    PARAMS');
    assert.deepEqual(lines.slice(1).sort(), [
      '10.0.0.13  hostname=polo-b rack=4 tags=["x","y"]',
      '10.0.0.2   hostname=polo-a',
    ]);
  });

  test('--json prints one JSON array of {address, params}', GUARD, async () => {
    const net = await network();
    const { code, stdout } = await run(net, 'request-for', 'web', '--json', '--max-nodes', '2', '--timeout', NEVER);
    assert.equal(code, ExitCode.OK);
    const doc = JSON.parse(stdout) as Array<{ address: string }>;
    assert.deepEqual(
      doc.sort((a, b) => a.address.localeCompare(b.address)),
      [
        { address: '10.0.0.3', params: { port: 8080, path: '/index' } },
        { address: '10.0.0.4', params: { port: 9090, motd: 'hello world', id: '42' } },
      ],
    );
  });

  test('strings that could be misread are shown quoted', GUARD, async () => {
    const net = await network();
    const { stdout } = await run(net, 'request-for', 'web', '--param', 'port=9090', '--timeout', NEVER, '--max-nodes', '1');
    assert.equal(stdout, 'ADDRESS   PARAMS\n10.0.0.4  port=9090 motd="hello world" id="42"\n');
  });

  test('--param values are JSON when they parse (8080 is a number), else strings', GUARD, async () => {
    const net = await network();
    // Two more web nodes answering last, one with the number 8080 and one with the strings
    // "8080" and "42": each run ends with the one it matches, after every node it had to drop.
    const numbers = { port: 8080, path: '/index', n: 5 };
    const strings = { port: '8080', id: '42' };
    await FakePolo.start(net, '10.0.0.5', offering({ web: numbers }), { last: true });
    await FakePolo.start(net, '10.0.0.6', offering({ web: strings }), { last: true });
    const byNumber = await run(net, 'request-for', 'web', '--param', 'port=8080', '--param', 'path=/index', '--json', '--max-nodes', '2', '--timeout', NEVER);
    assert.deepEqual(JSON.parse(byNumber.stdout), [
      { address: '10.0.0.3', params: { port: 8080, path: '/index' } },
      { address: '10.0.0.5', params: numbers },
    ]);
    const byString = await run(net, 'request-for', 'web', '--param', 'port="8080"', '--json', '--max-nodes', '1', '--timeout', NEVER);
    assert.deepEqual(JSON.parse(byString.stdout), [{ address: '10.0.0.6', params: strings }], 'the number 8080 is not "8080"');
    const quotedId = await run(net, 'request-for', 'web', '--param', 'id="42"', '--json', '--max-nodes', '2', '--timeout', NEVER);
    assert.deepEqual(
      (JSON.parse(quotedId.stdout) as Array<{ address: string }>).map((n) => n.address),
      ['10.0.0.4', '10.0.0.6'],
    );
  });

  test('--exclude removes nodes by address', GUARD, async () => {
    const net = await network();
    // Answers last: cut at the second node, the run has heard 10.0.0.13 first.
    await FakePolo.start(net, '10.0.0.5', poloNode({ hostname: 'polo-c' }), { last: true });
    const { stdout } = await run(net, 'discover', '--exclude', '10.0.0.13', '--max-nodes', '2', '--timeout', NEVER, '--json');
    assert.deepEqual(JSON.parse(stdout), [
      { address: '10.0.0.2', params: { hostname: 'polo-a' } },
      { address: '10.0.0.5', params: { hostname: 'polo-c' } },
    ]);
  });

  test('nobody answering exits 1 with a note on stderr (table) or [] (json)', async () => {
    const net = new MemoryNetwork();
    const table = await run(net, 'discover', '--timeout', '20');
    assert.equal(table.code, ExitCode.NOT_FOUND);
    assert.equal(table.stdout, '');
    assert.equal(table.stderr, 'marco: no node answered within 20 ms\n');
    const json = await run(net, 'request-for', 'web', '--timeout', '20', '--json');
    assert.equal(json.code, ExitCode.NOT_FOUND);
    assert.equal(json.stdout, '[]\n');
  });

  test('control and bidi characters from the network are escaped in the table', GUARD, async () => {
    const net = new MemoryNetwork();
    await FakePolo.start(net, '10.0.0.2', poloNode({ 'evil\u001b[2J': 'a\u009bb\u202ec', ok: 'fine' }));
    const { stdout } = await run(net, 'discover', '--max-nodes', '1', '--timeout', NEVER);
    assert.equal(stdout, 'ADDRESS   PARAMS\n10.0.0.2  "evil\\u001b[2J"="a\\u009bb\\u202ec" ok=fine\n');
  });
});

describe('marco services', () => {
  const list = [
    { id: 'web', params: { port: 8080 } },
    { id: 'alice:printer', params: {} },
  ];

  async function node(answer: Parameters<typeof FakePolo.start>[2]): Promise<MemoryNetwork> {
    const net = new MemoryNetwork();
    await FakePolo.start(net, '10.0.0.7', answer, { unicast: true });
    return net;
  }

  test('prints an id/params table', GUARD, async () => {
    const net = await node(() => ({ Command: 'OK', Services: list }));
    const { code, stdout } = await run(net, 'services', '10.0.0.7', '--timeout', NEVER);
    assert.equal(code, ExitCode.OK);
    assert.equal(stdout, 'ID             PARAMS\nweb            port=8080\nalice:printer  -\n');
  });

  test('--json prints {address, services}; a host name is resolved first', GUARD, async () => {
    const net = await node(() => ({ Command: 'OK', Params: list }));
    const { code, stdout } = await run(net, 'services', 'polo-c.lan', '--json', '--timeout', NEVER);
    assert.equal(code, ExitCode.OK);
    assert.deepEqual(JSON.parse(stdout), { address: '10.0.0.7', services: list });
  });

  test('a truncated list is flagged', GUARD, async () => {
    const net = await node(() => ({ Command: 'OK', Services: list, Truncated: true }));
    const json = await run(net, 'services', '10.0.0.7', '--json', '--timeout', NEVER);
    assert.deepEqual(JSON.parse(json.stdout), { address: '10.0.0.7', services: list, truncated: true });
    const table = await run(net, 'services', '10.0.0.7', '--timeout', NEVER);
    assert.match(table.stderr, /^marco: 10\.0\.0\.7 cut its list to fit one datagram/);
  });

  test('a node offering nothing exits 0 with a note', GUARD, async () => {
    const net = await node(() => ({ Command: 'OK', Services: [] }));
    const { code, stdout, stderr } = await run(net, 'services', '10.0.0.7', '--timeout', NEVER);
    assert.equal(code, ExitCode.OK);
    assert.equal(stdout, '');
    assert.equal(stderr, 'marco: 10.0.0.7 offers no services\n');
  });

  test('no answer exits 1; --json prints null', async () => {
    const net = await node(silent);
    const table = await run(net, 'services', '10.0.0.7', '--timeout', '20');
    assert.equal(table.code, ExitCode.NOT_FOUND);
    assert.equal(table.stderr, 'marco: no answer from 10.0.0.7 within 20 ms\n');
    const json = await run(net, 'services', '10.0.0.7', '--timeout', '20', '--json');
    assert.equal(json.code, ExitCode.NOT_FOUND);
    assert.equal(json.stdout, 'null\n');
  });
});

describe('marco runtime errors', () => {
  test('a socket failure exits 3 with one line and no usage', async () => {
    const net = new MemoryNetwork();
    const host = net.host('10.0.0.1');
    let stderr = '';
    const code = await main(
      ['discover'],
      { stdout: { write: () => true }, stderr: { write: (s: string) => (stderr += s) } },
      {
        transport: {
          bindGroup: (...args) => host.bindGroup(...args),
          bindUnicast: (...args) => host.bindUnicast(...args),
          localAddresses: () => host.localAddresses(),
          openQuerySocket: () => Promise.reject(new Error('EMFILE: too many open files')),
        },
      },
    );
    assert.equal(code, ExitCode.RUNTIME);
    assert.equal(stderr, 'marco: could not open a query socket: EMFILE: too many open files\n');
  });
});
