/**
 * How a `marco` query ends and what it says then, through main() over a memory network: Ctrl-C
 * (the `interrupt` signal the program wires to SIGINT) prints what was found so far; answers
 * that --param or --exclude all left out are told apart from silence; --timeout 0 means no
 * deadline; --version prints package.json's version. The real SIGINT path is in
 * test/integration/marco-ending.test.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { ExitCode } from '../../src/cli/common.js';
import { main, type MarcoCliDeps } from '../../src/cli/marco.js';
import { MemoryNetwork } from '../../src/transport/memory.js';
import { FakePolo, holdEventLoop, poloNode, settle, silent } from '../helpers/fake-polod.js';
import { runMain, type CliRun } from '../helpers/cli-io.js';

holdEventLoop();

const GUARD = { timeout: 20_000 };

function run(net: MemoryNetwork, argv: string[], deps: MarcoCliDeps = {}): Promise<CliRun> {
  return runMain((io) => main(argv, io, { transport: net.host('10.0.0.1'), ...deps }));
}

describe('marco interrupted (Ctrl-C)', () => {
  test('prints the nodes found so far and exits 0', GUARD, async () => {
    const net = new MemoryNetwork();
    const fake = await FakePolo.start(net, '10.0.0.2', silent);
    const interrupt = new AbortController();
    // --timeout 0: no deadline, so only the interrupt can end this query.
    const running = run(net, ['discover', '--timeout', '0'], { interrupt: interrupt.signal });
    await fake.waitForQueries(1);
    await fake.answerQuery(0, { Command: 'Polo', Params: { hostname: 'polo-a' } });
    await settle();
    interrupt.abort();
    const { code, stdout, stderr } = await running;
    assert.equal(code, ExitCode.OK);
    assert.equal(stdout, 'ADDRESS   PARAMS\n10.0.0.2  hostname=polo-a\n');
    assert.equal(stderr, '');
  });

  test('with nothing found it says so and exits 1', GUARD, async () => {
    const net = new MemoryNetwork();
    const fake = await FakePolo.start(net, '10.0.0.2', silent);
    const interrupt = new AbortController();
    const running = run(net, ['request-for', 'web', '--timeout', '0', '--json'], { interrupt: interrupt.signal });
    await fake.waitForQueries(1);
    interrupt.abort();
    const { code, stdout, stderr } = await running;
    assert.equal(code, ExitCode.NOT_FOUND);
    assert.equal(stdout, '[]\n');
    assert.equal(stderr, 'marco: no node answered before Ctrl-C\n');
  });

  test('services: interrupted before the answer exits 1 naming the node', GUARD, async () => {
    const net = new MemoryNetwork();
    const fake = await FakePolo.start(net, '10.0.0.7', silent, { unicast: true });
    const interrupt = new AbortController();
    const running = run(net, ['services', '10.0.0.7', '--timeout', '0'], { interrupt: interrupt.signal });
    await fake.waitForQueries(1);
    interrupt.abort();
    const { code, stderr } = await running;
    assert.equal(code, ExitCode.NOT_FOUND);
    assert.equal(stderr, 'marco: no answer from 10.0.0.7 before Ctrl-C\n');
  });
});

describe('marco when nodes answered but none matched', () => {
  test('--param leaving every answer out is not "no node answered"', GUARD, async () => {
    const net = new MemoryNetwork();
    const fake = await FakePolo.start(net, '10.0.0.2', poloNode({ hostname: 'polo-a', rack: 1 }));
    const interrupt = new AbortController();
    const running = run(net, ['discover', '--param', 'rack=2', '--timeout', '0'], { interrupt: interrupt.signal });
    await fake.waitForQueries(1);
    await settle();
    interrupt.abort();
    const { code, stderr } = await running;
    assert.equal(code, ExitCode.NOT_FOUND);
    assert.equal(stderr, 'marco: 1 answer before Ctrl-C, none matched (left out: 1 by --param)\n');
  });

  test('--exclude leaving every answer out is counted too', GUARD, async () => {
    const net = new MemoryNetwork();
    const a = await FakePolo.start(net, '10.0.0.2', poloNode({ hostname: 'polo-a' }));
    const b = await FakePolo.start(net, '10.0.0.3', poloNode({ hostname: 'polo-b', rack: 1 }));
    const interrupt = new AbortController();
    const running = run(net, ['discover', '--exclude', '10.0.0.2', '--param', 'rack=2', '--timeout', '0'], {
      interrupt: interrupt.signal,
    });
    await Promise.all([a.waitForQueries(1), b.waitForQueries(1)]);
    await settle();
    interrupt.abort();
    const { stderr } = await running;
    assert.equal(stderr, 'marco: 2 answers before Ctrl-C, none matched (left out: 1 by --param, 1 by --exclude)\n');
  });
});

describe('marco --timeout 0 and --version', () => {
  test('--timeout 0 is no deadline: the query waits for --max-nodes', GUARD, async () => {
    const net = new MemoryNetwork();
    const fake = await FakePolo.start(net, '10.0.0.2', silent);
    const running = run(net, ['discover', '--timeout', '0', '--max-nodes', '1']);
    await fake.waitForQueries(1);
    // An answer sent after the query started is still taken: a 0 ms deadline would have ended it.
    await settle();
    await fake.answerQuery(0, { Command: 'Polo', Params: { hostname: 'late' } });
    const { code, stdout } = await running;
    assert.equal(code, ExitCode.OK);
    assert.match(stdout, /10\.0\.0\.2 +hostname=late/);
  });

  test('--version and -V print the version of package.json', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const { code, stdout } = await run(new MemoryNetwork(), [flag]);
      assert.equal(code, ExitCode.OK);
      assert.equal(stdout, `${pkg.version}\n`);
    }
  });
});
