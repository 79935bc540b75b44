/**
 * polod's local publish API: publish and unpublish calls per second, over the Unix socket and
 * over TLS, for non-permanent and permanent services, next to a minimal Node.js line echo server
 * on a Unix socket measured in the same run (the ceiling of a Node.js request/reply over that
 * transport).
 *
 * One namespace (so the TLS endpoint, 127.0.0.1:<binding port>, is the namespace's own
 * loopback). polod runs as root in a private mount namespace where a scratch folder is mounted
 * over root's home: the token it writes for uid 0 lands there, and this machine's
 * `~root/.polo` is checked to be untouched afterwards. The client (bench/child/publishClient.ts)
 * is its own process; every run is a bounded number of calls, and is also bounded in time.
 */
import { existsSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { PublishClientConfig, PublishClientResult, PublishRun } from './child/publishClient.js';
import { childScript, distFile, POLOD_JS, REPO_ROOT, requireBuilt, rootHome, runChild, spawnPolod, withLan, withTempDir } from './lib/env.js';
import { PUBLISH_MODES, type PublishMode } from './lib/modes.js';
import { fmtInt, fmtMs, fmtRatio, type Section, type Table } from './lib/report.js';
import { median } from './lib/stats.js';
import { measureListPaging, type ListPagingFigures } from './lib/listPaging.js';

/** Knobs of the publish benchmark. */
export interface PublishBenchOptions {
  /** Calls per measured run (half publish, half unpublish). */
  readonly ops: number;
  /** Rounds; each runs every mode once. */
  readonly rounds: number;
  /** Untimed calls per mode first. */
  readonly warmup: number;
  /** Another polod build (default: this checkout's). */
  readonly polodJs?: string;
  readonly log: (line: string) => void;
}

/**
 * 5 rounds of 2,000 calls per mode after 2,000 warm-up calls per mode (fewer left the first
 * round visibly slower, JIT still compiling): about 40 s, most of it the fsyncs.
 */
export const PUBLISH_DEFAULTS: Omit<PublishBenchOptions, 'log'> = { ops: 2000, rounds: 5, warmup: 2000 };

const GROUP = '224.0.0.112';
const IFACE = '127.0.0.1';
const PORT = 1337;
const BINDING_PORT = 1390;
/** The echo server's fixed reply: polod's reply to Unpublish. */
const ECHO_REPLY = '{"OK":0}';
/** Bound of each run, ms (2,000 permanent calls take about 7 s on this project's 2-core VM). */
const MAX_MS_PER_RUN = 15_000;

const LABELS: Record<PublishMode, string> = {
  echo: 'echo server, bare line client (baseline), Unix socket',
  raw: 'polod, bare line client, Unix socket, non-permanent',
  'client-unix': 'polod, PoloClient, Unix socket, non-permanent',
  'client-unix-perm': 'polod, PoloClient, Unix socket, permanent',
  'client-tls': 'polod, PoloClient, TLS, non-permanent',
  'client-tls-perm': 'polod, PoloClient, TLS, permanent',
};

/** The rows repeated in the summary. */
const KEY_ROWS: readonly (readonly [string, PublishMode])[] = [
  ['polod, bare line client, Unix socket', 'raw'],
  ['PoloClient, Unix socket, non-permanent', 'client-unix'],
  ['PoloClient, Unix socket, permanent (fsync)', 'client-unix-perm'],
  ['PoloClient, TLS, non-permanent', 'client-tls'],
];

/** Existence and modification time of `~root/.polo/token` (and of the folder), to prove we left it alone. */
function rootPoloState(): string {
  const dir = path.join(rootHome(), '.polo');
  if (!existsSync(dir)) return 'absent';
  const token = path.join(dir, 'token');
  return `folder ${statSync(dir).mtimeMs}, token ${existsSync(token) ? statSync(token).mtimeMs : 'absent'}`;
}

/** The file system type of `dir` (findmnt), for the permanent rows' notes. */
function fsType(dir: string): string {
  try {
    return execFileSync('findmnt', ['-n', '-o', 'FSTYPE', '-T', dir], { encoding: 'utf8' }).trim() || 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Runs the benchmark and returns its section of the report. */
export async function benchPublish(opts: PublishBenchOptions): Promise<Section> {
  const program = opts.polodJs ?? POLOD_JS;
  requireBuilt(program, 'polod');
  const clientModule = distFile('src/client/poloClient.js');
  requireBuilt(clientModule, 'the PoloClient (src/client)');
  const tokenModule = distFile('src/auth/tokenFile.js');
  requireBuilt(tokenModule, 'the token file module (src/auth)');
  requireBuilt(childScript('lineEchoServer'), 'bench/child/lineEchoServer.ts');
  const started = performance.now();
  const rootBefore = rootPoloState();
  const checkRootHome = (): void => {
    const rootAfter = rootPoloState();
    if (rootAfter !== rootBefore) throw new Error(`~root/.polo changed during the benchmark (${rootBefore} → ${rootAfter}): the scratch home was not used`);
  };
  let result;
  try {
    result = await measure(opts, program, { clientModule, tokenModule });
  } finally {
    // Also after a failure: a broken run must not hide that it wrote outside its scratch folder.
    checkRootHome();
  }
  if (!result.tokenInScratch) throw new Error('the token was not written into the scratch home');
  opts.log(`publish: ${opts.rounds} rounds measured`);
  for (const m of PUBLISH_MODES) opts.log(`publish ${m}: ${result.r.runs[m].map((x) => fmtInt(x.rate)).join(', ')} calls/s`);
  const paging = await measureListPaging();
  return report(opts, result, paging, (performance.now() - started) / 1000);
}

/** Starts the servers, runs the client, stops everything (the LAN and folder go whatever happens). */
/** What one run of the client gave, and about the run. */
interface Measured {
  readonly r: PublishClientResult;
  /** The token file is in the scratch home. */
  readonly tokenInScratch: boolean;
  /** Distinct messages of polod's warnings and errors. */
  readonly problems: readonly string[];
  /** polod's command line, temporary folder elided. */
  readonly command: string;
  /** File system of the services folder. */
  readonly fs: string;
}

function measure(opts: PublishBenchOptions, program: string, modules: { clientModule: string; tokenModule: string }): Promise<Measured> {
  return withTempDir('bench-pub', (dir) =>
    withLan({ name: 'benchpub', hosts: 1, subnet: 153 }, async (lan) => {
      const host = lan.host(1);
      const home = path.join(dir, 'home');
      const state = path.join(dir, 'state');
      // A services folder of its own, made beforehand: polod warns when it finds none at start.
      const services = path.join(dir, 'services');
      await mkdir(home, { mode: 0o700 });
      await mkdir(services);
      const echoSocketPath = path.join(dir, 'echo.sock');
      const echo = host.spawn([process.execPath, childScript('lineEchoServer'), echoSocketPath, ECHO_REPLY]);
      await echo.waitForLine((l) => l === 'ready', 'the line echo server to listen');
      const polodArgs = [
        ...['--group', GROUP, '--interface', IFACE, '--port', String(PORT)],
        ...['--services-dir', services, '--state-dir', state, '--binding-port', String(BINDING_PORT), '--log-level', 'info'],
      ];
      const polod = spawnPolod(host, { program, args: polodArgs, scratchHome: home });
      // The TLS key is made at first start: allow it time on a slow machine.
      await polod.waitForJsonLog((r) => r['msg'] === 'publish API listening', "polod's 'publish API listening'", 60_000);
      opts.log('publish: polod and the echo server started');
      const config: PublishClientConfig = {
        ...modules,
        socketPath: path.join(state, 'polod.sock'),
        tlsPort: BINDING_PORT,
        echoSocketPath,
        home,
        uid: 0,
        ops: opts.ops,
        rounds: opts.rounds,
        warmup: opts.warmup,
        maxMsPerRun: MAX_MS_PER_RUN,
        ...(polod.pid === undefined ? {} : { polodPid: polod.pid }),
        ...(echo.pid === undefined ? {} : { echoPid: echo.pid }),
      };
      let r: PublishClientResult;
      try {
        // Every run is bounded in time, so the whole client is too (warm-up runs included).
        const timeoutMs = (opts.rounds + 1) * PUBLISH_MODES.length * MAX_MS_PER_RUN + 60_000;
        r = await runChild<PublishClientResult>(host, 'publishClient', config, { timeoutMs });
      } catch (err) {
        throw new Error(`${(err as Error).message}\n--- polod stderr ---\n${polod.stderr.slice(-2000)}`, { cause: err });
      }
      const tokenInScratch = existsSync(path.join(home, '.polo', 'token'));
      await Promise.all([polod.stop(5000), echo.stop(5000)]);
      const problems = [...new Set(polod.jsonLogs().filter((l) => typeof l['level'] === 'number' && l['level'] >= 40).map((l) => String(l['msg'])))];
      const command = ['node', path.relative(REPO_ROOT, program), ...polodArgs.map((a) => a.replace(dir, '<tmp>'))].join(' ');
      return { r, tokenInScratch, problems, command, fs: fsType(services) };
    }),
  );
}

/** Per-mode medians over the rounds. */
interface ModeFigures {
  rate: number;
  minRate: number;
  maxRate: number;
  /** Median of per-round ratios to the echo run of the same round. */
  ratio: number;
  publishUs: number;
  publishP99Us: number;
  unpublishUs: number;
  unpublishP99Us: number;
  serverCpuUs: number;
  clientCpuUs: number;
  cutShort: number;
}

function figures(runs: readonly PublishRun[], echo: readonly PublishRun[]): ModeFigures {
  const rates = runs.map((r) => r.rate);
  return {
    rate: median(rates),
    minRate: Math.min(...rates),
    maxRate: Math.max(...rates),
    ratio: median(runs.map((r, i) => r.rate / (echo[i]?.rate ?? Number.NaN))),
    publishUs: median(runs.map((r) => r.publishMedianUs)),
    publishP99Us: median(runs.map((r) => r.publishP99Us)),
    unpublishUs: median(runs.map((r) => r.unpublishMedianUs)),
    unpublishP99Us: median(runs.map((r) => r.unpublishP99Us)),
    serverCpuUs: median(runs.map((r) => ((r.serverCpuMs ?? Number.NaN) * 1000) / r.ops)),
    clientCpuUs: median(runs.map((r) => (r.clientCpuMs * 1000) / r.ops)),
    cutShort: runs.filter((r) => r.cutShort).length,
  };
}

const us = (v: number): string => (Number.isFinite(v) ? (v < 100 ? `${v.toFixed(0)} µs` : v < 10_000 ? `${(v / 1000).toFixed(2)} ms` : `${(v / 1000).toFixed(1)} ms`) : 'n/a');

/** What PoloClient costs on top of the bare client, and what a token file read would cost per call if it were not cached. */
function clientNote(f: Record<PublishMode, ModeFigures>, tokenRead: PublishClientResult['tokenRead']): string {
  const bare = f.raw.clientCpuUs;
  const lib = f['client-unix'].clientCpuUs;
  const head = `Client CPU per call on the Unix socket: ${us(bare)} for the bare client, ${us(lib)} for PoloClient, which arms a deadline timer and an AbortController per call and queues the call behind the previous one (it reads the token file once and reuses the token).`;
  if (tokenRead === undefined) return head;
  return `${head} The token file read alone (the library's \`readTokenFile\`, timed in the same client process: open, fstat, read, close, each a trip through libuv's thread pool) costs ${us(tokenRead.wallUs)} of wall time and ${us(tokenRead.cpuUs)} of CPU: what each call paid before PoloClient kept the token.`;
}

function report(
  opts: PublishBenchOptions,
  got: Measured,
  paging: ListPagingFigures,
  seconds: number,
): Section {
  const echo = got.r.runs.echo;
  const f = Object.fromEntries(PUBLISH_MODES.map((m) => [m, figures(got.r.runs[m], echo)])) as Record<PublishMode, ModeFigures>;
  const table: Table = {
    header: ['path', 'calls/s (median)', 'range over rounds', '÷ echo', 'publish median / p99', 'unpublish median / p99', 'server CPU per call', 'client CPU per call'],
    rows: PUBLISH_MODES.map((m) => {
      const x = f[m];
      return [
        LABELS[m],
        fmtInt(x.rate),
        `${fmtInt(x.minRate)}–${fmtInt(x.maxRate)}`,
        m === 'echo' ? '1' : fmtRatio(x.ratio),
        `${us(x.publishUs)} / ${us(x.publishP99Us)}`,
        `${us(x.unpublishUs)} / ${us(x.unpublishP99Us)}`,
        us(x.serverCpuUs),
        us(x.clientCpuUs),
      ];
    }),
  };
  const perm = f['client-unix-perm'];
  const plain = f['client-unix'];
  const pagingTable: Table = {
    caption: `List: paging through ${fmtInt(paging.services)} services (${paging.pages} pages of up to 256), in process, median of 3`,
    header: ['pages built', 'one full paging', 'speed-up'],
    rows: [
      ['from one walk of the registry, reused while nothing changed (polod)', fmtMs(paging.reusedMs), `${(paging.perPageMs / paging.reusedMs).toFixed(1)}×`],
      ['one walk of the registry per page (baseline: before)', fmtMs(paging.perPageMs), '1×'],
    ],
  };
  const notes = [
    `${fmtInt(opts.ops)} calls per run (publish \`benchN\`, unpublish \`benchN\`, N = 0 … ${fmtInt(opts.ops / 2 - 1)}: one service live at a time), one call in flight, ${opts.rounds} rounds of one run per path (order rotating), after ${fmtInt(opts.warmup)} untimed calls per path. "÷ echo" is the median of per-round ratios to the echo run of the same round; the latencies are per-run medians and p99s, then their median over the rounds.`,
    `polod: \`${got.command}\` (the default log level: one log line per call, as in production), root services \`{"port":8080,"path":"/index"}\` in every served group, published with uid 0's token. polod ran in a private mount namespace with a scratch folder mounted over root's home: it wrote the token there (Request-token answered ${got.r.tokenRequest === 'created' ? '0, created' : `"${got.r.tokenRequest}"`}), PoloClient read it from there (\`home\`, \`uid: 0\`), and \`~root/.polo\` was checked unchanged afterwards.`,
    `The bare line client writes \`JSON.stringify(request)\` + newline and \`JSON.parse\`s the reply line, the same work against polod and the echo server (which answers every line with \`${ECHO_REPLY}\` unparsed).`,
    clientNote(f, got.r.tokenRead),
    `polod's own CPU per call is ${us(f.raw.serverCpuUs)} when the bare client keeps it busy back to back, and ${us(plain.serverCpuUs)} under PoloClient for the very same requests: a slower caller lets polod fall idle between calls, and each wake-up costs more (scheduler, colder caches). Its CPU per call is a price at a given pace, not a constant.`,
    `Permanent: publish writes the service file durably (temporary file, fsync, rename, fsync of the folder) before answering; unpublish with \`delete_file\` unlinks it. The folder is on ${got.fs} (the machine's own disk, as /etc/marcopolo/polo/services is): those rows price the disk's fsync, which varies by machine far more than the CPU figures. Publish median ${us(perm.publishUs)} permanent vs ${us(plain.publishUs)} non-permanent.`,
    'The TLS rows have no TLS baseline: their ratio is against the Unix echo server, so it includes what TLS itself costs per request.',
    '"server CPU per call" is polod\'s (or the echo server\'s) user+system time over the run divided by its calls (10 ms clock ticks); "client CPU per call" the client process\'s.',
  ];
  const cut = PUBLISH_MODES.filter((m) => f[m].cutShort > 0);
  if (cut.length > 0) notes.push(`Runs cut short by the ${MAX_MS_PER_RUN / 1000} s bound (figures from the calls completed): ${cut.map((m) => `${m} ${f[m].cutShort}`).join(', ')}.`);
  if (got.problems.length > 0) notes.push(`polod logged warnings or errors during the run: ${got.problems.map((m) => `"${m}"`).join(', ')}.`);
  return {
    id: 'publish',
    title: 'Publish API (polod)',
    method:
      'Publish and unpublish calls per second through polod\'s local API, one call at a time, inside one network namespace: over the Unix socket and over TLS on the namespace\'s 127.0.0.1, for non-permanent and permanent root services, next to a minimal Node.js server answering one line per line on a Unix socket (the ceiling of a Node.js request/reply over that transport). The issue states no aim for this API: the baseline is the yardstick.',
    tables: [table, pagingTable],
    aims: [],
    keyFigures: KEY_ROWS.map(([what, m]) => {
      const x = f[m];
      return {
        what: `publish API calls/s: ${what}`,
        measured: `${fmtInt(x.rate)} (${fmtRatio(x.ratio)} × echo)`,
        baseline: `${fmtInt(f.echo.rate)}: line echo server, Unix socket`,
      };
    }),
    notes,
    seconds,
  };
}
