/**
 * The publish API's listeners over real sockets (TLS on 127.0.0.1 and a Unix socket in a
 * temporary folder) with a stand-in handler: framing as clients send it, one reply per request
 * in order, and the limits that keep one bad client from hurting the others.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { lstat, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import tls from 'node:tls';
import { loadOrCreateCertificate, type KeyAndCertificate } from '../../src/auth/certificate.js';
import type { PublishReply } from '../../src/publish/handler.js';
import { PublishServer, type ServerLimits } from '../../src/publish/server.js';
import { waitFor } from '../helpers/wait.js';
import { ReplyLineClient } from '../helpers/reply-lines.js';

let base: string;
let pem: KeyAndCertificate;
let counter = 0;

before(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'mp-pubs-'));
  pem = await loadOrCreateCertificate(path.join(base, 'certs'));
});
after(async () => {
  await rm(base, { recursive: true, force: true });
});

/** The stand-in handler: `{"n": x}` → `{"OK": x}`; `{"wait": k}` waits until `release(k)`. */
class EchoHandler {
  private readonly gates = new Map<string, () => void>();
  private readonly waiting = new Map<string, Promise<void>>();
  seen = 0;

  readonly handle = async (frame: Uint8Array): Promise<PublishReply> => {
    this.seen++;
    let doc: Record<string, unknown>;
    try {
      doc = JSON.parse(Buffer.from(frame).toString('utf8')) as Record<string, unknown>;
    } catch {
      return { Error: 'Malformed JSON' };
    }
    if (typeof doc['wait'] === 'string') await this.gate(doc['wait']);
    // A reply JSON.stringify cannot encode, as an oversized List once was.
    if (doc['unencodable'] === true) return { OK: 1n as unknown as null };
    if (typeof doc['big'] === 'number') return { OK: 'x'.repeat(doc['big']) };
    return { OK: (doc['n'] as number | undefined) ?? null };
  };

  gate(key: string): Promise<void> {
    let p = this.waiting.get(key);
    if (!p) {
      p = new Promise<void>((resolve) => this.gates.set(key, resolve));
      this.waiting.set(key, p);
    }
    return p;
  }

  release(key: string): void {
    void this.gate(key);
    this.gates.get(key)?.();
  }
}

interface Started {
  server: PublishServer;
  handler: EchoHandler;
  socketPath: string;
  port: number;
}

async function start(t: TestContext, limits: Partial<ServerLimits> = {}): Promise<Started> {
  const handler = new EchoHandler();
  const socketPath = path.join(base, `s${++counter}.sock`);
  const server = new PublishServer({
    handle: handler.handle,
    tls: { host: '127.0.0.1', port: 0, key: pem.key, cert: pem.cert },
    socketPath,
    limits,
  });
  await server.start();
  t.after(() => server.stop());
  const port = server.tlsAddress?.port;
  assert.ok(port !== undefined);
  return { server, handler, socketPath, port };
}

describe('PublishServer framing', () => {
  it('answers reference-style writes over TLS: one object per write, no newline', async (t) => {
    const { port } = await start(t);
    const c = await ReplyLineClient.tls(port);
    c.send('{"Command": "Register", "n": 1}');
    assert.deepEqual(await c.replies(1), [{ OK: 1 }]);
    c.send('{"n": 2}');
    assert.deepEqual(await c.replies(2), [{ OK: 1 }, { OK: 2 }]);
    c.close();
  });

  it('answers two requests sent in one write, and one request sent in pieces', async (t) => {
    const { port, socketPath } = await start(t);
    for (const c of [await ReplyLineClient.tls(port), await ReplyLineClient.unix(socketPath)]) {
      c.send('{"n":1}{"n":2}\n{"n":');
      c.send('3}');
      c.send('{"n":"a\\"}');
      c.send('b"}\n');
      assert.deepEqual(await c.replies(4), [{ OK: 1 }, { OK: 2 }, { OK: 3 }, { OK: 'a"}b' }]);
      c.close();
    }
  });

  it('replies in request order even when an earlier request is slow', async (t) => {
    const { socketPath, handler } = await start(t);
    const c = await ReplyLineClient.unix(socketPath);
    c.send('{"n":1,"wait":"one"}\n{"n":2}\n');
    await waitFor(() => handler.seen === 1, { what: 'the first request to reach the handler' });
    handler.release('one');
    assert.deepEqual(await c.replies(2), [{ OK: 1 }, { OK: 2 }]);
    c.close();
  });

  it('answers garbage with one error and goes on', async (t) => {
    const { socketPath } = await start(t);
    const c = await ReplyLineClient.unix(socketPath);
    c.send('hello\n{"n":1}\n');
    assert.deepEqual(await c.replies(2), [{ Error: 'Malformed JSON' }, { OK: 1 }]);
    c.close();
  });

  it('creates the socket file with mode 0666', async (t) => {
    const { socketPath } = await start(t);
    assert.equal((await stat(socketPath)).mode & 0o777, 0o666);
  });
});

describe('PublishServer limits', () => {
  it('refuses an oversized request and closes the connection', async (t) => {
    const { socketPath, port } = await start(t, { maxRequestBytes: 1024 });
    for (const c of [await ReplyLineClient.unix(socketPath), await ReplyLineClient.tls(port)]) {
      c.send(`{"n":1}{"big":"${'x'.repeat(4096)}"}{"n":2}`);
      await c.closed;
      assert.deepEqual(
        c.lines.map((l) => JSON.parse(l) as unknown),
        [{ OK: 1 }, { Error: 'Request too large' }],
      );
    }
  });

  it('closes a half-sent request after the deadline, serving others meanwhile and keeping idle clients', async (t) => {
    const { socketPath, port } = await start(t, { requestTimeoutMs: 300 });
    const idle = await ReplyLineClient.unix(socketPath);
    idle.send('{"n":0}\n');
    assert.deepEqual(await idle.replies(1), [{ OK: 0 }]);
    const stalled = await ReplyLineClient.tls(port);
    stalled.send('{"Command": "Publish", "Args": {');
    const other = await ReplyLineClient.unix(socketPath);
    other.send('{"n":1}\n');
    assert.deepEqual(await other.replies(1), [{ OK: 1 }]);
    await stalled.closed;
    assert.deepEqual(stalled.lines.map((l) => JSON.parse(l) as unknown), [{ Error: 'Request timed out' }]);
    // The idle client has now been idle longer than the deadline: still served.
    assert.equal(idle.isClosed, false);
    idle.send('{"n":2}\n');
    assert.deepEqual(await idle.replies(2), [{ OK: 0 }, { OK: 2 }]);
    idle.close();
    other.close();
  });

  it('closes a TCP connection that never completes the TLS handshake, or speaks plain text', async (t) => {
    const { port, socketPath } = await start(t, { requestTimeoutMs: 300 });
    const silent = net.connect({ host: '127.0.0.1', port });
    silent.on('error', () => undefined);
    const plain = net.connect({ host: '127.0.0.1', port }, () => plain.write('{"Command": "List"}\n'));
    plain.on('error', () => undefined);
    await Promise.all([silent, plain].map((s) => new Promise((resolve) => s.once('close', resolve))));
    const c = await ReplyLineClient.unix(socketPath);
    c.send('{"n":1}\n');
    assert.deepEqual(await c.replies(1), [{ OK: 1 }]);
    c.close();
  });

  it('makes room by closing the connection idle the longest; refuses only when none is idle', async (t) => {
    const { socketPath, port, server, handler } = await start(t, { maxConnections: 4 });
    const kept: ReplyLineClient[] = [];
    for (let i = 0; i < 4; i++) {
      const c = i % 2 === 0 ? await ReplyLineClient.unix(socketPath) : await ReplyLineClient.tls(port);
      c.send(`{"n":${i}}`);
      assert.deepEqual(await c.replies(1), [{ OK: i }]);
      kept.push(c);
    }
    // A fifth connection: the first one, idle the longest, is closed for it.
    const fifth = await ReplyLineClient.unix(socketPath);
    fifth.send('{"n":5}\n');
    assert.deepEqual(await fifth.replies(1), [{ OK: 5 }]);
    await kept[0]?.closed;
    assert.equal(server.stats.evicted, 1);
    assert.deepEqual([kept[1]?.isClosed, kept[2]?.isClosed, kept[3]?.isClosed], [false, false, false]);
    // All four busy: nothing idle to close, so the next connection is refused.
    const busy = [kept[1], kept[2], kept[3], fifth] as ReplyLineClient[];
    busy.forEach((c, i) => c.send(`{"n":${10 + i},"wait":"hold"}\n`));
    await waitFor(() => handler.seen === 9, { what: 'the four requests to reach the handler' });
    const refused = await new Promise<string>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
      let data = '';
      s.on('data', (d: Buffer) => (data += d.toString()));
      s.on('error', () => undefined);
      s.once('close', () => resolve(data));
    });
    assert.equal(refused, '');
    assert.equal(server.stats.refused, 1);
    handler.release('hold');
    for (const [i, c] of busy.entries()) assert.deepEqual((await c.replies(2))[1], { OK: 10 + i });
    for (const c of busy) c.close();
    await Promise.all(busy.map((c) => c.closed));
    await waitFor(() => server.connectionCount === 0, { what: 'the server to count the closed connections' });
  });

  it('limits the connections of one user, closing their own idle one first, and not the others', async (t) => {
    const { socketPath, port, server } = await start(t, { maxConnectionsPerUser: 2 });
    // This process's TCP connections belong to its uid (the kernel says so); Unix-socket ones to nobody known.
    const unix = await ReplyLineClient.unix(socketPath);
    unix.send('{"n":0}\n');
    assert.deepEqual(await unix.replies(1), [{ OK: 0 }]);
    const mine: ReplyLineClient[] = [];
    for (let i = 1; i <= 3; i++) {
      const c = await ReplyLineClient.tls(port);
      c.send(`{"n":${i}}`);
      assert.deepEqual(await c.replies(1), [{ OK: i }]);
      mine.push(c);
    }
    await mine[0]?.closed;
    assert.equal(server.stats.evicted, 1);
    assert.deepEqual([unix.isClosed, mine[1]?.isClosed, mine[2]?.isClosed], [false, false, false]);
    for (const c of [unix, ...mine]) c.close();
  });

  it('closes a connection idle for longer than the idle timeout', async (t) => {
    const { socketPath, server } = await start(t, { idleTimeoutMs: 200 });
    const c = await ReplyLineClient.unix(socketPath);
    c.send('{"n":1}\n');
    assert.deepEqual(await c.replies(1), [{ OK: 1 }]);
    await c.closed;
    assert.equal(server.stats.idleClosed, 1);
  });

  it('cuts off a peer that does not read its reply, which would otherwise hold its slot for ever', async (t) => {
    const { socketPath, server } = await start(t, { requestTimeoutMs: 300 });
    const reader = await ReplyLineClient.unix(socketPath);
    reader.socket.pause();
    reader.send('{"big":16000000}\n');
    // A paused client does not see the close until it reads again: watch the server instead.
    await waitFor(() => server.connectionCount === 0, { what: 'polod to cut off the peer that does not read' });
    assert.equal(server.stats.timedOut, 1);
    reader.close();
  });

  it('closes only the connection whose reply cannot be written, and keeps serving', async (t) => {
    const { socketPath, server } = await start(t);
    const other = await ReplyLineClient.unix(socketPath);
    const bad = await ReplyLineClient.unix(socketPath);
    bad.send('{"n":1}\n{"unencodable":true}\n{"n":3}\n');
    await bad.closed;
    assert.deepEqual(bad.lines.map((l) => JSON.parse(l) as unknown), [{ OK: 1 }]);
    assert.equal(server.stats.replyFailed, 1);
    other.send('{"n":2}\n');
    assert.deepEqual(await other.replies(1), [{ OK: 2 }]);
    other.close();
  });

  it('survives a client that floods requests without reading, and answers them all in order', async (t) => {
    const { socketPath } = await start(t, { maxQueuedRequests: 4 });
    const flood = await ReplyLineClient.unix(socketPath);
    flood.socket.pause();
    const count = 3000;
    flood.send(Array.from({ length: count }, (_, i) => `{"n":${i}}\n`).join(''));
    const other = await ReplyLineClient.unix(socketPath);
    other.send('{"n":-1}\n');
    assert.deepEqual(await other.replies(1), [{ OK: -1 }]);
    flood.socket.resume();
    const replies = await flood.replies(count);
    assert.deepEqual(replies, Array.from({ length: count }, (_, i) => ({ OK: i })));
    flood.close();
    other.close();
  });
});

describe('PublishServer lifecycle', () => {
  it('stop lets the request in progress finish, closes idle connections and removes the socket', async (t) => {
    const { server, socketPath, handler, port } = await start(t);
    const idle = await ReplyLineClient.tls(port);
    const busy = await ReplyLineClient.unix(socketPath);
    busy.send('{"n":5,"wait":"stop"}\n');
    await waitFor(() => handler.seen === 1, { what: 'the request to reach the handler' });
    const stopped = server.stop();
    handler.release('stop');
    await stopped;
    assert.deepEqual(await busy.replies(1), [{ OK: 5 }]);
    await Promise.all([busy.closed, idle.closed]);
    await assert.rejects(lstat(socketPath), { code: 'ENOENT' });
    await server.stop(); // idempotent
  });

  it('replaces a stale socket file left by a killed process', async (t) => {
    const file = path.join(base, 'stale.sock');
    // A child that listens and is killed: its socket file stays behind, with nobody listening.
    const res = spawnSync(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(file)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ]);
    assert.equal(res.signal, 'SIGKILL');
    assert.ok((await lstat(file)).isSocket());
    const server = new PublishServer({ handle: new EchoHandler().handle, socketPath: file });
    await server.start();
    t.after(() => server.stop());
    const c = await ReplyLineClient.unix(file);
    c.send('{"n":1}\n');
    assert.deepEqual(await c.replies(1), [{ OK: 1 }]);
    c.close();
  });

  it('does not take over a socket another process answers on, nor remove a non-socket', async (t) => {
    const { socketPath } = await start(t);
    const second = new PublishServer({ handle: new EchoHandler().handle, socketPath });
    await assert.rejects(second.start(), /another process is listening on/);
    // The first server still works.
    const c = await ReplyLineClient.unix(socketPath);
    c.send('{"n":1}\n');
    assert.deepEqual(await c.replies(1), [{ OK: 1 }]);
    c.close();
    const file = path.join(base, 'not-a-socket');
    await writeFile(file, 'keep me');
    await assert.rejects(new PublishServer({ handle: new EchoHandler().handle, socketPath: file }).start(), /is not a socket/);
    assert.equal(await readFile(file, 'utf8'), 'keep me');
  });

  it('fails to start when the TLS port is taken, leaving no socket file', async (t) => {
    const { port } = await start(t);
    const socketPath = path.join(base, 'second.sock');
    const second = new PublishServer({
      handle: new EchoHandler().handle,
      tls: { host: '127.0.0.1', port, key: pem.key, cert: pem.cert },
      socketPath,
    });
    await assert.rejects(second.start(), new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: address already in use`));
    await assert.rejects(lstat(socketPath), { code: 'ENOENT' });
  });
});
