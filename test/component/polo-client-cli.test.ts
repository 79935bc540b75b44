/**
 * The `polo` command's main(), in process, against polod's real publish server and handler on a
 * Unix socket in a temporary folder (with an in-memory service store and fake users, so no root
 * and no network are needed): output, JSON, exit codes and one-line messages.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { alreadyExists, PublishErrors, PublishRefusal } from '../../src/publish/errors.js';
import { PublishHandler, type TokenWriter } from '../../src/publish/handler.js';
import { PublishServer } from '../../src/publish/server.js';
import type { ListedService, PublishPlan, ServiceStore, UnpublishPlan } from '../../src/publish/store.js';
import { main } from '../../src/cli/polo.js';
import { DEFAULT_VERIFY_REGEXP } from '../../src/responder/polo.js';
import { fakeUserDirectory } from '../../src/system/userDb.js';
import { runMain, type CliRun } from '../helpers/cli-io.js';

const G1 = '224.0.0.112';
const G2 = '224.0.0.113';

/** Services in memory, with the store's rules that matter to the CLI (duplicates, not found). */
class MemoryStore implements ServiceStore {
  readonly servedGroups = [G1, G2];
  services: ListedService[] = [];

  async publish(plan: PublishPlan): Promise<void> {
    if (this.services.some((s) => s.id === plan.wireId)) throw new PublishRefusal(alreadyExists(plan.wireId));
    this.services.push({
      id: plan.wireId,
      owner: plan.publisher.name,
      groups: plan.groups.length > 0 ? [...plan.groups] : [...this.servedGroups],
      permanent: plan.permanent,
      params: plan.params,
      root: plan.root,
    });
  }

  async unpublish(plan: UnpublishPlan): Promise<void> {
    const before = this.services.length;
    this.services = this.services.filter((s) => s.id !== plan.wireId);
    if (this.services.length === before) throw new PublishRefusal(PublishErrors.notFound);
  }

  list(): ListedService[] {
    return this.services;
  }
}

let base: string;
let stateDir: string;
let server: PublishServer;
const store = new MemoryStore();
const USERS = { alice: 61001, bob: 61002 } as const;
const home = (name: keyof typeof USERS): string => path.join(base, 'home', name);

/** polod writes the token file; here without changing owners, so no root is needed. */
const writeToken: TokenWriter = async (user, token, dirName) => {
  const file = path.join(user.home, dirName, 'token');
  const old = await readFile(file, 'utf8').catch(() => undefined);
  if (old === token) return 'existed';
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, token);
  return 'created';
};

before(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'mp-pcli-cli-'));
  stateDir = path.join(base, 'state');
  for (const name of Object.keys(USERS)) await mkdir(path.join(base, 'home', name), { recursive: true });
  const users = fakeUserDirectory(
    (Object.entries(USERS) as [keyof typeof USERS, number][]).map(([name, uid]) => ({
      name,
      uid,
      gid: uid,
      home: home(name),
      shell: '/bin/sh',
      // alice may publish root services (the marcopolo group); bob may not.
      groups: name === 'alice' ? [name, 'marcopolo'] : [name],
    })),
  );
  const handler = new PublishHandler({ secret: randomBytes(32), users, store, verifyRegexp: DEFAULT_VERIFY_REGEXP, writeToken });
  server = new PublishServer({ handle: (frame) => handler.handle(frame), socketPath: path.join(stateDir, 'polod.sock') });
  await server.start();
});

after(async () => {
  await server.stop();
  await rm(base, { recursive: true, force: true });
});

/** Runs `polo --state-dir <state> <args>` as `user`. */
function polo(user: keyof typeof USERS, args: readonly string[], global: readonly string[] = ['--state-dir', stateDir]): Promise<CliRun> {
  return runMain((io) => main([...global, ...args], io, { home: home(user), uid: USERS[user], userName: user }));
}

describe('polo command against the publish server', () => {
  it('publishes a root service with params (requesting the token first), lists it, unpublishes it', async () => {
    const published = await polo('alice', ['publish', 'web', '--root', '--params', '{"port":80,"path":"/"}', '--param', 'port=8080']);
    assert.deepEqual(published, { code: 0, stdout: 'web\n', stderr: '' });
    assert.ok((await readFile(path.join(home('alice'), '.polo', 'token'), 'utf8')).length > 0);

    const table = await polo('alice', ['list']);
    assert.equal(table.code, 0);
    assert.equal(
      table.stdout,
      'ID   OWNER  GROUPS                   PERMANENT  PARAMS\n' + 'web  alice  224.0.0.112,224.0.0.113  no         port=8080 path=/\n',
    );
    const json = await polo('alice', ['list', '--json']);
    assert.deepEqual(JSON.parse(json.stdout), [
      { id: 'web', owner: 'alice', groups: [G1, G2], permanent: false, params: { port: 8080, path: '/' }, root: true },
    ]);

    assert.deepEqual(await polo('alice', ['unpublish', 'web']), { code: 0, stdout: '', stderr: '' });
    assert.deepEqual(await polo('alice', ['list']), { code: 0, stdout: '', stderr: 'polo: polod offers no services\n' });
    assert.deepEqual(await polo('alice', ['list', '--json']), { code: 0, stdout: '[]\n', stderr: '' });
  });

  it('publishes a user service in one group and prints its final id as JSON', async () => {
    const run = await polo('bob', ['publish', 'db', '--group', G2, '--param', 'port=5432', '--json']);
    assert.deepEqual(run, { code: 0, stdout: '{"id":"bob:db"}\n', stderr: '' });
    assert.deepEqual(
      store.services.find((s) => s.id === 'bob:db'),
      { id: 'bob:db', owner: 'bob', groups: [G2], permanent: false, params: { port: 5432 }, root: false },
    );
    assert.deepEqual(await polo('bob', ['unpublish', 'bob:db', '--json']), {
      code: 0,
      stdout: '{"id":"bob:db","unpublished":true}\n',
      stderr: '',
    });
  });

  it("exits 1 with polod's reason on one line when polod refuses", async () => {
    assert.deepEqual(await polo('bob', ['publish', 'web', '--root']), { code: 1, stdout: '', stderr: 'polo: Permission denied\n' });
    assert.deepEqual(await polo('bob', ['unpublish', 'nothing-here']), {
      code: 1,
      stdout: '',
      stderr: "polo: Permission denied: 'nothing-here' names a root service, which only root or the marcopolo group may unpublish\n",
    });
    assert.deepEqual(await polo('bob', ['unpublish', 'bob:nothing']), {
      code: 1,
      stdout: '',
      stderr: "polo: Could not find service: no service 'bob:nothing' is offered\n",
    });
    assert.deepEqual(await polo('alice', ['publish', 'x', '--group', '224.0.0.114']), {
      code: 1,
      stdout: '',
      stderr: "polo: Invalid multicast group address '224.0.0.114': The instance is not a member of this group\n",
    });
    assert.equal((await polo('alice', ['publish', 'dup', '--root'])).code, 0);
    assert.deepEqual(await polo('alice', ['publish', 'dup', '--root']), { code: 1, stdout: '', stderr: 'polo: Service dup already exists\n' });
    assert.equal((await polo('alice', ['unpublish', 'dup'])).code, 0);
  });

  it('unpublish hints name the id the user likely meant', async () => {
    assert.equal((await polo('bob', ['publish', 'web'])).code, 0);
    // bob owns bob:web; a bare 'web' is a root id he may not touch: the hint names his service.
    assert.deepEqual(await polo('bob', ['unpublish', 'web']), {
      code: 1,
      stdout: '',
      stderr:
        "polo: Permission denied: 'web' names a root service, which only root or the marcopolo group may unpublish; " +
        "your service is 'bob:web': polo unpublish bob:web\n",
    });
    // alice may unpublish root services: 'nosuch' is not found, and the message names it.
    assert.deepEqual(await polo('alice', ['unpublish', 'nosuch']), {
      code: 1,
      stdout: '',
      stderr: "polo: Could not find service: no service 'nosuch' is offered\n",
    });
    assert.equal((await polo('bob', ['unpublish', 'bob:web'])).code, 0);
  });

  it('unpublishing a file-backed service without --delete-file warns that it comes back', async () => {
    assert.equal((await polo('alice', ['publish', 'kept', '--root', '--permanent'])).code, 0);
    const run = await polo('alice', ['unpublish', 'kept']);
    assert.equal(run.code, 0);
    assert.equal(
      run.stderr,
      "polo: warning: kept is kept in a service file, so it comes back at polod's next reload or restart; " +
        'unpublish it with --delete-file to remove it for good\n',
    );
    assert.equal((await polo('alice', ['publish', 'kept2', '--root', '--permanent'])).code, 0);
    assert.deepEqual(await polo('alice', ['unpublish', 'kept2', '--delete-file']), { code: 0, stdout: '', stderr: '' });
  });

  it('token prints created, then existed; --json names the file', async () => {
    await rm(path.join(home('bob'), '.polo', 'token'), { force: true });
    assert.deepEqual(await polo('bob', ['token']), { code: 0, stdout: 'created\n', stderr: '' });
    assert.deepEqual(await polo('bob', ['token']), { code: 0, stdout: 'existed\n', stderr: '' });
    const run = await polo('bob', ['token', '--json']);
    assert.deepEqual(JSON.parse(run.stdout), { token: 'existed', file: path.join(home('bob'), '.polo', 'token') });
  });

  it('exits 3 naming the socket when polod is not running', async () => {
    const empty = path.join(base, 'no-polod');
    const run = await polo('alice', ['list'], ['--state-dir', empty]);
    assert.deepEqual(run, { code: 3, stdout: '', stderr: `polo: polod is not running (no socket at ${path.join(empty, 'polod.sock')})\n` });
    const viaSocket = await polo('alice', ['--socket', path.join(empty, 'x.sock'), 'token'], []);
    assert.equal(viaSocket.code, 3);
  });

  it('exits 3 when polod does not answer within --timeout', async (t) => {
    const socketPath = path.join(base, 'silent.sock');
    // Reads (so it sees the client go away) but never answers.
    const silent = net.createServer((s) => s.resume());
    await new Promise<void>((resolve) => silent.listen(socketPath, resolve));
    t.after(() => new Promise<void>((resolve) => silent.close(() => resolve())));
    const run = await polo('alice', ['list', '--socket', socketPath, '--timeout', '50'], []);
    assert.equal(run.code, 3);
    assert.equal(run.stderr, `polo: polod at ${socketPath} did not answer List within 50 ms\n`);
  });

  it('exits 2 with one line and the usage for usage errors and invalid values', async () => {
    const cases: [readonly string[], RegExp][] = [
      [[], /^polo: missing command\nUsage: polo publish/],
      [['frobnicate'], /^polo: unknown command 'frobnicate'/],
      [['publish'], /^polo: missing required argument 'ID'\nUsage: polo publish/],
      [['publish', ''], /^polo: the service id must be a non-empty string\nUsage: polo publish/],
      [['publish', 'web', '--group', '10.0.0.1'], /^polo: option '--group <addr>' argument '10\.0\.0\.1' is invalid/],
      [['publish', 'web', '--params', '[1]'], /^polo: option '--params <json>' argument '\[1\]' is invalid/],
      [['publish', 'web', '--param', '=1'], /^polo: option '--param <key=value>' argument '=1' is invalid/],
      [['--tls', '--socket', '/x', 'list'], /^polo: option '--socket <path>' cannot be used with option '--tls'/],
      [['--state-dir', '/x', '--tls-port', '1391', 'list'], /cannot be used with option/],
      [['list', '--timeout', 'soon'], /^polo: option '--timeout <ms>' argument 'soon' is invalid/],
      [['list', '--tls-port', '0'], /^polo: option '--tls-port <n>' argument '0' is invalid/],
    ];
    for (const [args, stderr] of cases) {
      const run = await polo('alice', args, []);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.equal(run.stdout, '');
      assert.match(run.stderr, stderr);
    }
  });

  it('--help documents the exit codes and exits 0', async () => {
    const run = await polo('alice', ['publish', '--help'], []);
    assert.equal(run.code, 0);
    assert.match(run.stdout, /Exit codes:\n {2}0 {2}done\n {2}1 {2}polod refused the request/);
    assert.match(run.stdout, /--state-dir <dir>/);
  });
});
