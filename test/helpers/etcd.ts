/**
 * A real etcd cluster (Debian's etcd-server package, scripts/install-test-deps.sh) with one
 * member per namespace host, for the grid registry tests and benchmarks. Data folders live in a
 * per-run temporary folder, deleted by `destroy`; every member is SIGKILLed by `destroy` (and by
 * the LAN's own teardown, which kills whatever it spawned). Short heartbeat and election
 * settings, so leaders are elected and leases expire in test time.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { LanHost } from './netns.js';
import type { Proc } from './proc.js';
import type { TestPki } from './test-pki.js';
import { waitFor } from './wait.js';

const ETCD_CLIENT_PORT = 2379;
const ETCD_PEER_PORT = 2380;

/** Whether the etcd binary is installed (the suite requires it; the check names the package). */
export function etcdAvailable(): boolean {
  try {
    execFileSync('etcd', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export interface EtcdCluster {
  /** Client URLs, comma-separated, as `--registry` takes them. */
  readonly endpoints: string;
  /** Starts member i (0-based) again on its data folder. */
  start(i: number): void;
  /** SIGKILLs member i and waits until it is gone. */
  kill(i: number): Promise<void>;
  /** Waits until every running member reports healthy (a leader elected, quorum). */
  waitHealthy(from: LanHost, timeoutMs?: number): Promise<void>;
  /** Turns on etcd's authentication with user `root` and `password` (through member 0). */
  enableAuth(from: LanHost, password: string): Promise<void>;
  /** Kills every member and deletes the data folders. Idempotent. */
  destroy(): Promise<void>;
}

/**
 * Starts one member on each of `members` (the caller waits with `waitHealthy`). With `tls`, clients
 * reach it by https only, with a certificate signed by the PKI's CA (etcd's --client-cert-auth).
 */
export async function startEtcdCluster(members: readonly LanHost[], opts: { token: string; tls?: TestPki }): Promise<EtcdCluster> {
  const dataRoot = await mkdtemp(path.join(os.tmpdir(), 'mp-etcd-'));
  const name = (i: number): string => `m${i}`;
  const tls = opts.tls;
  const scheme = tls === undefined ? 'http' : 'https';
  const clientUrl = (h: LanHost): string => `${scheme}://${h.address}:${ETCD_CLIENT_PORT}`;
  const initialCluster = members.map((h, i) => `${name(i)}=http://${h.address}:${ETCD_PEER_PORT}`).join(',');
  const procs: Array<Proc | undefined> = members.map(() => undefined);
  const start = (i: number): void => {
    const h = members[i];
    if (h === undefined) throw new Error(`no etcd member ${i}`);
    const client = clientUrl(h);
    const peer = `http://${h.address}:${ETCD_PEER_PORT}`;
    procs[i] = h.spawn([
      'etcd',
      '--name', name(i),
      '--data-dir', path.join(dataRoot, name(i)),
      '--listen-client-urls', client,
      '--advertise-client-urls', client,
      '--listen-peer-urls', peer,
      '--initial-advertise-peer-urls', peer,
      '--initial-cluster', initialCluster,
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', opts.token,
      // etcd's default heartbeat, a short election timeout: a lost leader is replaced within
      // about a second, and a loaded machine (CI runs two files at once) rarely misses beats.
      '--heartbeat-interval', '100',
      '--election-timeout', '1000',
      '--logger', 'zap',
      '--log-level', 'error',
      ...(tls === undefined ? [] : ['--cert-file', tls.serverCert, '--key-file', tls.serverKey, '--trusted-ca-file', tls.ca, '--client-cert-auth']),
    ]);
  };
  const kill = async (i: number): Promise<void> => {
    const p = procs[i];
    procs[i] = undefined;
    if (p === undefined) return;
    p.kill('SIGKILL');
    await p.exited;
  };
  let destroyed = false;
  const cluster: EtcdCluster = {
    endpoints: members.map(clientUrl).join(','),
    start,
    kill,
    async waitHealthy(from, timeoutMs = 30_000) {
      const running = members.filter((_, i) => procs[i] !== undefined);
      const urls = JSON.stringify(running.map((h) => `${clientUrl(h)}/health`));
      // Over TLS, node:https with the client certificate (fetch takes no certificates).
      const get =
        tls === undefined
          ? `(u) => fetch(u, { signal: AbortSignal.timeout(1000) }).then((r) => r.json())`
          : `(u) => new Promise((ok, fail) => { const fs = require('node:fs'); const req = require('node:https').get(u, { ca: fs.readFileSync(${JSON.stringify(tls.ca)}), cert: fs.readFileSync(${JSON.stringify(tls.clientCert)}), key: fs.readFileSync(${JSON.stringify(tls.clientKey)}), timeout: 1000 }, (r) => { let t = ''; r.on('data', (c) => (t += c)); r.on('end', () => { try { ok(JSON.parse(t)); } catch (e) { fail(e); } }); }); req.on('error', fail); req.on('timeout', () => req.destroy(new Error('timeout'))); })`;
      const script = `Promise.all(${urls}.map(${get})).then((all) => process.exit(all.every((j) => j.health === 'true') ? 0 : 1), () => process.exit(1))`;
      await waitFor(
        async () => ((await from.run([process.execPath, '-e', script], { timeoutMs: 5000 })).code === 0 ? true : undefined),
        { what: `etcd members ${running.map((h) => h.address).join(', ')} healthy`, timeoutMs, intervalMs: 100 },
      );
    },
    async enableAuth(from, password) {
      const first = members[0];
      if (first === undefined) throw new Error('no etcd member');
      const url = clientUrl(first);
      // The gateway's auth calls, in order: a root user with the root role, then auth on.
      const steps = [
        ['/v3/auth/user/add', { name: 'root', password }],
        ['/v3/auth/role/add', { name: 'root' }],
        ['/v3/auth/user/grant', { user: 'root', role: 'root' }],
        ['/v3/auth/enable', {}],
      ];
      const script = `(async () => { for (const [p, b] of ${JSON.stringify(steps)}) { const r = await fetch(${JSON.stringify(url)} + p, { method: 'POST', body: JSON.stringify(b) }); const j = await r.json(); if (!r.ok || j.error) throw new Error(p + ': ' + JSON.stringify(j)); } })().then(() => process.exit(0), (e) => { console.error(e.message); process.exit(1); })`;
      const res = await from.run([process.execPath, '-e', script], { timeoutMs: 10_000 });
      if (res.code !== 0) throw new Error(`enabling etcd authentication failed: ${res.stderr}`);
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      await Promise.all(members.map((_, i) => kill(i)));
      await rm(dataRoot, { recursive: true, force: true });
    },
  };
  try {
    members.forEach((_, i) => start(i));
  } catch (err) {
    await cluster.destroy();
    throw err;
  }
  return cluster;
}
