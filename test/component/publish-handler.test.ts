/**
 * The publish API's handler and store, over a real PoloDaemon on the in-memory network, real
 * service folders in temporary directories and a fake user directory: what each request
 * answers, what the responders then answer on the LAN, and what lands on disk.
 *
 * Tests that need files owned by other users (user service files, token files) run as root
 * only; everything else runs anywhere.
 */
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { issueToken, verifyToken } from '../../src/auth/token.js';
import { PublishHandler, type PublishReply, type TokenWriter } from '../../src/publish/handler.js';
import { DaemonServiceStore } from '../../src/publish/store.js';
import { Session } from '../../src/publish/session.js';
import { loadServiceDir } from '../../src/config/serviceDir.js';
import { PoloDaemon, type PoloDaemonSettings } from '../../src/daemon/poloDaemon.js';
import type { JsonObject } from '../../src/protocol/json.js';
import { DEFAULT_VERIFY_REGEXP } from '../../src/responder/polo.js';
import { fakeUserDirectory, type FakeUser } from '../../src/system/userDb.js';
import { MemoryNetwork } from '../../src/transport/memory.js';
import { silentLogger } from '../../src/util/log.js';
import { waitFor } from '../helpers/wait.js';

const G1 = '224.0.0.112';
const G2 = '224.0.0.113';
const asRoot = process.getuid?.() === 0;
const rootOnly = asRoot ? false : 'needs root: files owned by other users';

const UIDS = { root: 0, alice: 61001, bob: 61002, carol: 61003 } as const;

interface Setup {
  base: string;
  servicesDir: string;
  home: (name: keyof typeof UIDS) => string;
  daemon: PoloDaemon;
  handler: PublishHandler;
  secret: Buffer;
  tokenWrites: { user: string; token: string }[];
  /** Sends one request as the JSON of `Command`/`Args` and returns the reply. */
  ask(command: string, args?: JsonObject): Promise<PublishReply>;
  /** Sends raw bytes. */
  raw(text: string): Promise<PublishReply>;
  /** The token of a user (what their token file would hold). */
  token(name: keyof typeof UIDS): string;
  /** The params a Request-For of `id` in `group` is answered with, or undefined if silent. */
  answered(group: string, id: string): Promise<JsonObject | undefined>;
  /** Stops the daemon and starts a new one on the same folders (a polod restart). */
  restart(): Promise<void>;
}

async function setup(t: TestContext, options: { realTokens?: boolean; maxSessionConnectionsPerUser?: number } = {}): Promise<Setup> {
  const base = await mkdtemp(path.join(tmpdir(), 'mp-pubh-'));
  // Users must reach their homes, as on a real system: polod creates ~/.polo as the user.
  await chmod(base, 0o711);
  const servicesDir = path.join(base, 'services');
  const home = (name: keyof typeof UIDS): string => path.join(base, 'home', name);
  const accounts: FakeUser[] = [];
  for (const [name, uid] of Object.entries(UIDS)) {
    const dir = path.join(base, 'home', name);
    await mkdir(dir, { recursive: true });
    if (asRoot) await chown(dir, uid, uid);
    accounts.push({ name, uid, gid: uid, home: dir, shell: '/bin/sh', groups: name === 'carol' ? ['carol', 'marcopolo'] : [name] });
  }
  const users = fakeUserDirectory(accounts);
  const settings: PoloDaemonSettings = {
    groups: [G1, G2],
    port: 1337,
    interfaces: [],
    nodeParams: { hostname: 'polo-a' },
    servicesDir,
    userDir: '.polo',
    verifyRegexp: DEFAULT_VERIFY_REGEXP,
    ttl: 1,
    joinRetries: -1,
  };
  const secret = randomBytes(32);
  const tokenWrites: { user: string; token: string }[] = [];
  const fakeWriter: TokenWriter = async (user, token) => {
    const first = !tokenWrites.some((w) => w.user === user.name);
    tokenWrites.push({ user: user.name, token });
    return first ? 'created' : 'existed';
  };
  const net = new MemoryNetwork();
  const build = async (): Promise<{ daemon: PoloDaemon; handler: PublishHandler }> => {
    const daemon = new PoloDaemon(settings, {
      logger: silentLogger,
      loadServices: loadServiceDir,
      users,
      transport: net.host('10.0.0.1'),
    });
    await daemon.start();
    const store = new DaemonServiceStore(daemon.registry, { servicesDir, userDirName: '.polo' });
    const handler = new PublishHandler({
      secret,
      users,
      store,
      verifyRegexp: DEFAULT_VERIFY_REGEXP,
      ...(options.realTokens === true ? {} : { writeToken: fakeWriter }),
      ...(options.maxSessionConnectionsPerUser === undefined ? {} : { maxSessionConnectionsPerUser: options.maxSessionConnectionsPerUser }),
    });
    return { daemon, handler };
  };
  let current = await build();
  t.after(async () => {
    await current.daemon.stop();
    await rm(base, { recursive: true, force: true });
  });
  const s: Setup = {
    base,
    servicesDir,
    home,
    get daemon() {
      return current.daemon;
    },
    get handler() {
      return current.handler;
    },
    secret,
    tokenWrites,
    ask: (command, args) => current.handler.handle(Buffer.from(JSON.stringify(args === undefined ? { Command: command } : { Command: command, Args: args }))),
    raw: (text) => current.handler.handle(Buffer.from(text)),
    token: (name) => issueToken(secret, UIDS[name]),
    async answered(group, id) {
      const polo = current.daemon.polos.find((p) => p.multicastGroup === group);
      assert.ok(polo, `no responder for ${group}`);
      const d = await polo.decide({ command: 'Request-For', service: id });
      return d.kind === 'reply' && d.reply.command === 'OK' ? d.reply.params : undefined;
    },
    async restart() {
      await current.daemon.stop();
      current = await build();
    },
  };
  return s;
}

/** A first-format token (`mp1.<uid>.<whole MAC>`), computed here from its definition. */
function legacyToken(secret: Uint8Array, uid: number): string {
  return `mp1.${uid}.${createHmac('sha256', secret).update(`mp1.${uid}`).digest('base64url')}`;
}

/** Publish Args as the Python binding sends them. */
function publishArgs(token: string, service: string, extra: JsonObject = {}): JsonObject {
  return { token, service, params: {}, multicast_groups: [], permanent: false, root: false, ...extra };
}

describe('publish handler: Publish', () => {
  it('publishes a root service, answered at once in every group with its params (B8)', async (t) => {
    const s = await setup(t);
    const reply = await s.ask('Publish', publishArgs(s.token('root'), 'web', { root: true, params: { port: 8080 } }));
    assert.deepEqual(reply, { OK: 'web' });
    assert.deepEqual(await s.answered(G1, 'web'), { port: 8080 });
    assert.deepEqual(await s.answered(G2, 'web'), { port: 8080 });
    assert.deepEqual(s.daemon.registry.rootServices(G1).map((x) => x.origin), ['published']);
  });

  it('accepts Register, the Python binding\'s name, and defaults missing fields', async (t) => {
    const s = await setup(t);
    assert.deepEqual(await s.ask('Register', { token: s.token('alice'), service: 'svc' }), { OK: 'alice:svc' });
    assert.deepEqual(await s.answered(G1, 'alice:svc'), {});
  });

  it('publishes a user service as user:id in that user\'s list only', async (t) => {
    const s = await setup(t);
    const reply = await s.ask('Publish', publishArgs(s.token('alice'), 'printer', { params: { queue: 'lp0' }, multicast_groups: [G2] }));
    assert.deepEqual(reply, { OK: 'alice:printer' });
    assert.deepEqual(await s.answered(G2, 'alice:printer'), { queue: 'lp0' });
    assert.equal(await s.answered(G1, 'alice:printer'), undefined);
    assert.equal(await s.answered(G2, 'printer'), undefined);
    assert.equal(await s.answered(G2, 'bob:printer'), undefined);
  });

  it('refuses a duplicate id in a group, in all groups or none (B27)', async (t) => {
    const s = await setup(t);
    const root = s.token('root');
    assert.deepEqual(await s.ask('Publish', publishArgs(root, 'web', { root: true, multicast_groups: [G1] })), { OK: 'web' });
    assert.deepEqual(await s.ask('Publish', publishArgs(root, 'web', { root: true })), { Error: 'Service web already exists' });
    assert.equal(await s.answered(G2, 'web'), undefined, 'the failed publish must not land in G2');
    const alice = s.token('alice');
    assert.deepEqual(await s.ask('Publish', publishArgs(alice, 'web')), { OK: 'alice:web' });
    assert.deepEqual(await s.ask('Publish', publishArgs(alice, 'web')), { Error: 'Service alice:web already exists' });
    // Another user's service of the same name is another service.
    assert.deepEqual(await s.ask('Publish', publishArgs(s.token('bob'), 'web')), { OK: 'bob:web' });
  });

  it('lets exactly one of many concurrent publishes of one id succeed', async (t) => {
    const s = await setup(t);
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, i) => s.ask('Publish', publishArgs(s.token('root'), 'race', { root: true, params: { i } }))),
    );
    assert.equal(replies.filter((r) => 'OK' in r).length, 1);
    assert.equal(replies.filter((r) => 'Error' in r && r.Error === 'Service race already exists').length, 19);
    assert.equal(s.daemon.registry.rootServices(G1).filter((x) => x.id === 'race').length, 1);
  });

  it('refuses groups polod does not serve with the reference texts, never a crash (B13)', async (t) => {
    const s = await setup(t);
    const tok = s.token('alice');
    const cases: [unknown, string][] = [
      ['224.0.0.114', "Invalid multicast group address '224.0.0.114': The instance is not a member of this group"],
      ['10.0.0.224', "Invalid multicast group address '10.0.0.224': The IP is not in the multicast range"],
      ['224.0.0', "Invalid multicast group address '224.0.0': Wrong IP format"],
      ['224.0.0.256', "Invalid multicast group address '224.0.0.256': Wrong IP format"],
      [7, "Invalid multicast group address '7': IP must be a string"],
    ];
    for (const [group, error] of cases) {
      assert.deepEqual(await s.ask('Publish', publishArgs(tok, 'x', { multicast_groups: [G1, group as string] })), { Error: error });
    }
    assert.equal(await s.answered(G1, 'alice:x'), undefined);
  });

  it('allows root services to uid 0 and the marcopolo group only', async (t) => {
    const s = await setup(t);
    assert.deepEqual(await s.ask('Publish', publishArgs(s.token('alice'), 'sys', { root: true })), { Error: 'Permission denied' });
    assert.equal(await s.answered(G1, 'sys'), undefined);
    assert.deepEqual(await s.ask('Publish', publishArgs(s.token('carol'), 'sys', { root: true })), { OK: 'sys' });
    assert.deepEqual(await s.answered(G1, 'sys'), {});
  });

  it('names the field of every wrongly typed argument', async (t) => {
    const s = await setup(t);
    const tok = s.token('alice');
    const cases: [JsonObject, string][] = [
      [{ permanent: 'yes' }, 'permanent must be boolean'],
      [{ root: 1 }, 'root must be boolean'],
      [{ params: [] }, 'params must be an object'],
      [{ params: 'port=80' }, 'params must be an object'],
      [{ multicast_groups: G1 }, 'multicast_groups must be a list of multicast group addresses'],
      [{ service: 5 }, 'The name of the service 5 is invalid: Service must be a string'],
      [{ service: '' }, 'The name of the service  is invalid: Must be larger than 1'],
    ];
    for (const [extra, error] of cases) {
      assert.deepEqual(await s.ask('Publish', publishArgs(tok, 'x', extra)), { Error: error }, JSON.stringify(extra));
    }
    const big = { blob: 'x'.repeat(5000) };
    const reply = await s.ask('Publish', publishArgs(tok, 'x', { params: big }));
    assert.match('Error' in reply ? reply.Error : '', /^params too large: /);
  });

  it('refuses ids that are paths, control characters, or unfindable', async (t) => {
    const s = await setup(t);
    const root = s.token('root');
    for (const id of ['../../etc/x', '/etc/passwd', 'a/b', 'a\\b', '..', '.', 'nul\u0000byte', 'tab\there']) {
      for (const rootService of [true, false]) {
        const reply = await s.ask('Publish', publishArgs(root, id, { root: rootService, permanent: true }));
        assert.ok('Error' in reply && reply.Error.startsWith('The name of the service '), `${JSON.stringify(id)}: ${JSON.stringify(reply)}`);
      }
    }
    // Nothing was written anywhere under the test folder but the homes themselves.
    assert.deepEqual(await readdir(s.base), ['home']);
    const userForm = await s.ask('Publish', publishArgs(root, 'a:b', { root: true }));
    assert.match('Error' in userForm ? userForm.Error : '', /has the form of a user service/);
    // With the default verify_regexp, alice:my-svc would be looked up as a root id (B25).
    const dashed = await s.ask('Publish', publishArgs(s.token('alice'), 'my-svc'));
    assert.equal(
      'Error' in dashed ? dashed.Error : '',
      "The name of the service my-svc is invalid: a user service id may use only letters, digits and '_' (e.g. 'my_svc'), so that 'alice:my-svc' can be asked for",
    );
    const reserved = await s.ask('Publish', publishArgs(s.token('alice'), 'token'));
    assert.match('Error' in reserved ? reserved.Error : '', /'token' is reserved/);
    // A root service may be called token: the services folder holds no token file.
    assert.deepEqual(await s.ask('Publish', publishArgs(root, 'token', { root: true })), { OK: 'token' });
  });
});

describe('publish handler: identity', () => {
  it('needs a token, and refuses garbage, altered, foreign and unknown-user tokens', async (t) => {
    const s = await setup(t);
    const args = (token: unknown): JsonObject => publishArgs(token as string, 'x');
    assert.deepEqual(await s.ask('Publish', { service: 'x' }), { Error: 'Need a token' });
    assert.deepEqual(await s.ask('Publish', args('')), { Error: 'Need a token' });
    assert.deepEqual(await s.ask('Publish', args(null)), { Error: 'Need a token' });
    assert.deepEqual(await s.ask('Publish', args('garbage')), { Error: 'Bad token' });
    assert.deepEqual(await s.ask('Publish', args(12345)), { Error: 'Bad token' });
    const good = s.token('alice');
    const altered = `${good.slice(0, -1)}${good.endsWith('A') ? 'B' : 'A'}`;
    assert.deepEqual(await s.ask('Publish', args(altered)), { Error: 'Bad token' });
    // alice's MAC on bob's uid: the uid is not the one the MAC proves.
    const asBob = good.replace(`.${UIDS.alice.toString(36)}.`, `.${UIDS.bob.toString(36)}.`);
    assert.notEqual(asBob, good);
    assert.deepEqual(await s.ask('Publish', args(asBob)), { Error: 'Bad token' });
    assert.deepEqual(await s.ask('Publish', args(issueToken(randomBytes(32), UIDS.alice))), { Error: 'Bad token' });
    assert.deepEqual(await s.ask('Publish', args(issueToken(s.secret, 62000))), { Error: 'Bad token. Could not find user' });
    // The token file's content is sent verbatim, trailing newline included.
    assert.deepEqual(await s.ask('Publish', args(`${good}\n`)), { OK: 'alice:x' });
  });

  it('checks the token before the fields, so strangers learn nothing', async (t) => {
    const s = await setup(t);
    assert.deepEqual(await s.ask('Publish', { token: 'bad', service: 5, root: 'x' }), { Error: 'Bad token' });
    assert.deepEqual(await s.ask('Unpublish', { service: 'root-thing' }), { Error: 'Need a token' });
  });
});

describe('publish handler: Unpublish', () => {
  it('removes a user\'s own service, and only theirs (B15)', async (t) => {
    const s = await setup(t);
    await s.ask('Publish', publishArgs(s.token('alice'), 'web', { params: { port: 1 } }));
    assert.deepEqual(await s.ask('Unpublish', { token: s.token('bob'), service: 'alice:web' }), { Error: 'Permission denied' });
    assert.deepEqual(await s.ask('Unpublish', { token: s.token('carol'), service: 'alice:web' }), { Error: 'Permission denied' });
    assert.deepEqual(await s.answered(G1, 'alice:web'), { port: 1 });
    assert.deepEqual(await s.ask('Unpublish', { token: s.token('alice'), service: 'alice:web', multicast_groups: [] }), { OK: 0 });
    assert.equal(await s.answered(G1, 'alice:web'), undefined);
    assert.deepEqual(await s.ask('Unpublish', { token: s.token('alice'), service: 'alice:web' }), { Error: 'Could not find service' });
  });

  it('removes root services for superusers only; uid 0 may remove anyone\'s', async (t) => {
    const s = await setup(t);
    await s.ask('Publish', publishArgs(s.token('root'), 'sys', { root: true }));
    assert.deepEqual(await s.ask('Unpublish', { token: s.token('alice'), service: 'sys' }), { Error: 'Permission denied' });
    assert.deepEqual(await s.ask('Unpublish', { token: s.token('carol'), service: 'sys' }), { OK: 0 });
    assert.equal(await s.answered(G1, 'sys'), undefined);
    await s.ask('Publish', publishArgs(s.token('bob'), 'b'));
    assert.deepEqual(await s.ask('Unpublish', { token: s.token('root'), service: 'bob:b' }), { OK: 0 });
    assert.equal(await s.answered(G1, 'bob:b'), undefined);
  });

  it('removes from the given groups only', async (t) => {
    const s = await setup(t);
    await s.ask('Publish', publishArgs(s.token('alice'), 'web'));
    assert.deepEqual(await s.ask('Unpublish', { token: s.token('alice'), service: 'alice:web', multicast_groups: [G1] }), { OK: 0 });
    assert.equal(await s.answered(G1, 'alice:web'), undefined);
    assert.deepEqual(await s.answered(G2, 'alice:web'), {});
    assert.deepEqual(await s.ask('Unpublish', { token: s.token('alice'), service: 'alice:web', delete_file: 'no' }), {
      Error: 'delete_file must be boolean',
    });
  });
});

describe('publish handler: permanence and reload', () => {
  it('keeps published services across a reload (B7) without duplicates', async (t) => {
    const s = await setup(t);
    await s.ask('Publish', publishArgs(s.token('root'), 'dyn', { root: true, params: { a: 1 } }));
    await s.ask('Publish', publishArgs(s.token('root'), 'perm', { root: true, permanent: true, params: { b: 2 } }));
    await s.ask('Publish', publishArgs(s.token('alice'), 'mine'));
    await s.daemon.reload();
    assert.deepEqual(await s.answered(G1, 'dyn'), { a: 1 });
    assert.deepEqual(await s.answered(G1, 'perm'), { b: 2 });
    assert.deepEqual(await s.answered(G2, 'alice:mine'), {});
    assert.deepEqual(s.daemon.registry.rootServices(G1).map((x) => [x.id, x.origin]), [
      ['dyn', 'published'],
      ['perm', 'file'],
    ]);
  });

  it('writes a permanent root service file atomically, acknowledged only once on disk', async (t) => {
    const s = await setup(t);
    const reply = await s.ask('Publish', publishArgs(s.token('root'), 'web', { root: true, permanent: true, params: { port: 80 }, multicast_groups: [G2] }));
    assert.deepEqual(reply, { OK: 'web' });
    const file = path.join(s.servicesDir, 'web');
    assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), { id: 'web', params: { port: 80 }, groups: [G2], disabled: false });
    assert.equal((await stat(file)).mode & 0o777, 0o644);
    assert.deepEqual(await readdir(s.servicesDir), ['web'], 'no temporary file is left');
    await s.restart();
    assert.deepEqual(await s.answered(G2, 'web'), { port: 80 });
    assert.equal(await s.answered(G1, 'web'), undefined);
  });

  it('never overwrites a file that is in the way', async (t) => {
    const s = await setup(t);
    await mkdir(s.servicesDir, { recursive: true });
    const mine = JSON.stringify({ id: 'web', disabled: true });
    await writeFile(path.join(s.servicesDir, 'web'), mine);
    await s.daemon.reload();
    const reply = await s.ask('Publish', publishArgs(s.token('root'), 'web', { root: true, permanent: true }));
    assert.deepEqual(reply, { Error: 'Permanent service web already exists' });
    assert.equal(await readFile(path.join(s.servicesDir, 'web'), 'utf8'), mine);
    assert.equal(await s.answered(G1, 'web'), undefined);
  });

  it('delete_file drops the group from the file, then deletes it', async (t) => {
    const s = await setup(t);
    const root = s.token('root');
    await s.ask('Publish', publishArgs(root, 'web', { root: true, permanent: true, params: { v: 1 } }));
    const file = path.join(s.servicesDir, 'web');
    // Without delete_file the file stays, so a reload brings the service back.
    assert.deepEqual(await s.ask('Unpublish', { token: root, service: 'web', multicast_groups: [G1] }), { OK: 0 });
    assert.equal(await s.answered(G1, 'web'), undefined);
    await s.daemon.reload();
    assert.deepEqual(await s.answered(G1, 'web'), { v: 1 });
    assert.deepEqual(await s.ask('Unpublish', { token: root, service: 'web', multicast_groups: [G1], delete_file: true }), { OK: 0 });
    assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), { id: 'web', params: { v: 1 }, groups: [G2], disabled: false });
    await s.daemon.reload();
    assert.equal(await s.answered(G1, 'web'), undefined);
    assert.deepEqual(await s.answered(G2, 'web'), { v: 1 });
    assert.deepEqual(await s.ask('Unpublish', { token: root, service: 'web', delete_file: true }), { OK: 0 });
    await assert.rejects(stat(file), { code: 'ENOENT' });
    await s.restart();
    assert.equal(await s.answered(G2, 'web'), undefined);
  });

  it('writes a permanent user service into ~/.polo, owned by the user', { skip: rootOnly }, async (t) => {
    const s = await setup(t);
    const reply = await s.ask('Publish', publishArgs(s.token('alice'), 'web', { permanent: true, params: { port: 8080 } }));
    assert.deepEqual(reply, { OK: 'alice:web' });
    const dir = path.join(s.home('alice'), '.polo');
    const st = await stat(dir);
    assert.deepEqual([st.uid, st.mode & 0o777], [UIDS.alice, 0o700]);
    const file = await stat(path.join(dir, 'web'));
    assert.deepEqual([file.uid, file.gid, file.mode & 0o777], [UIDS.alice, UIDS.alice, 0o644]);
    assert.deepEqual(JSON.parse(await readFile(path.join(dir, 'web'), 'utf8')), { id: 'web', params: { port: 8080 }, groups: [], disabled: false });
    // A reload re-reads it from disk: still answered once, not duplicated (B20).
    await s.daemon.reload();
    assert.deepEqual(s.daemon.registry.userServices(G1).get('alice')?.map((x) => x.id), ['web']);
    await s.restart();
    assert.deepEqual(await s.answered(G1, 'alice:web'), { port: 8080 });
    assert.deepEqual(await s.ask('Unpublish', { token: s.token('alice'), service: 'alice:web', delete_file: true }), { OK: 0 });
    await assert.rejects(stat(path.join(dir, 'web')), { code: 'ENOENT' });
  });

  it('loads a user\'s file services before publishing, so none is shadowed', { skip: rootOnly }, async (t) => {
    const s = await setup(t);
    const dir = path.join(s.home('alice'), '.polo');
    await mkdir(dir, { mode: 0o700 });
    await writeFile(path.join(dir, 'web'), JSON.stringify({ id: 'web', params: { from: 'file' } }));
    await chown(dir, UIDS.alice, UIDS.alice);
    await chown(path.join(dir, 'web'), UIDS.alice, UIDS.alice);
    assert.deepEqual(await s.ask('Publish', publishArgs(s.token('alice'), 'web')), { Error: 'Service alice:web already exists' });
    assert.deepEqual(await s.answered(G1, 'alice:web'), { from: 'file' });
  });

  it('refuses to write through a ~/.polo that is a symlink', { skip: rootOnly }, async (t) => {
    const s = await setup(t);
    const elsewhere = path.join(s.base, 'elsewhere');
    await mkdir(elsewhere);
    await symlink(elsewhere, path.join(s.home('alice'), '.polo'));
    const reply = await s.ask('Publish', publishArgs(s.token('alice'), 'web', { permanent: true }));
    assert.match('Error' in reply ? reply.Error : '', /^Could not write service file alice:web: /);
    assert.deepEqual(await readdir(elsewhere), []);
    assert.ok((await lstat(path.join(s.home('alice'), '.polo'))).isSymbolicLink());
    assert.equal(await s.answered(G1, 'alice:web'), undefined);
  });
});

describe('publish handler: Request-token and List', () => {
  it('writes the token for a uid and never returns it', async (t) => {
    const s = await setup(t);
    assert.deepEqual(await s.ask('Request-token', { uid: UIDS.bob }), { OK: 'created' });
    assert.deepEqual(await s.ask('Request-token', { uid: UIDS.bob }), { OK: 'existed' });
    assert.deepEqual(s.tokenWrites.map((w) => [w.user, verifyToken(s.secret, w.token)]), [
      ['bob', { ok: true, uid: UIDS.bob, legacy: false }],
      ['bob', { ok: true, uid: UIDS.bob, legacy: false }],
    ]);
    assert.deepEqual(await s.ask('Request-token', { uid: 62000 }), { Error: 'User not found' });
    assert.deepEqual(await s.ask('Request-token', { uid: -1 }), { Error: 'uid must be an integer between 0 and 4294967294' });
    assert.deepEqual(await s.ask('Request-token', {}), { Error: 'uid must be an integer between 0 and 4294967294' });
  });

  it('writes a real token file 0600, owned by the user, that then authenticates them', { skip: rootOnly }, async (t) => {
    const s = await setup(t, { realTokens: true });
    assert.deepEqual(await s.ask('Request-token', { uid: UIDS.alice }), { OK: 'created' });
    const file = path.join(s.home('alice'), '.polo', 'token');
    const st = await stat(file);
    assert.deepEqual([st.uid, st.mode & 0o777], [UIDS.alice, 0o600]);
    const token = await readFile(file, 'utf8');
    assert.deepEqual(await s.ask('Publish', publishArgs(token, 'web')), { OK: 'alice:web' });
    assert.deepEqual(await s.ask('Request-token', { uid: UIDS.alice }), { OK: 'existed' });
  });

  it('accepts a first-format token, whole or cut to 49 characters, and writes the current token', async (t) => {
    const s = await setup(t);
    const whole = legacyToken(s.secret, UIDS.alice);
    assert.equal(whole.length, 53);
    assert.deepEqual(await s.ask('Publish', publishArgs(whole, 'web')), { OK: 'alice:web' });
    // As the C++ binding reads the same file: fgets keeps 49 characters.
    assert.deepEqual(await s.ask('Unpublish', { token: whole.slice(0, 49), service: 'alice:web' }), { OK: 0 });
    assert.deepEqual(s.tokenWrites, [
      { user: 'alice', token: s.token('alice') },
      { user: 'alice', token: s.token('alice') },
    ]);
    // The current token asks for nothing.
    assert.deepEqual(await s.ask('Publish', publishArgs(s.token('alice'), 'web')), { OK: 'alice:web' });
    assert.equal(s.tokenWrites.length, 2);
    // Cut anywhere else, or under another secret, it proves nothing.
    assert.deepEqual(await s.ask('Publish', publishArgs(whole.slice(0, 48), 'x')), { Error: 'Bad token' });
    assert.deepEqual(await s.ask('Publish', publishArgs(legacyToken(randomBytes(32), UIDS.alice), 'x')), { Error: 'Bad token' });
  });

  it('replaces a first-format token file with the current token when it is used', { skip: rootOnly }, async (t) => {
    const s = await setup(t, { realTokens: true });
    const file = path.join(s.home('alice'), '.polo', 'token');
    await mkdir(path.dirname(file), { mode: 0o700 });
    await chown(path.dirname(file), UIDS.alice, UIDS.alice);
    await writeFile(file, legacyToken(s.secret, UIDS.alice), { mode: 0o600 });
    await chown(file, UIDS.alice, UIDS.alice);
    assert.deepEqual(await s.ask('Publish', publishArgs(legacyToken(s.secret, UIDS.alice), 'web')), { OK: 'alice:web' });
    assert.equal(await readFile(file, 'utf8'), s.token('alice'));
    assert.ok(s.token('alice').length <= 44);
    const st = await stat(file);
    assert.deepEqual([st.uid, st.mode & 0o777], [UIDS.alice, 0o600]);
  });

  it('keeps serving a first-format token whose file cannot be replaced', async (t) => {
    const s = await setup(t);
    const failing: TokenWriter = async () => {
      throw new Error('disk full');
    };
    const handler = new PublishHandler({
      secret: s.secret,
      users: fakeUserDirectory([{ name: 'alice', uid: UIDS.alice, gid: UIDS.alice, home: s.home('alice'), shell: '/bin/sh', groups: ['alice'] }]),
      store: new DaemonServiceStore(s.daemon.registry, { servicesDir: s.servicesDir, userDirName: '.polo' }),
      verifyRegexp: DEFAULT_VERIFY_REGEXP,
      writeToken: failing,
    });
    const request = { Command: 'Publish', Args: publishArgs(legacyToken(s.secret, UIDS.alice), 'web') };
    assert.deepEqual(await handler.handle(Buffer.from(JSON.stringify(request))), { OK: 'alice:web' });
  });

  it('lists what the node offers, per service with its groups, without a token', async (t) => {
    const s = await setup(t);
    await s.ask('Publish', publishArgs(s.token('carol'), 'sys', { root: true, params: { p: 1 } }));
    await s.ask('Publish', publishArgs(s.token('alice'), 'web', { multicast_groups: [G2] }));
    await s.ask('Publish', publishArgs(s.token('root'), 'perm', { root: true, permanent: true }));
    const reply = await s.ask('List');
    assert.ok('OK' in reply && Array.isArray(reply.OK));
    const byId = new Map((reply.OK as JsonObject[]).map((e) => [e['id'], e]));
    assert.deepEqual(byId.get('sys'), { id: 'sys', owner: 'carol', groups: [G1, G2], permanent: false, params: { p: 1 }, root: true });
    assert.deepEqual(byId.get('alice:web'), { id: 'alice:web', owner: 'alice', groups: [G2], permanent: false, params: {}, root: false });
    assert.deepEqual(byId.get('perm'), { id: 'perm', owner: 'root', groups: [G1, G2], permanent: true, params: {}, root: true });
    assert.equal(byId.size, 3);
  });
});

describe('publish handler: envelope', () => {
  it('answers every malformed request with one error', async (t) => {
    const s = await setup(t);
    assert.deepEqual(await s.raw('{"Command": "Publish"'), { Error: 'Malformed JSON' });
    assert.deepEqual(await s.raw('not json'), { Error: 'Malformed JSON' });
    assert.deepEqual(await s.raw('[]'), { Error: 'Malformed JSON' });
    assert.deepEqual(await s.raw('{"Args": {}}'), { Error: 'Missing command' });
    assert.deepEqual(await s.raw('{"Command": null}'), { Error: 'Missing command' });
    assert.deepEqual(await s.raw('{"Command": "Service-info", "Args": {}}'), { Error: 'Unknown command' });
    assert.deepEqual(await s.raw('{"Command": 5}'), { Error: 'Unknown command' });
    assert.deepEqual(await s.raw('{"Command": "toString"}'), { Error: 'Unknown command' });
    assert.deepEqual(await s.raw('{"Command": "Publish", "Args": [1]}'), { Error: 'Args must be an object' });
    assert.deepEqual(await s.raw(`{"Command": "List", "Args": ${'['.repeat(100)}${']'.repeat(100)}}`), { Error: 'Malformed JSON' });
    assert.deepEqual(await s.raw('{"Command": "List", "__proto__": {"Command": "x"}}'), { OK: [] });
  });
});

describe('publish handler: sessions and health checks', () => {
  /** A session whose connection the test closes. */
  function session(): { peer: { session: Session }; close: () => void } {
    let close: () => void = () => {};
    const closed = new Promise<void>((resolve) => (close = resolve));
    return { peer: { session: new Session(closed) }, close };
  }
  const frame = (args: JsonObject): Buffer => Buffer.from(JSON.stringify({ Command: 'Publish', Args: args }));

  it('withdraws a session service when its connection closes, and only that service', async (t) => {
    const s = await setup(t);
    const changes: string[] = [];
    s.daemon.registry.onChange((c) => changes.push(`${c.kind} ${c.group} ${c.id} ${c.cause}`));
    const a = session();
    assert.deepEqual(await s.handler.handle(frame({ ...publishArgs(s.token('alice'), 'web'), session: true }), a.peer), { OK: 'alice:web' });
    assert.equal(a.peer.session.holding, true);
    assert.deepEqual(await s.answered(G1, 'alice:web'), {});
    a.close();
    await waitFor(async () => (await s.answered(G1, 'alice:web')) === undefined, { what: 'alice:web withdrawn' });
    assert.deepEqual(changes.filter((c) => c.endsWith('session')).sort(), [`removed ${G1} alice:web session`, `removed ${G2} alice:web session`]);

    // Unpublished and published again by another call: the first session's end leaves it alone.
    const b = session();
    await s.handler.handle(frame({ ...publishArgs(s.token('alice'), 'db'), session: true }), b.peer);
    assert.deepEqual(await s.ask('Unpublish', { token: s.token('alice'), service: 'alice:db' }), { OK: 0 });
    assert.deepEqual(await s.ask('Publish', publishArgs(s.token('alice'), 'db', { params: { again: true } })), { OK: 'alice:db' });
    b.close();
    await s.daemon.registry.exclusive(async () => {});
    assert.deepEqual(await s.answered(G1, 'alice:db'), { again: true });
  });

  it("bounds one user's session connections (never idle, so never closed for room), not root's", async (t) => {
    const s = await setup(t, { maxSessionConnectionsPerUser: 2 });
    const [a, b, c] = [session(), session(), session()];
    const publishOn = (conn: ReturnType<typeof session>, token: string, id: string): Promise<unknown> =>
      s.handler.handle(frame({ ...publishArgs(token, id), session: true }), conn.peer);
    assert.deepEqual(await publishOn(a, s.token('alice'), 'a1'), { OK: 'alice:a1' });
    assert.deepEqual(await publishOn(a, s.token('alice'), 'a2'), { OK: 'alice:a2' });
    assert.deepEqual(await publishOn(b, s.token('alice'), 'b1'), { OK: 'alice:b1' });
    assert.deepEqual(await publishOn(c, s.token('alice'), 'c1'), {
      Error: 'Too many session connections: alice holds 2, the limit is 2 (publish several services on one connection)',
    });
    assert.equal(c.peer.session.holding, false);
    // A refused publish leaves no count behind; bob and root have their own.
    assert.deepEqual(await publishOn(c, s.token('bob'), 'c1'), { OK: 'bob:c1' });
    a.close();
    await waitFor(async () => (await s.answered(G1, 'alice:a1')) === undefined, { what: "a's services withdrawn" });
    const d = session();
    assert.deepEqual(await publishOn(d, s.token('alice'), 'd1'), { OK: 'alice:d1' });
    for (const conn of [b, c, d]) conn.close();
  });

  it('refuses a permanent session service, and a session without a connection', async (t) => {
    const s = await setup(t);
    assert.deepEqual(await s.ask('Publish', { ...publishArgs(s.token('alice'), 'web', { permanent: true }), session: true }), {
      Error: 'A session service cannot be permanent: it ends with its connection',
    });
    assert.deepEqual(await s.ask('Publish', { ...publishArgs(s.token('alice'), 'web'), session: true }), {
      Error: 'Sessions need a connection that stays open (not available here)',
    });
  });

  it('holds back a service published with a check until it passes, and lists the check', async (t) => {
    const s = await setup(t);
    const reply = await s.ask('Publish', { ...publishArgs(s.token('alice'), 'web'), check: { target: 'tcp:1', interval_ms: 60_000 } });
    assert.deepEqual(reply, { OK: 'alice:web' });
    assert.equal(await s.answered(G1, 'alice:web'), undefined, 'not offered before its check passes');
    const listed = await s.ask('List');
    assert.ok('OK' in listed && Array.isArray(listed.OK));
    const web = (listed.OK as JsonObject[]).find((e) => e['id'] === 'alice:web');
    assert.deepEqual(web?.['check'], { target: 'tcp:1', state: 'pending', failures: 0 });
    assert.deepEqual(await s.ask('Publish', { ...publishArgs(s.token('alice'), 'x'), check: 'udp:53' }), {
      Error: 'check: "udp:53" is neither tcp:PORT nor http://127.0.0.1:PORT/PATH',
    });
  });
});
