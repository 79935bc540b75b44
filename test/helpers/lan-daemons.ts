/**
 * The built `polod` and `marco` commands run as processes inside a namespace LAN (netns.ts), for
 * the `lan-*` integration tests: one LAN per test file (destroyed in `after`, even on failure),
 * polods with their own services folder and pino log, marco runs parsed from `--json`.
 *
 * Every polod joins and sends on its host's LAN address (`--interface`) and is named `h<i>`
 * (`--hostname`), since all namespaces share the machine's host name.
 */
import { after } from 'node:test';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gridKey, type GridKey } from '../../src/auth/gridAuth.js';
import { createLan, type Lan, type LanHost, type LanOptions } from './netns.js';
import type { ExitInfo, Proc, RunResult } from './proc.js';
import { waitFor } from './wait.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The compiled commands (this file runs as dist/test/helpers/lan-daemons.js). */
export const POLOD = path.resolve(here, '..', '..', 'src', 'cli', 'polod.js');
/** The library's entry (package.json's main), for programs a test runs on a host. */
export const LIBRARY = path.resolve(here, '..', '..', 'src', 'index.js');
/** `marco` as installed: the bundle package.json's bin runs (scripts/bundle-marco.mjs). */
export const MARCO = path.resolve(here, '..', '..', 'bin', 'marco.cjs');

/** How long a polod may take to start (a failure deadline, not a measurement). */
const START_TIMEOUT_MS = 20_000;

/** The reference's two default groups. */
export const GROUP_112 = '224.0.0.112';
export const GROUP_113 = '224.0.0.113';

/** A pino record as polod writes it on stderr. */
export type LogRecord = Record<string, unknown>;

/** Predicate on a pino record: its `msg`, and optionally some fields equal to given values. */
export function logIs(msg: string, fields: Record<string, unknown> = {}): (r: LogRecord) => boolean {
  return (r) => r['msg'] === msg && Object.entries(fields).every(([k, v]) => r[k] === v);
}

/** A test file's LAN: made on first use, destroyed (with every temporary folder) in `after`. */
export interface LanFixture {
  /** The LAN, created by the first call (later calls get the same one). */
  lan(): Promise<Lan>;
  /** A fresh temporary folder, removed in `after`. */
  tmpDir(): Promise<string>;
}

/**
 * Registers the file's `after` hook and returns the fixture. Call at module level; call
 * `requireNetns(t)` in each test before `lan()`.
 */
export function lanFixture(opts: LanOptions): LanFixture {
  let made: Promise<Lan> | undefined;
  const dirs: string[] = [];
  after(async () => {
    try {
      if (made) await (await made.catch(() => undefined))?.destroy();
    } finally {
      await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
    }
  });
  return {
    lan: () => (made ??= createLan(opts)),
    tmpDir: async () => {
      const dir = await mkdtemp(path.join(os.tmpdir(), `mp-${opts.name}-`));
      dirs.push(dir);
      return dir;
    },
  };
}

/** Options of {@link startPolod}. */
export interface PolodOptions {
  /** `--group` flags (default: none, i.e. polod's defaults 224.0.0.112 and 224.0.0.113). */
  groups?: readonly string[];
  /** `--interface` flags (default: the host's LAN address); [] passes none (the system's choice). */
  interfaces?: readonly string[];
  /** `--hostname` (default: the host's name, `h<i>`). */
  hostname?: string;
  /** `--params` (node params; `--hostname` is applied over them). */
  params?: Record<string, unknown>;
  /** Service files to write before the start: file name → object (written as JSON) or raw text. */
  services?: Record<string, unknown>;
  /** Text of a polo.cfg, passed with `--config`. */
  config?: string;
  /** `--log-level` (default info). */
  logLevel?: string;
  /**
   * Wait for 'joined group' on every served group and every `interfaces` address before resolving
   * (default true; never with `interfaces: []`, whose joins log no interface).
   */
  waitJoined?: boolean;
  /** Environment variables set for polod (over this process's). */
  env?: Record<string, string>;
  /** More flags, after the others (e.g. `--key FILE`). */
  extraArgs?: readonly string[];
}

/** A running polod in one namespace. */
export interface Polod {
  readonly host: LanHost;
  readonly proc: Proc;
  /** Its services folder (files written there are read on reload). */
  readonly servicesDir: string;
  /** Its `--state-dir` (the publish API's socket is `<stateDir>/polod.sock`). */
  readonly stateDir: string;
  /** Writes a service file atomically (via a `.tmp` file polod never reads, then a rename). */
  writeService(name: string, content: unknown): Promise<void>;
  /** Deletes a service file. */
  removeService(name: string): Promise<void>;
  /** Sends `signal`, then waits for the 'services reloaded' record it causes; returns it. */
  reload(signal?: 'SIGUSR1' | 'SIGHUP'): Promise<LogRecord>;
  /** The pino records received so far that `match`. */
  logs(match: (r: LogRecord) => boolean): LogRecord[];
  /** Waits for a record matching `match` (already received or to come). */
  waitLog(match: (r: LogRecord) => boolean, what: string, timeoutMs?: number): Promise<LogRecord>;
  /** True while the process has not exited. */
  alive(): boolean;
  /** SIGTERM (SIGKILL after a grace period); resolves once it has exited. */
  stop(): Promise<ExitInfo>;
}

/**
 * Starts the built polod on `host` with its own services and state folders; resolves once it
 * serves (started, joined) and handles its signals.
 */
export async function startPolod(fixture: LanFixture, host: LanHost, opts: PolodOptions = {}): Promise<Polod> {
  const dir = await fixture.tmpDir();
  const servicesDir = path.join(dir, 'services');
  await mkdir(servicesDir);
  const writeService = async (name: string, content: unknown): Promise<void> => {
    const file = path.join(servicesDir, name);
    await writeFile(`${file}.tmp`, typeof content === 'string' ? content : JSON.stringify(content));
    await rename(`${file}.tmp`, file);
  };
  for (const [name, content] of Object.entries(opts.services ?? {})) await writeService(name, content);

  const interfaces = opts.interfaces ?? [host.address];
  const stateDir = path.join(dir, 'state');
  const argv = [process.execPath, POLOD, '--services-dir', servicesDir, '--state-dir', stateDir];
  if (opts.config !== undefined) {
    const cfg = path.join(dir, 'polo.cfg');
    await writeFile(cfg, opts.config);
    argv.push('--config', cfg);
  }
  for (const g of opts.groups ?? []) argv.push('--group', g);
  for (const a of interfaces) argv.push('--interface', a);
  if (opts.params !== undefined) argv.push('--params', JSON.stringify(opts.params));
  argv.push('--hostname', opts.hostname ?? host.name, '--log-level', opts.logLevel ?? 'info');
  argv.push(...(opts.extraArgs ?? []));

  const proc = host.spawn(argv, opts.env === undefined ? {} : { env: opts.env });
  const waitLog = (match: (r: LogRecord) => boolean, what: string, timeoutMs = 10_000): Promise<LogRecord> =>
    proc.waitForJsonLog(match, `${what} (polod on ${host.name})`, timeoutMs);
  // Generous: `ip netns exec` and node's start can stall while the machine builds other LANs.
  await waitLog(logIs('polod started'), "'polod started'", START_TIMEOUT_MS);
  if (opts.waitJoined !== false && interfaces.length > 0) {
    const started = proc.jsonLogs().find(logIs('polod started'));
    const groups = (started?.['groups'] as string[] | undefined) ?? [];
    for (const group of groups) {
      for (const iface of interfaces) {
        await waitLog(logIs('joined group', { group, iface }), `joined ${group} on ${iface}`, START_TIMEOUT_MS);
      }
    }
  }
  // 'polod ready' comes once the publish API is up too; signals are handled from the start.
  await waitLog(logIs('polod ready'), `polod on ${host.name} ready`, START_TIMEOUT_MS);

  const logs = (match: (r: LogRecord) => boolean): LogRecord[] => proc.jsonLogs().filter(match);
  return {
    host,
    proc,
    servicesDir,
    stateDir,
    writeService,
    removeService: (name) => rm(path.join(servicesDir, name), { force: true }),
    async reload(signal = 'SIGUSR1') {
      const before = logs(logIs('services reloaded')).length;
      if (!proc.kill(signal)) throw new Error(`polod on ${host.name} is not running`);
      try {
        return await waitFor(() => logs(logIs('services reloaded'))[before], {
          what: `'services reloaded' after ${signal}`,
          intervalMs: 5,
          timeoutMs: 10_000,
        });
      } catch (err) {
        const tail = proc.lines('stderr').slice(-8).join('\n');
        const state = proc.child.exitCode === null && proc.child.signalCode === null ? 'running' : 'exited';
        const message = `${(err as Error).message} (polod on ${host.name}, ${state})\n--- stderr tail ---\n${tail}`;
        throw new Error(message, { cause: err });
      }
    },
    logs,
    waitLog,
    alive: () => proc.child.exitCode === null && proc.child.signalCode === null,
    stop: () => proc.stop(),
  };
}

/** A node as `marco --json` prints it. */
export interface JsonNode {
  address: string;
  params: Record<string, unknown>;
}

/** A marco run: its outcome, and stdout parsed as JSON when it is JSON. */
export interface MarcoRun extends RunResult {
  json: unknown;
}

/**
 * Runs the built `marco <args...>` on `host`, sending from the host's LAN address (`--interface`)
 * unless `args` name one. Rejects if marco had to be killed.
 */
export async function runMarco(host: LanHost, args: readonly string[], timeoutMs = 15_000): Promise<MarcoRun> {
  const argv = [process.execPath, MARCO, ...args];
  if (args[0] !== undefined && !args.includes('--interface')) argv.push('--interface', host.address);
  const res = await host.run(argv, { timeoutMs });
  if (res.timedOut) throw new Error(`marco ${args.join(' ')} on ${host.name} was killed after ${timeoutMs} ms`);
  let json: unknown;
  try {
    json = JSON.parse(res.stdout);
  } catch {
    json = undefined;
  }
  return { ...res, json };
}

/** `marco <command> ... --json` expected to list nodes: returns them sorted by address. */
export async function marcoNodes(
  host: LanHost,
  args: readonly string[],
): Promise<{ code: number | null; nodes: JsonNode[]; run: MarcoRun }> {
  const run = await runMarco(host, [...args, '--json']);
  if (!Array.isArray(run.json)) {
    throw new Error(`marco ${args.join(' ')} printed no JSON array (exit ${run.code}): ${run.stdout}${run.stderr}`);
  }
  const nodes = [...(run.json as JsonNode[])].sort((a, b) => compareAddresses(a.address, b.address));
  return { code: run.code, nodes, run };
}

/**
 * `marco discover --json` on `host` with no interface flag and a deadline of 10 minutes, far
 * beyond the 20 s kill timeout: it must exit 0, the query ended on the Members hint. Returns the
 * addresses found, sorted as strings.
 */
export async function discoverToHint(host: LanHost): Promise<string[]> {
  const run = await host.run([process.execPath, MARCO, 'discover', '--json', '--timeout', '600000'], { timeoutMs: 20_000 });
  if (run.code !== 0) throw new Error(`marco discover on ${host.name} did not end on the Members hint (exit ${run.code}): ${run.stdout}${run.stderr}`);
  return (JSON.parse(run.stdout) as JsonNode[]).map((n) => n.address).sort();
}

/** Orders dotted quads numerically. */
export function compareAddresses(a: string, b: string): number {
  const num = (s: string): number => s.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  return num(a) - num(b);
}

/**
 * Runs `ip -n <host's namespace> <args...>` (routes and the like inside the LAN; the harness
 * covers addresses and links). Never touches any other namespace.
 */
export function ipIn(host: LanHost, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ip', ['-n', host.ns, ...args], { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`ip -n ${host.ns} ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

/** The host's link-local address on eth0, as marco prints a node there (`fe80::…%eth0`). */
export async function linkLocal(host: LanHost): Promise<string> {
  const text = await ipIn(host, ['-j', '-6', 'addr', 'show', 'dev', 'eth0', 'scope', 'link']);
  const links = JSON.parse(text) as Array<{ addr_info?: Array<{ local?: string }> }>;
  const local = links.flatMap((l) => l.addr_info ?? []).find((a) => a.local !== undefined)?.local;
  if (local === undefined) throw new Error(`${host.name} has no link-local address: ${text}`);
  return `${local}%eth0`;
}

/** A grid key file `name` (32 bytes of `byte`, mode 0600) in the fixture's folder, and the key it holds. */
export async function gridKeyFile(fixture: LanFixture, name: string, byte: number): Promise<{ file: string; key: GridKey }> {
  const file = path.join(await fixture.tmpDir(), name);
  const bytes = Buffer.alloc(32, byte);
  await writeFile(file, bytes, { mode: 0o600 });
  return { file, key: gridKey(bytes) };
}

/** One line of `marco watch --json`. */
export interface WatchLine {
  event: string;
  address: string;
  params: Record<string, unknown>;
  reason?: string | null;
  verified?: boolean;
  time?: string;
}

/** Every event a `marco watch --json` process printed so far. */
export function watchEvents(proc: Proc): WatchLine[] {
  return proc.lines('stdout').map((l) => JSON.parse(l) as WatchLine);
}

/** Waits for `marco watch --json` to print `event` for `address` (with `reason`, when given). */
export function waitWatchEvent(proc: Proc, event: string, address: string, opts: { reason?: string; timeoutMs?: number } = {}): Promise<string> {
  const { reason, timeoutMs = 15_000 } = opts;
  return proc.waitForLine(
    (l) => {
      const e = JSON.parse(l) as WatchLine;
      return e.event === event && e.address === address && (reason === undefined || e.reason === reason);
    },
    `watch event ${event} ${address}${reason === undefined ? '' : ` (${reason})`}`,
    timeoutMs,
  );
}
