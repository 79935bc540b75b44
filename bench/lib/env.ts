/**
 * The benchmarks' environment: where the compiled programs are, namespace LANs that are always
 * torn down, polod and helper processes started inside them, and temporary folders.
 *
 * Every datagram stays on this machine: benchmarks only run inside namespaces made by the test
 * harness (test/helpers/netns.ts), which have no route out. LAN names start with `bench` and
 * use subnets 150-199, so they never collide with the test suites' LANs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLan, netnsAvailable, type Lan, type LanHost } from '../../test/helpers/netns.js';
import { runProc, type Proc } from '../../test/helpers/proc.js';

/** The repository root (this file runs as dist/bench/lib/env.js). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** A compiled file under dist/, by its path relative to dist/. */
export function distFile(relative: string): string {
  return path.join(REPO_ROOT, 'dist', relative);
}

/** The polod command, as compiled by `npm run build`. */
export const POLOD_JS = distFile('src/cli/polod.js');
/** The marco command, as compiled by `npm run build`. */
export const MARCO_JS = distFile('bin/marco.cjs');

/** A child program of the benchmarks (bench/child/<name>.ts), compiled. */
export function childScript(name: string): string {
  return distFile(`bench/child/${name}.js`);
}

/** Throws a clear message when a program the benchmark runs has not been built. */
export function requireBuilt(file: string, what: string): void {
  if (!existsSync(file)) throw new Error(`${what} is not built (${path.relative(REPO_ROOT, file)} missing): run \`npm run build\``);
}

/** Throws when this machine cannot make network namespaces (benchmarks need root on Linux). */
export function requireNamespaces(): void {
  const r = netnsAvailable();
  if (!r.ok) throw new Error(`benchmarks run inside network namespaces, which are unavailable here: ${r.why}`);
}

/**
 * Runs `fn` on a fresh namespace LAN and always destroys it afterwards (its processes are killed
 * first), whether `fn` succeeds or throws. The harness also kills everything on process exit.
 */
export async function withLan<T>(opts: { name: string; hosts: number; subnet: number }, fn: (lan: Lan) => Promise<T>): Promise<T> {
  if (!opts.name.startsWith('bench')) throw new Error(`benchmark LAN names start with 'bench' (got ${opts.name})`);
  if (opts.subnet < 150 || opts.subnet > 199) throw new Error(`benchmark subnets are 150-199 (got ${opts.subnet})`);
  requireNamespaces();
  const lan = await createLan(opts);
  try {
    return await fn(lan);
  } finally {
    await lan.destroy();
  }
}

/** Runs `fn` with a fresh temporary folder, removed afterwards. */
export async function withTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `${prefix}-`));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** One service file's content (docs/protocol.md §3). */
export interface ServiceSpec {
  readonly id: string;
  readonly params: Record<string, unknown>;
}

/** Writes one service file per spec into `dir` (file name = id, no extension, as the reference). */
export async function writeServices(dir: string, services: readonly ServiceSpec[]): Promise<void> {
  // In batches: 10,000 concurrent writes would exhaust file descriptors.
  for (let i = 0; i < services.length; i += 256) {
    await Promise.all(
      services.slice(i, i + 256).map((s) => writeFile(path.join(dir, s.id), `${JSON.stringify({ id: s.id, params: s.params })}\n`)),
    );
  }
}

/**
 * `taskset -c <cpu>` (taskset execs, so the pid stays the program's), or nothing when `cpu` is
 * undefined or the machine has a single CPU.
 */
export function pinTo(cpu: number | undefined): string[] {
  const cpus = os.availableParallelism();
  return cpu === undefined || cpus < 2 ? [] : ['taskset', '-c', String(cpu % cpus)];
}

/** How to start polod for a benchmark. */
export interface PolodOptions {
  /** Every flag after the program (see the polod CLI); `--log-level` included. */
  readonly args: readonly string[];
  /** The polod program (default: this checkout's build, {@link POLOD_JS}). */
  readonly program?: string;
  /** Extra node flags (e.g. --cpu-prof). */
  readonly nodeFlags?: readonly string[];
  /** The CPU to pin polod to (see {@link pinTo}). */
  readonly cpu?: number;
  /** Run polod with this folder standing in for root's home (see {@link inScratchHome}). */
  readonly scratchHome?: string;
}

/**
 * The node flags of `program`'s `#!/usr/bin/env -S node <flags>` line: polod as installed runs
 * with them, so the benchmarks do too.
 */
export function shebangNodeFlags(program: string): string[] {
  const first = readFileSync(program, 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\/usr\/bin\/env -S node\s+(.*)$/.exec(first);
  return m?.[1] === undefined ? [] : m[1].trim().split(/\s+/);
}

/** Starts polod on `host`. The caller waits for readiness in the way its log level allows. */
export function spawnPolod(host: LanHost, opts: PolodOptions): Proc {
  const program = opts.program ?? POLOD_JS;
  requireBuilt(program, 'polod');
  const argv = [process.execPath, ...shebangNodeFlags(program), ...(opts.nodeFlags ?? []), program, ...opts.args];
  return host.spawn([...pinTo(opts.cpu), ...(opts.scratchHome === undefined ? argv : inScratchHome(opts.scratchHome, argv))]);
}

const stateDirFlag = new Map<string, boolean>();

/**
 * `--state-dir <dir>/state` when this polod has that flag: polod then keeps its own files (the
 * binding API's secret, published services) in the benchmark's temporary folder instead of
 * /etc/marcopolo on this machine. Older builds without the flag get nothing.
 */
export async function polodStateArgs(dir: string, program = POLOD_JS): Promise<string[]> {
  let hasFlag = stateDirFlag.get(program);
  if (hasFlag === undefined) {
    requireBuilt(program, 'polod');
    const res = await runProc([process.execPath, program, '--help'], { timeoutMs: 10_000 });
    hasFlag = res.stdout.includes('--state-dir');
    stateDirFlag.set(program, hasFlag);
  }
  return hasFlag ? ['--state-dir', path.join(dir, 'state')] : [];
}

/**
 * `argv` run in a private mount namespace in which `home` is bind-mounted over root's home
 * (as test/integration/polo-cli-publish.test.ts does): a polod run so writes the tokens it is
 * asked for into `home`, never into this machine's `~root/.polo`. The mount dies with the
 * process; `sh` execs, so the pid stays the program's.
 */
export function inScratchHome(home: string, argv: readonly string[]): string[] {
  const script = 'mount --bind "$1" "$2" && shift 2 && exec "$@"';
  return ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', home, rootHome(), ...argv];
}

/** This process's home (root's: benchmarks run as root), from the user database. */
export function rootHome(): string {
  return os.userInfo().homedir;
}

/** Waits for polod's 'polod started' log record (needs --log-level info or lower). */
export async function waitPolodStarted(proc: Proc, timeoutMs = 10_000): Promise<void> {
  await proc.waitForJsonLog((r) => r['msg'] === 'polod started', "polod's 'polod started' log line", timeoutMs);
}

/** One polod per host of a benchmark grid, and the services folder each reads. */
export interface Grid {
  readonly polods: Proc[];
  readonly servicesDirs: string[];
}

/**
 * Starts one polod per host in `hosts`, each with its own state and services folders under
 * `dir` (the publish API's socket and secret live there) and the services `services(host)`
 * gives; resolves once every one has started (twenty daemons starting at once on a small
 * machine: a minute is allowed).
 */
export async function startGrid(
  hosts: readonly LanHost[],
  opts: { program: string; dir: string; group: string; port: number; services?: (host: LanHost) => readonly ServiceSpec[] },
): Promise<Grid> {
  const polods: Proc[] = [];
  const servicesDirs: string[] = [];
  for (const host of hosts) {
    const own = path.join(opts.dir, host.name);
    const services = path.join(own, 'services');
    await mkdir(services, { recursive: true });
    if (opts.services) await writeServices(services, opts.services(host));
    servicesDirs.push(services);
    polods.push(
      spawnPolod(host, {
        program: opts.program,
        args: [
          ...['--group', opts.group, '--port', String(opts.port), '--interface', host.address, '--hostname', `polo-${host.index}`],
          ...['--services-dir', services, '--log-level', 'info'],
          ...(await polodStateArgs(own, opts.program)),
        ],
      }),
    );
  }
  await Promise.all(polods.map((p) => waitPolodStarted(p, 60_000)));
  return { polods, servicesDirs };
}

/**
 * Runs a bench/child program on `host` with one JSON argument and returns the JSON object it
 * prints as its last stdout line. Throws with the child's stderr when it fails.
 */
export async function runChild<T>(host: LanHost, name: string, config: unknown, opts: { timeoutMs: number; cpu?: number }): Promise<T> {
  const script = childScript(name);
  requireBuilt(script, `bench/child/${name}.ts`);
  const res = await host.run([...pinTo(opts.cpu), process.execPath, script, JSON.stringify(config)], { timeoutMs: opts.timeoutMs });
  const last = res.stdout.trim().split('\n').pop() ?? '';
  if (res.code !== 0 || !last.startsWith('{')) {
    const why = res.timedOut ? `timed out after ${opts.timeoutMs} ms` : `exit code ${res.code}, signal ${res.signal}`;
    throw new Error(`${name} failed on ${host.ns} (${why}):\n${res.stderr.trim()}`);
  }
  return JSON.parse(last) as T;
}

/** Stops `proc` politely (SIGTERM, then SIGKILL) and waits for it. */
export async function stopProc(proc: Proc): Promise<void> {
  await proc.stop(2000);
}
