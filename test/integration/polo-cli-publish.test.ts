/**
 * The real `polo` command against the real polod, as processes inside a private network
 * namespace: publish a root service with params (the token requested on the way), see it
 * answered by `marco request-for` and listed by `polo list`, unpublish it and see it gone; over
 * the Unix socket and over TLS; polod's refusals exit 1 with its reason; usage errors exit 2.
 *
 * Runs as root, like polod's users. So that the tests never touch the machine's own
 * `~root/.polo/token`, polod and polo run in a private mount namespace where a scratch folder
 * is bind-mounted over root's home: polod writes the token there and polo reads it from there.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { lanFixture, logIs, marcoNodes, POLOD } from '../helpers/lan-daemons.js';
import { requireNetns } from '../helpers/netns.js';
import { runProc, type RunResult } from '../helpers/proc.js';
import { waitFor } from '../helpers/wait.js';

const fixture = lanFixture({ name: 'pcli', hosts: 1, subnet: 110 });
const GROUP = '224.0.0.112';
/** The compiled polo command, next to polod. */
const POLO = path.join(path.dirname(POLOD), 'polo.js');

/** `argv` run with a private mount namespace in which `home` is mounted over root's home. */
function withHome(home: string, argv: readonly string[]): string[] {
  const rootHome = os.userInfo().homedir;
  const script = 'mount --bind "$1" "$2" && shift 2 && exec "$@"';
  return ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', home, rootHome, ...argv];
}

test('polo publishes, lists and unpublishes through the real polod', async (t) => {
  if (!requireNetns(t)) return;
  const lan = await fixture.lan();
  const host = lan.host(1);
  const dir = await fixture.tmpDir();
  const stateDir = path.join(dir, 'state');
  const home = path.join(dir, 'home');
  await mkdir(home, { mode: 0o700 });

  const polod = host.spawn(
    withHome(home, [
      process.execPath,
      POLOD,
      '--state-dir',
      stateDir,
      '--group',
      GROUP,
      '--interface',
      host.address,
      '--hostname',
      't',
      '--log-level',
      'info',
    ]),
  );
  t.after(() => polod.stop());
  await polod.waitForJsonLog(logIs('polod started'), "polod's 'polod started'", 10_000);
  await polod.waitForJsonLog(logIs('publish API listening'), "polod's 'publish API listening'", 10_000);

  const polo = async (args: readonly string[], via: readonly string[] = ['--state-dir', stateDir]): Promise<RunResult> => {
    const res = await host.run(withHome(home, [process.execPath, POLO, ...via, ...args]), { timeoutMs: 15_000 });
    assert.equal(res.timedOut, false, `polo ${args.join(' ')} was killed`);
    return res;
  };
  /** marco request-for ID: returns at the first answer, or after `timeout` ms with none. */
  const requestFor = (id: string, timeout = 1000): ReturnType<typeof marcoNodes> =>
    marcoNodes(host, ['request-for', id, '--interface', host.address, '--timeout', String(timeout), '--max-nodes', '1']);

  await t.test('publish a root service with params: the token is requested, marco finds it', async () => {
    const published = await polo(['publish', 'web', '--root', '--param', 'port=8080', '--param', 'path=/index', '--json']);
    assert.equal(published.code, 0, published.stderr);
    assert.deepEqual(JSON.parse(published.stdout), { id: 'web' });
    // polod wrote the token into (our stand-in for) root's home; polo read it from there.
    assert.ok((await readFile(path.join(home, '.polo', 'token'), 'utf8')).length > 0);
    const found = await requestFor('web', 5000);
    assert.equal(found.code, 0, found.run.stderr);
    assert.deepEqual(found.nodes, [{ address: host.address, params: { port: 8080, path: '/index' } }]);
  });

  await t.test('list shows it, as a table and as JSON', async () => {
    const json = await polo(['list', '--json']);
    assert.equal(json.code, 0, json.stderr);
    const web = (JSON.parse(json.stdout) as Record<string, unknown>[]).find((s) => s['id'] === 'web');
    assert.deepEqual(web, { id: 'web', owner: 'root', groups: [GROUP], permanent: false, params: { port: 8080, path: '/index' }, root: true });
    const table = await polo(['list']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^ID +OWNER +GROUPS +PERMANENT +PARAMS\n/);
    assert.match(table.stdout, /^web +root +224\.0\.0\.112 +no +port=8080 path=\/index$/m);
  });

  await t.test('token: the file exists now', async () => {
    const res = await polo(['token']);
    assert.deepEqual([res.code, res.stdout, res.stderr], [0, 'existed\n', '']);
  });

  await t.test('the TLS endpoint 127.0.0.1:1390 serves the same API', async () => {
    const res = await polo(['list', '--json'], ['--tls']);
    assert.deepEqual([res.code, res.stderr], [0, '']);
    assert.ok((JSON.parse(res.stdout) as { id: string }[]).some((s) => s.id === 'web'));
  });

  await t.test('unpublish: marco no longer finds it, list no longer shows it', async () => {
    const res = await polo(['unpublish', 'web']);
    assert.deepEqual([res.code, res.stdout, res.stderr], [0, '', '']);
    const found = await requestFor('web');
    assert.equal(found.code, 1, 'nobody answers Request-For web any more');
    assert.deepEqual(found.nodes, []);
    const listed = await polo(['list', '--json']);
    assert.deepEqual(JSON.parse(listed.stdout), []);
  });

  await t.test("a group polod does not serve: exit 1 with polod's reason", async () => {
    const res = await polo(['publish', 'web', '--root', '--group', '224.0.0.113']);
    assert.equal(res.code, 1);
    assert.equal(res.stdout, '');
    assert.equal(res.stderr, "polo: Invalid multicast group address '224.0.0.113': The instance is not a member of this group\n");
  });

  await t.test('unpublishing what is not there: exit 1', async () => {
    const res = await polo(['unpublish', 'web']);
    assert.deepEqual([res.code, res.stderr], [1, "polo: Could not find service: no service 'web' is offered\n"]);
  });

  await t.test('a permanent service survives in its file until unpublished with --delete-file', async () => {
    const published = await polo(['publish', 'printer', '--root', '--permanent', '--params', '{"queue":"lp0"}']);
    assert.deepEqual([published.code, published.stdout], [0, 'printer\n'], published.stderr);
    const listed = JSON.parse((await polo(['list', '--json'])).stdout) as { id: string; permanent: boolean }[];
    assert.deepEqual(
      listed.map((s) => [s.id, s.permanent]),
      [['printer', true]],
    );
    const found = await requestFor('printer', 5000);
    assert.deepEqual(found.nodes, [{ address: host.address, params: { queue: 'lp0' } }]);
    const removed = await polo(['unpublish', 'printer', '--delete-file']);
    assert.equal(removed.code, 0, removed.stderr);
    assert.deepEqual(JSON.parse((await polo(['list', '--json'])).stdout), []);
  });

  await t.test('publish --session: the service lives while the command runs, and goes with SIGKILL or Ctrl-C', async () => {
    const session = (id: string) => {
      const proc = host.spawn(withHome(home, [process.execPath, POLO, '--state-dir', stateDir, 'publish', id, '--root', '--session', '--param', 'live=true']));
      t.after(() => proc.stop());
      return proc;
    };
    const offered = async (id: string): Promise<boolean> => (await requestFor(id, 400)).nodes.length === 1;

    const killed = session('sess1');
    await killed.waitForLine((l) => l === 'sess1', 'polo to print the id', 15_000);
    await waitFor(() => offered('sess1'), { what: 'sess1 offered while polo runs', timeoutMs: 10_000 });
    killed.kill('SIGKILL');
    await waitFor(async () => !(await offered('sess1')), { what: 'sess1 withdrawn after SIGKILL', timeoutMs: 10_000 });

    const interrupted = session('sess2');
    await interrupted.waitForLine((l) => l === 'sess2', 'polo to print the id', 15_000);
    assert.equal(await offered('sess2'), true);
    interrupted.kill('SIGINT');
    assert.equal((await interrupted.exited).code, 0, 'Ctrl-C ends the session with exit 0');
    await waitFor(async () => !(await offered('sess2')), { what: 'sess2 withdrawn after Ctrl-C', timeoutMs: 10_000 });
    const listed = JSON.parse((await polo(['list', '--json'])).stdout) as { id: string }[];
    assert.deepEqual(listed.filter((s) => s.id.startsWith('sess')), []);
  });

  await t.test('with polod stopped: exit 3, naming the socket', async () => {
    await polod.stop();
    const res = await polo(['list']);
    assert.deepEqual([res.code, res.stderr], [3, `polo: polod is not running (no socket at ${path.join(stateDir, 'polod.sock')})\n`]);
  });
});

test('polo usage errors exit 2 with one line and the usage', async () => {
  const cases: [string[], RegExp][] = [
    [[], /^polo: missing command\n/],
    [['publish'], /^polo: missing required argument 'ID'\n/],
    [['publish', 'web', '--group', '10.0.0.1'], /^polo: option '--group <addr>' argument '10\.0\.0\.1' is invalid/],
    [['publish', 'web', '--params', 'not json'], /^polo: option '--params <json>' argument 'not json' is invalid/],
    [['list', '--socket', '/x', '--tls'], /cannot be used with option/],
    [['nonsense'], /^polo: unknown command 'nonsense'/],
  ];
  for (const [args, stderr] of cases) {
    const res = await runProc([process.execPath, POLO, ...args]);
    assert.equal(res.code, 2, `polo ${args.join(' ')}: ${res.stderr}`);
    assert.equal(res.stdout, '');
    assert.match(res.stderr, stderr);
    assert.match(res.stderr, /Usage: polo/);
  }
});
