/**
 * PoloClient against a fake polod: a Unix socket in a temporary folder answering canned
 * replies. Checks the exact requests sent, one reply per request over one reused connection,
 * reconnection, the token flow, deadlines, cancellation and how each failure is reported.
 * Needs no root and no polod.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net, { type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { loadOrCreateCertificate } from '../../src/auth/certificate.js';
import {
  ConnectionLostError,
  DEFAULT_POLO_TIMEOUT_MS,
  PoloClient,
  PolodUnavailableError,
  polodSocketPath,
  UnexpectedReplyError,
  type PoloClientOptions,
} from '../../src/client/poloClient.js';
import { DEFAULT_POLOD_SOCKET } from '../../src/client/polodEndpoint.js';
import { DEFAULT_SOCKET_PATH, publishPaths } from '../../src/publish/api.js';
import { AbortedError, ClosedError, InvalidArgumentError, IoError, RemoteError, TimeoutError } from '../../src/errors.js';
import { waitFor } from '../helpers/wait.js';

const TOKEN = 'tok-of-4242';
const UID = 4242;

/** One request as the fake received it. */
interface Received {
  /** Index of the connection it came on (0 = first). */
  conn: number;
  /** The bytes of the request, as sent (newline included). */
  raw: string;
  json: { Command: string; Args?: Record<string, unknown> };
}

/** What the fake does with a request: write these bytes, close, or stay silent. */
type Action = string | { close: true } | { silent: true } | { destroyOnReceipt: true };

/** A fake polod on a Unix socket (or a TLS port): requests in, canned replies out. */
class FakePolod {
  readonly received: Received[] = [];
  readonly sockets: Socket[] = [];
  /** Chunks as received, per connection (to check one request per write). */
  readonly chunks: string[][] = [];
  answer: (req: Received) => Action = () => '{"OK": 0}';
  private server: Server | undefined;

  /** Listens on a Unix socket. */
  async listen(socketPath: string): Promise<void> {
    this.server = net.createServer((s) => this.serve(s));
    await new Promise<void>((resolve) => this.server?.listen(socketPath, resolve));
  }

  /** Listens with TLS on 127.0.0.1 and a free port; returns the port. */
  async listenTls(key: string, cert: string): Promise<number> {
    this.server = tls.createServer({ key, cert }, (s) => this.serve(s));
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as net.AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private serve(socket: Socket): void {
    const conn = this.sockets.length;
    this.sockets.push(socket);
    this.chunks.push([]);
    socket.on('error', () => undefined);
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      this.chunks[conn]?.push(chunk.toString('utf8'));
      buffered += chunk.toString('utf8');
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const raw = buffered.slice(0, nl + 1);
        buffered = buffered.slice(nl + 1);
        const req: Received = { conn, raw, json: JSON.parse(raw) as Received['json'] };
        this.received.push(req);
        const action = this.answer(req);
        if (typeof action === 'string') socket.write(action);
        else if ('close' in action) socket.end();
        else if ('destroyOnReceipt' in action) socket.destroy();
      }
    });
  }
}

let base: string;
let counter = 0;

before(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'mp-pcli-'));
});
after(async () => {
  await rm(base, { recursive: true, force: true });
});

/** A fake polod on a fresh socket, a home folder, and a client for both. */
async function setup(options: { token?: string | null; client?: Partial<PoloClientOptions> } = {}): Promise<{
  fake: FakePolod;
  client: PoloClient;
  home: string;
  socketPath: string;
}> {
  const dir = path.join(base, `t${++counter}`);
  const home = path.join(dir, 'home');
  await mkdir(path.join(home, '.polo'), { recursive: true });
  const token = options.token === undefined ? TOKEN : options.token;
  if (token !== null) await writeFile(path.join(home, '.polo', 'token'), token);
  const socketPath = path.join(dir, 'polod.sock');
  const fake = new FakePolod();
  await fake.listen(socketPath);
  const client = new PoloClient({ socketPath, home, uid: UID, ...options.client });
  after(async () => {
    client.destroy();
    await fake.close();
  });
  return { fake, client, home, socketPath };
}

describe('PoloClient requests', () => {
  it('publishes with the exact request of docs/protocol.md §5 and returns the final id', async () => {
    const { fake, client } = await setup();
    fake.answer = () => '{"OK": "alice:web"}\n';
    const id = await client.publishService('web', { params: { port: 8080, path: '/index' }, groups: ['224.0.0.112'] });
    assert.equal(id, 'alice:web');
    assert.equal(
      fake.received[0]?.raw,
      '{"Command":"Publish","Args":{"service":"web","token":"tok-of-4242","params":{"port":8080,"path":"/index"},' +
        '"multicast_groups":["224.0.0.112"],"permanent":false,"root":false}}\n',
    );
  });

  it('sends defaults: no params = {}, no groups = [] (every served group), flags false', async () => {
    const { fake, client } = await setup();
    fake.answer = () => '{"OK": "web"}';
    assert.equal(await client.publishService('web', { root: true, permanent: true }), 'web');
    assert.deepEqual(fake.received[0]?.json, {
      Command: 'Publish',
      Args: { service: 'web', token: TOKEN, params: {}, multicast_groups: [], permanent: true, root: true },
    });
  });

  it('unpublishes, lists and requests tokens with the documented Args', async () => {
    const { fake, client } = await setup();
    const listed = [
      { id: 'web', owner: 'root', groups: ['224.0.0.112'], permanent: false, params: { port: 1 }, root: true },
      { id: 'alice:db', owner: 'alice', groups: ['224.0.0.112', '224.0.0.113'], permanent: true, params: {}, root: false, extra: 1 },
    ];
    fake.answer = (req) =>
      req.json.Command === 'List' ? `${JSON.stringify({ OK: listed })}\n` : req.json.Command === 'Request-token' ? '{"OK": 1}\n' : '{"OK": 0}\n';
    await client.unpublishService('alice:web', { groups: ['224.0.0.113', '224.0.0.113'], deleteFile: true });
    const services = await client.list();
    assert.equal(await client.requestToken(), 'existed');
    assert.deepEqual(
      fake.received.map((r) => r.json),
      [
        {
          Command: 'Unpublish',
          Args: { service: 'alice:web', token: TOKEN, multicast_groups: ['224.0.0.113'], delete_file: true },
        },
        { Command: 'List', Args: {} },
        { Command: 'Request-token', Args: { uid: UID } },
      ],
    );
    assert.deepEqual(services, [
      { id: 'web', owner: 'root', groups: ['224.0.0.112'], permanent: false, params: { port: 1 }, root: true },
      { id: 'alice:db', owner: 'alice', groups: ['224.0.0.112', '224.0.0.113'], permanent: true, params: {}, root: false },
    ]);
  });

  it('reuses one connection and sends one request per write, the next only after the reply', async () => {
    const { fake, client } = await setup();
    let n = 0;
    fake.answer = () => `{"OK": "svc${++n}"}\n`;
    const ids = await Promise.all(['a', 'b', 'c', 'd'].map((id) => client.publishService(id)));
    assert.deepEqual(ids, ['svc1', 'svc2', 'svc3', 'svc4']);
    assert.deepEqual(
      fake.received.map((r) => [r.conn, r.json.Args?.['service']]),
      [
        [0, 'a'],
        [0, 'b'],
        [0, 'c'],
        [0, 'd'],
      ],
    );
    assert.equal(fake.sockets.length, 1);
    // Never two requests in one read: a reference polod parses each read as one document.
    assert.deepEqual(fake.chunks[0]?.map((c) => c.split('\n').length - 1), [1, 1, 1, 1]);
  });

  it('sends calls in the order they were made, token reads included', async () => {
    const { fake, client } = await setup();
    fake.answer = (req) => (req.json.Command === 'List' ? '{"OK": []}\n' : req.json.Command === 'Publish' ? '{"OK": "a"}\n' : '{"OK": 0}\n');
    await Promise.all([client.publishService('a'), client.unpublishService('a'), client.list(), client.publishService('a')]);
    assert.deepEqual(
      fake.received.map((r) => r.json.Command),
      ['Publish', 'Unpublish', 'List', 'Publish'],
    );
  });

  it('pairs replies with requests when they arrive split, joined, or without a newline (reference style)', async () => {
    const { fake, client } = await setup();
    fake.answer = (req) => {
      const reply = JSON.stringify({ OK: `${String(req.json.Args?.['service'])}-id` });
      const socket = fake.sockets[req.conn] as Socket;
      // Byte by byte, no newline: as a reference polod's json.dumps might arrive.
      for (const ch of Buffer.from(reply)) socket.write(Buffer.from([ch]));
      return '';
    };
    assert.equal(await client.publishService('wéb'), 'wéb-id');
    assert.equal(await client.publishService('x'), 'x-id');
  });

  it('reconnects when polod closed the connection between requests', async () => {
    const { fake, client } = await setup();
    fake.answer = (req) => {
      const socket = fake.sockets[req.conn] as Socket;
      socket.end('{"OK": "ok"}\n');
      return '';
    };
    assert.equal(await client.publishService('a'), 'ok');
    await waitFor(() => fake.sockets[0]?.closed, { what: 'the first connection to close' });
    assert.equal(await client.publishService('b'), 'ok');
    assert.deepEqual(
      fake.received.map((r) => r.conn),
      [0, 1],
    );
  });

  it('resends List on a new connection when a reused one dies before replying', async () => {
    const { fake, client } = await setup();
    fake.answer = (req) => {
      if (req.json.Command === 'Publish') return '{"OK": "warm-up"}\n';
      return req.conn === 0 ? { destroyOnReceipt: true } : '{"OK": []}\n';
    };
    await client.publishService('warm-up');
    assert.deepEqual(await client.list(), []);
    assert.deepEqual(
      fake.received.map((r) => [r.conn, r.json.Command]),
      [
        [0, 'Publish'],
        [0, 'List'],
        [1, 'List'],
      ],
    );
  });

  it('does not resend Publish when the connection dies before the reply: it may have been done', async () => {
    const { fake, client } = await setup();
    fake.answer = (req) => (req.json.Args?.['service'] === 'lost' ? { destroyOnReceipt: true } : '{"OK": "ok"}\n');
    await client.publishService('warm-up');
    await assert.rejects(client.publishService('lost'), (err: unknown) => {
      assert.ok(err instanceof ConnectionLostError, String(err));
      assert.match(err.message, /before replying to Publish/);
      return true;
    });
    assert.equal(fake.received.filter((r) => r.json.Args?.['service'] === 'lost').length, 1);
    // The next call works on a new connection.
    assert.equal(await client.publishService('after'), 'ok');
    assert.equal(fake.received.at(-1)?.conn, 1);
  });

  it('close() waits for calls in progress, closes the connection, and refuses later calls', async () => {
    const { fake, client } = await setup();
    fake.answer = () => '{"OK": "x"}\n';
    const pending = client.publishService('a');
    const closed = client.close();
    assert.equal(await pending, 'x');
    await closed;
    await client.close(); // idempotent
    await waitFor(() => fake.sockets[0]?.closed, { what: 'the connection to close' });
    await assert.rejects(client.list(), ClosedError);
  });
});

describe('PoloClient token flow', () => {
  it('reads the token file once and reuses the token for later calls', async () => {
    const { fake, client, home } = await setup();
    fake.answer = () => '{"OK": "web"}\n';
    await client.publishService('web');
    await rm(path.join(home, '.polo', 'token'));
    await client.publishService('web');
    const tokens = fake.received.map((r) => (r.json.Args as { token?: unknown }).token);
    assert.deepEqual(tokens, [TOKEN.trim(), TOKEN.trim()]);
  });

  it('requests a token when the file is missing, reads it, then publishes with it', async () => {
    const { fake, client, home } = await setup({ token: null });
    fake.answer = (req) => {
      if (req.json.Command === 'Request-token') {
        // polod writes the file; the reply only says whether it was created.
        void writeFile(path.join(home, '.polo', 'token'), 'fresh-token').then(() => fake.sockets[req.conn]?.write('{"OK": 0}\n'));
        return '';
      }
      return '{"OK": "web"}\n';
    };
    assert.equal(await client.publishService('web', { root: true }), 'web');
    assert.deepEqual(
      fake.received.map((r) => r.json),
      [
        { Command: 'Request-token', Args: { uid: UID } },
        {
          Command: 'Publish',
          Args: { service: 'web', token: 'fresh-token', params: {}, multicast_groups: [], permanent: false, root: true },
        },
      ],
    );
  });

  it('names the token file when polod answers but the file is still missing', async () => {
    const { fake, client, home } = await setup({ token: null });
    fake.answer = () => '{"OK": 0}\n';
    await assert.rejects(client.unpublishService('web'), (err: unknown) => {
      assert.ok(err instanceof IoError && !(err instanceof ConnectionLostError), String(err));
      assert.ok(err.message.includes(path.join(home, '.polo', 'token')), err.message);
      assert.match(err.message, /uid 4242/);
      return true;
    });
    assert.deepEqual(
      fake.received.map((r) => r.json.Command),
      ['Request-token'],
    );
  });

  it('renews a stale token once on "Bad token" and retries with the new one', async () => {
    const { fake, client, home } = await setup({ token: 'stale' });
    const file = path.join(home, '.polo', 'token');
    fake.answer = (req) => {
      if (req.json.Command === 'Request-token') {
        void writeFile(file, 'renewed').then(() => fake.sockets[req.conn]?.write('{"OK": 0}\n'));
        return '';
      }
      return req.json.Args?.['token'] === 'renewed' ? '{"OK": "web"}\n' : '{"Error": "Bad token"}\n';
    };
    assert.equal(await client.publishService('web'), 'web');
    assert.deepEqual(
      fake.received.map((r) => [r.json.Command, r.json.Args?.['token']]),
      [
        ['Publish', 'stale'],
        ['Request-token', undefined],
        ['Publish', 'renewed'],
      ],
    );
    assert.equal(await readFile(file, 'utf8'), 'renewed');
  });

  it('reports "Bad token" when renewing does not change the token', async () => {
    const { fake, client } = await setup();
    fake.answer = (req) => (req.json.Command === 'Request-token' ? '{"OK": 1}\n' : '{"Error": "Bad token"}\n');
    await assert.rejects(client.publishService('web'), { name: 'RemoteError', message: 'Bad token' });
    assert.equal(fake.received.filter((r) => r.json.Command === 'Publish').length, 1);
  });

  it("reads the token file of the given home and polod's user folder name", async () => {
    const { fake, socketPath, home } = await setup({ token: null });
    await mkdir(path.join(home, '.polo-test'));
    await writeFile(path.join(home, '.polo-test', 'token'), 'other\n');
    const client = new PoloClient({ socketPath, home, uid: UID, userDirName: '.polo-test' });
    after(() => client.destroy());
    fake.answer = () => '{"OK": 0}\n';
    assert.equal(client.tokenFile, path.join(home, '.polo-test', 'token'));
    await client.unpublishService('web');
    // Sent verbatim: the content is opaque to bindings (polod trims it).
    assert.equal(fake.received[0]?.json.Args?.['token'], 'other\n');
  });
});

describe('PoloClient errors', () => {
  it("turns {Error: reason} into a RemoteError carrying polod's reason", async () => {
    const { fake, client } = await setup();
    fake.answer = (req) =>
      req.json.Command === 'Publish' ? '{"Error": "Permission denied"}\n' : '{"Error": "Could not find service"}\n';
    await assert.rejects(client.publishService('web', { root: true }), (err: unknown) => {
      assert.ok(err instanceof RemoteError);
      assert.equal(err.message, 'Permission denied');
      assert.equal(err.code, 'MP_ERR_REMOTE');
      return true;
    });
    await assert.rejects(client.unpublishService('web'), { name: 'RemoteError', message: 'Could not find service' });
    // A refusal leaves the connection usable.
    assert.equal(fake.sockets.length, 1);
  });

  it('rejects bad arguments with InvalidArgumentError before sending anything', async () => {
    const { fake, client } = await setup();
    const bad: [string, () => Promise<unknown>][] = [
      ['empty id', () => client.publishService('')],
      ['non-string id', () => client.unpublishService(7 as unknown as string)],
      ['unicast group', () => client.publishService('web', { groups: ['10.0.0.1'] })],
      ['not an address', () => client.unpublishService('web', { groups: ['224.0.0'] })],
      ['params array', () => client.publishService('web', { params: [] as unknown as Record<string, never> })],
      ['NaN param', () => client.publishService('web', { params: { port: NaN } })],
      ['undefined param', () => client.publishService('web', { params: { a: undefined as unknown as null } })],
      ['non-boolean root', () => client.publishService('web', { root: 'yes' as unknown as boolean })],
    ];
    const circular: Record<string, unknown> = {};
    circular['self'] = circular;
    bad.push(['circular params', () => client.publishService('web', { params: circular as Record<string, never> })]);
    for (const [what, call] of bad) await assert.rejects(call(), InvalidArgumentError, what);
    assert.equal(fake.sockets.length, 0);
    assert.throws(() => new PoloClient({ timeout: -1 }), InvalidArgumentError);
    assert.throws(() => new PoloClient({ tls: { port: 70000 } }), InvalidArgumentError);
    assert.throws(() => new PoloClient({ tls: {}, socketPath: '/x' }), InvalidArgumentError);
    assert.throws(() => new PoloClient({ uid: -1 }), InvalidArgumentError);
  });

  it('says polod is not running, naming the socket, when there is no socket or nobody listens', async () => {
    const dir = path.join(base, 'nobody');
    await mkdir(dir, { recursive: true });
    const missing = path.join(dir, 'polod.sock');
    const client = new PoloClient({ stateDir: dir, home: dir, uid: UID });
    await assert.rejects(client.list(), (err: unknown) => {
      assert.ok(err instanceof PolodUnavailableError, String(err));
      assert.equal(err.message, `polod is not running (no socket at ${missing})`);
      assert.equal(err.code, 'MP_ERR_IO');
      return true;
    });
    const notSocket = path.join(dir, 'file.sock');
    await writeFile(notSocket, '');
    await assert.rejects(new PoloClient({ socketPath: notSocket }).list(), {
      name: 'IoError',
      message: `cannot connect to polod: ${notSocket} is not a socket`,
    });
  });

  it('says polod is not running when nothing listens on the TLS port', async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    await assert.rejects(new PoloClient({ tls: { port } }).requestToken(), {
      name: 'PolodUnavailableError',
      message: `polod is not running (nothing listens on 127.0.0.1:${port} (TLS))`,
    });
  });

  it('times out when polod does not answer, then works again on a new connection', async () => {
    // One deadline for both calls: the first waits it out (nothing answers), the second must be
    // answered within it, so it is generous rather than short.
    const { fake, client } = await setup({ client: { timeout: 1000 } });
    let silent = true;
    fake.answer = () => (silent ? { silent: true } : '{"OK": []}\n');
    await assert.rejects(client.list(), (err: unknown) => {
      assert.ok(err instanceof TimeoutError, String(err));
      assert.match(err.message, /did not answer List within 1000 ms/);
      return true;
    });
    // The late reply must never be taken for the next request's: that connection is dropped.
    await waitFor(() => fake.sockets[0]?.closed, { what: 'the timed-out connection to close' });
    silent = false;
    assert.deepEqual(await client.list(), []);
    assert.equal(fake.received.at(-1)?.conn, 1);
  });

  it('aborts a call in flight, a queued call, and refuses an already aborted signal without sending', async () => {
    const { fake, client } = await setup();
    fake.answer = (req) => (req.json.Args?.['service'] === 'hang' ? { silent: true } : '{"OK": "ok"}\n');
    const controller = new AbortController();
    const inFlight = client.publishService('hang', { signal: controller.signal });
    const queuedController = new AbortController();
    const queued = client.publishService('queued', { signal: queuedController.signal });
    await waitFor(() => fake.received.length === 1, { what: 'the first request' });
    queuedController.abort();
    await assert.rejects(queued, AbortedError);
    controller.abort(new Error('user gave up'));
    await assert.rejects(inFlight, (err: unknown) => {
      assert.ok(err instanceof AbortedError);
      assert.equal((err.cause as Error).message, 'user gave up');
      return true;
    });
    await assert.rejects(client.list({ signal: AbortSignal.abort() }), AbortedError);
    assert.deepEqual(
      fake.received.map((r) => r.json.Args?.['service']),
      ['hang'],
    );
    assert.equal(await client.publishService('after'), 'ok');
  });

  it('reports malformed or unexpected replies as UnexpectedReplyError', async () => {
    const { fake, client } = await setup();
    const replies = ['{"OK": 5}\n', '{"Nothing": 1}\n', '{"OK": 7}\n', '{"OK": [{"id": 1}]}\n', 'not json\n'];
    fake.answer = () => replies.shift() ?? '{"OK": 0}\n';
    await assert.rejects(client.publishService('web'), /reply to Publish is not an id/);
    await assert.rejects(client.unpublishService('web'), /has neither OK nor Error/);
    await assert.rejects(client.requestToken(), /neither "created" nor "existed"/);
    await assert.rejects(client.list(), /malformed entry/);
    await assert.rejects(client.list(), (err: unknown) => err instanceof UnexpectedReplyError && /not a JSON object/.test(err.message));
  });

  it('drops a connection on which polod sends a reply nobody asked for', async () => {
    const { fake, client } = await setup();
    fake.answer = () => '{"OK": "a"}\n{"OK": "b"}\n';
    assert.equal(await client.publishService('web'), 'a');
    await waitFor(() => fake.sockets[0]?.closed, { what: 'the out-of-step connection to close' });
    fake.answer = () => '{"OK": "c"}\n';
    assert.equal(await client.publishService('web'), 'c');
    assert.equal(fake.received.at(-1)?.conn, 1);
  });

  it('destroy() fails the call in flight with ClosedError', async () => {
    const { fake, client } = await setup();
    fake.answer = () => ({ silent: true });
    const call = client.list();
    await waitFor(() => fake.received.length === 1, { what: 'the request' });
    client.destroy();
    await assert.rejects(call, ClosedError);
  });
});

describe('PoloClient endpoints', () => {
  it("uses polod's socket paths: <stateDir>/polod.sock, else /run/marcopolo/polod.sock", () => {
    assert.equal(DEFAULT_POLOD_SOCKET, DEFAULT_SOCKET_PATH);
    assert.equal(polodSocketPath('/var/tmp/x'), publishPaths({ stateDir: '/var/tmp/x' }).socketPath);
    assert.deepEqual(new PoloClient().endpoint, { kind: 'unix', path: DEFAULT_SOCKET_PATH });
    assert.deepEqual(new PoloClient({ stateDir: '/s' }).endpoint, { kind: 'unix', path: '/s/polod.sock' });
    assert.deepEqual(new PoloClient({ tls: {} }).endpoint, { kind: 'tls', host: '127.0.0.1', port: 1390 });
    assert.equal(new PoloClient().timeout, DEFAULT_POLO_TIMEOUT_MS);
    assert.equal(DEFAULT_POLO_TIMEOUT_MS, 4000);
  });

  it('speaks TLS without checking the self-signed certificate, as the reference bindings', async () => {
    const dir = path.join(base, 'tls');
    const { key, cert } = await loadOrCreateCertificate(path.join(dir, 'certs'));
    const fake = new FakePolod();
    const port = await fake.listenTls(key, cert);
    after(() => fake.close());
    fake.answer = (req) => (req.json.Command === 'List' ? '{"OK": []}\n' : '{"OK": 1}\n');
    const client = new PoloClient({ tls: { port }, home: dir, uid: UID });
    assert.deepEqual(await client.list(), []);
    assert.equal(await client.requestToken(), 'existed');
    assert.equal(fake.sockets.length, 1);
    await client.close();
  });
});
