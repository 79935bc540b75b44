/**
 * The client side of the discovery-latency benchmark, run as one process inside the client's
 * namespace so that every timing is taken next to the query and no `ip netns exec` (which
 * remounts /sys) sits inside a measured interval.
 *
 * It measures, over `runs` rounds each:
 * - raw: a bare dgram socket opened, the Marco query sent, replies counted — the floor that the
 *   network and the polods set, with no library code;
 * - in-client: the `Marco` library in this process — the first node out of `discover()`, and
 *   `marco({ maxNodes })` for all of them, timed with performance.now() around the call;
 * - command: the whole `marco discover … --json` process, spawn to exit, with `--max-nodes 1`
 *   (first answer) and `--max-nodes N` (all), next to `node -e ''`, the floor of any Node CLI.
 *
 * Usage: node latencyClient.js '<LatencyClientConfig as JSON>' — prints one JSON result line.
 */
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

/** What the client is told. */
export interface LatencyClientConfig {
  /** Must be marco's defaults (224.0.0.112, 1337): the command is timed as a user types it. */
  readonly group: string;
  readonly port: number;
  /** This host's address: queries leave from it (`interface` / `--interface`). */
  readonly iface: string;
  /** Polods expected to answer. */
  readonly nodes: number;
  readonly runs: number;
  /** Untimed rounds before measuring (JIT, ARP caches, page cache of the marco command). */
  readonly warmup: number;
  /**
   * Untimed queries (raw, first and all in turn) before the untimed rounds: the rounds are
   * few, since each spawns processes, so they alone would leave the polods' and this client's
   * query path to be compiled during the measured rounds.
   */
  readonly warmupQueries: number;
  /** Deadline of each query, ms. */
  readonly timeoutMs: number;
  /** How long to wait for every polod to answer before starting. */
  readonly readyTimeoutMs: number;
  /** The discovery module exporting `Marco` (dist/src/discovery/index.js). */
  readonly discoveryModule: string;
  /** The marco command (dist/src/cli/marco.js). */
  readonly marcoJs: string;
}

/** Timings in ms of one kind of measurement, one entry per round that saw every node. */
export interface Timings {
  first: number[];
  all: number[];
  /** Rounds that did not see every node (left out of the timings). */
  failures: number;
}

/** Everything the client measured. */
export interface LatencyClientResult {
  raw: Timings;
  inClient: Timings;
  command: Timings & { lastError: string };
  nodeBaseline: number[];
}

/** What the benchmark needs of the Marco client (src/discovery/marco.ts). */
interface MarcoClient {
  marco(options: QueryOptions): Promise<unknown[]>;
  discover(options: QueryOptions): AsyncIterable<unknown> & { close(): Promise<void> };
}
interface QueryOptions {
  group: string;
  port: number;
  timeout: number;
  maxNodes: number;
  interface: string;
}

const config = JSON.parse(process.argv[2] ?? '{}') as LatencyClientConfig;
const query = Buffer.from('{"Command":"Marco"}');

async function loadMarco(): Promise<MarcoClient> {
  // Loaded at run time: the client API is still moving, and a bench must not break the build.
  const mod = (await import(pathToFileURL(config.discoveryModule).href)) as { Marco?: new () => MarcoClient };
  if (typeof mod.Marco !== 'function') throw new Error(`${config.discoveryModule} exports no Marco class`);
  return new mod.Marco();
}

/** Raw floor: open a socket, send Marco, time the first and the nodes-th reply. */
function rawRound(): Promise<{ first: number; all: number } | undefined> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const socket = dgram.createSocket('udp4');
    const seen = new Set<string>();
    let first = Number.NaN;
    const done = (value: { first: number; all: number } | undefined): void => {
      clearTimeout(timer);
      socket.close();
      resolve(value);
    };
    const timer = setTimeout(() => done(undefined), config.timeoutMs);
    socket.on('message', (_msg, from) => {
      if (seen.size === 0) first = performance.now() - t0;
      seen.add(from.address);
      if (seen.size >= config.nodes) done({ first, all: performance.now() - t0 });
    });
    socket.bind(0, () => {
      socket.setMulticastInterface(config.iface);
      socket.setMulticastTTL(2);
      socket.send(query, config.port, config.group);
    });
  });
}

function options(maxNodes: number): QueryOptions {
  return { group: config.group, port: config.port, timeout: config.timeoutMs, maxNodes, interface: config.iface };
}

/** First answer of a maxNodes = nodes query, through the library's stream. */
async function firstInClient(marco: MarcoClient): Promise<number | undefined> {
  const t0 = performance.now();
  const stream = marco.discover(options(config.nodes));
  for await (const _node of stream) return performance.now() - t0;
  return undefined;
}

/** Every node through the library's collect call. */
async function allInClient(marco: MarcoClient): Promise<number | undefined> {
  const t0 = performance.now();
  const nodes = await marco.marco(options(config.nodes));
  const ms = performance.now() - t0;
  return nodes.length >= config.nodes ? ms : undefined;
}

/** Spawns `node args…` and times spawn → exit; also returns its exit code and stdout. */
function timeProcess(args: readonly string[]): Promise<{ ms: number; code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let ms = Number.NaN;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    // 'exit' is the end of the process; 'close' (all output read) comes after and is not timed.
    child.on('exit', () => (ms = performance.now() - t0));
    child.on('close', (code) => resolve({ ms, code, stdout, stderr }));
  });
}

/** Nodes in `marco --json` output: a JSON array, or an object holding one (format not assumed). */
function countNodes(stdout: string): number {
  try {
    const doc: unknown = JSON.parse(stdout);
    if (Array.isArray(doc)) return doc.length;
    if (typeof doc === 'object' && doc !== null) {
      const list = Object.values(doc).find(Array.isArray);
      if (list !== undefined) return list.length;
    }
  } catch {
    // Not JSON: counted as a failure by the caller.
  }
  return 0;
}

async function waitForNodes(marco: MarcoClient): Promise<void> {
  const deadline = performance.now() + config.readyTimeoutMs;
  let found = 0;
  while (performance.now() < deadline) {
    found = (await marco.marco(options(config.nodes))).length;
    if (found >= config.nodes) return;
  }
  throw new Error(`only ${found} of ${config.nodes} polods answered within ${config.readyTimeoutMs} ms`);
}

async function main(): Promise<LatencyClientResult> {
  const marco = await loadMarco();
  await waitForNodes(marco);
  const result: LatencyClientResult = {
    raw: { first: [], all: [], failures: 0 },
    inClient: { first: [], all: [], failures: 0 },
    command: { first: [], all: [], failures: 0, lastError: '' },
    nodeBaseline: [],
  };
  // The command as a user types it: group, port and timeout are marco's defaults.
  const cmd = (maxNodes: number): string[] => [config.marcoJs, 'discover', '--max-nodes', String(maxNodes), '--interface', config.iface, '--json'];

  const warmups = [rawRound, (): Promise<unknown> => firstInClient(marco), (): Promise<unknown> => allInClient(marco)];
  for (let i = 0; i < config.warmupQueries; i++) await warmups[i % warmups.length]?.();
  for (let round = -config.warmup; round < config.runs; round++) {
    const measured = round >= 0;
    // In-process measurements first, then the processes: a spawn's aftermath (exit, reaping)
    // must not land inside an in-client measurement. Their order rotates: the first query after
    // the previous round's spawns meets idle polods and cold caches, and no measurement may
    // always be the one that pays for it.
    const got: { raw?: { first: number; all: number } | undefined; first?: number | undefined; all?: number | undefined } = {};
    const inProcess = [
      async (): Promise<void> => void (got.raw = await rawRound()),
      async (): Promise<void> => void (got.first = await firstInClient(marco)),
      async (): Promise<void> => void (got.all = await allInClient(marco)),
    ];
    const start = ((round % inProcess.length) + inProcess.length) % inProcess.length;
    for (let k = 0; k < inProcess.length; k++) await inProcess[(start + k) % inProcess.length]?.();
    const { raw, first, all } = got;
    const baseline = await timeProcess(['-e', '']);
    const cmdFirst = await timeProcess(cmd(1));
    const cmdAll = await timeProcess(cmd(config.nodes));
    if (!measured) continue;
    if (raw === undefined) result.raw.failures++;
    else {
      result.raw.first.push(raw.first);
      result.raw.all.push(raw.all);
    }
    if (first === undefined || all === undefined) result.inClient.failures++;
    if (first !== undefined) result.inClient.first.push(first);
    if (all !== undefined) result.inClient.all.push(all);
    result.nodeBaseline.push(baseline.ms);
    for (const [run, list, want] of [
      [cmdFirst, result.command.first, 1],
      [cmdAll, result.command.all, config.nodes],
    ] as const) {
      if (run.code === 0 && countNodes(run.stdout) >= want) list.push(run.ms);
      else {
        result.command.failures++;
        result.command.lastError = `exit ${run.code}, ${countNodes(run.stdout)} nodes: ${run.stderr.trim().slice(0, 300)}`;
      }
    }
  }
  return result;
}

main().then(
  (result) => console.log(JSON.stringify(result)),
  (err: unknown) => {
    console.error(`latencyClient: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
