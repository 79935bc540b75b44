/**
 * The client side of the publish-API benchmark, run as one process inside the benchmark's
 * namespace (the TLS endpoint is 127.0.0.1 there). Each measured run is `ops` calls made one
 * after another — publish `benchN`, unpublish `benchN`, N = 0, 1, … — through one of:
 *
 * - `echo`: a bare line client to the line echo server (bench/child/lineEchoServer.ts) on a Unix
 *   socket, sending the very request lines of `raw`: the ceiling of a Node.js request/reply
 *   over that transport;
 * - `raw`: the same bare line client to polod's Unix socket (non-permanent root services): what
 *   polod costs, without the client library;
 * - `client-unix`, `client-unix-perm`, `client-tls`, `client-tls-perm`: the `PoloClient` class,
 *   over the Unix socket or TLS, publishing non-permanent services or permanent ones (a service
 *   file written durably on publish, deleted on unpublish: `delete_file`).
 *
 * The token is requested once, before anything is timed, with the `home` and `uid` given: polod
 * writes it into the home it knows for that uid, which the benchmark has replaced by a scratch
 * folder (a bind mount in polod's private mount namespace), and the client reads it from there.
 *
 * Usage: node publishClient.js '<PublishClientConfig as JSON>' — prints one JSON result line.
 */
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { PUBLISH_MODES, type PublishMode } from '../lib/modes.js';
import { cpuTimeMs } from '../lib/procfs.js';
import { median, percentile } from '../lib/stats.js';

/** What the client is told. */
export interface PublishClientConfig {
  /** The module exporting `PoloClient` (dist/src/client/poloClient.js). */
  readonly clientModule: string;
  /** The module exporting `readTokenFile` (dist/src/auth/tokenFile.js), timed on its own. */
  readonly tokenModule: string;
  /** polod's Unix socket. */
  readonly socketPath: string;
  /** polod's TLS port on 127.0.0.1. */
  readonly tlsPort: number;
  /** The line echo server's Unix socket. */
  readonly echoSocketPath: string;
  /** The scratch home holding `.polo/token`. */
  readonly home: string;
  /** The uid whose token is requested and used (0: root services need it). */
  readonly uid: number;
  /** Calls per measured run (half publish, half unpublish). */
  readonly ops: number;
  readonly rounds: number;
  /** Untimed calls per mode before the first round. */
  readonly warmup: number;
  /** Bound of each run in time; a run reaching it stops early and says so. */
  readonly maxMsPerRun: number;
  readonly polodPid?: number;
  readonly echoPid?: number;
}

/** One measured run. */
export interface PublishRun {
  /** Calls completed. */
  readonly ops: number;
  readonly elapsedMs: number;
  /** Calls per second. */
  readonly rate: number;
  /** Latency of each kind of call, µs. */
  readonly publishMedianUs: number;
  readonly publishP99Us: number;
  readonly unpublishMedianUs: number;
  readonly unpublishP99Us: number;
  /** CPU time of the server (polod or the echo server) over the run, ms. */
  readonly serverCpuMs: number | undefined;
  /** CPU time of this client process over the run, ms. */
  readonly clientCpuMs: number;
  readonly cutShort: boolean;
}

/** Everything the client measured. */
export interface PublishClientResult {
  readonly runs: Record<PublishMode, PublishRun[]>;
  /** What polod answered to the token request: 'created' on a fresh scratch home. */
  readonly tokenRequest: string;
  /** Where the token was read from. */
  readonly tokenFile: string;
  /** `readTokenFile` alone, which PoloClient runs on every call: wall and CPU time per read, µs. */
  readonly tokenRead: { readonly wallUs: number; readonly cpuUs: number } | undefined;
}

/** What the benchmark needs of PoloClient (src/client/poloClient.ts). */
interface PoloClientLike {
  publishService(id: string, opts: { params: Record<string, unknown>; root: boolean; permanent: boolean }): Promise<string>;
  unpublishService(id: string, opts: { deleteFile: boolean }): Promise<void>;
  requestToken(): Promise<'created' | 'existed'>;
  readonly tokenFile: string;
  close(): Promise<void>;
}
type PoloClientClass = new (options: Record<string, unknown>) => PoloClientLike;

/** Publishes and unpublishes one id: one driver per mode. */
interface Driver {
  publish(id: string): Promise<void>;
  unpublish(id: string): Promise<void>;
  close(): Promise<void>;
}

const config = JSON.parse(process.argv[2] ?? '{}') as PublishClientConfig;
const PARAMS = { port: 8080, path: '/index' };

/** One request line at a time over a stream socket; the reply is the next line. */
class LineClient {
  #pending: { resolve: (line: string) => void; reject: (err: Error) => void } | undefined;
  #buffer = '';

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.#buffer += chunk;
      const at = this.#buffer.indexOf('\n');
      if (at === -1) return;
      const line = this.#buffer.slice(0, at);
      this.#buffer = this.#buffer.slice(at + 1);
      const pending = this.#pending;
      this.#pending = undefined;
      pending?.resolve(line);
    });
    const fail = (err: Error): void => {
      const pending = this.#pending;
      this.#pending = undefined;
      pending?.reject(err);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed')));
  }

  static open(socketPath: string): Promise<LineClient> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(socketPath);
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new LineClient(socket));
      });
    });
  }

  request(line: string): Promise<string> {
    return new Promise((resolve, reject) => {
      this.#pending = { resolve, reject };
      this.socket.write(`${line}\n`);
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.end();
    });
  }
}

/**
 * The bare line client: builds the request with JSON.stringify and parses the reply with
 * JSON.parse, the same work against polod and the echo server; only polod's replies are checked
 * (the echo server's is fixed).
 */
async function lineDriver(socketPath: string, token: string, check: boolean): Promise<Driver> {
  const client = await LineClient.open(socketPath);
  const call = async (request: unknown, expected: unknown): Promise<void> => {
    const reply = JSON.parse(await client.request(JSON.stringify(request))) as { OK?: unknown; Error?: unknown };
    if (check && reply.OK !== expected) throw new Error(`polod answered ${JSON.stringify(reply)} to ${JSON.stringify(request)}`);
  };
  return {
    publish: (id) =>
      call({ Command: 'Publish', Args: { service: id, token, params: PARAMS, multicast_groups: [], permanent: false, root: true } }, id),
    unpublish: (id) => call({ Command: 'Unpublish', Args: { service: id, token, multicast_groups: [], delete_file: false } }, 0),
    close: () => client.close(),
  };
}

function clientDriver(client: PoloClientLike, permanent: boolean): Driver {
  return {
    publish: async (id) => {
      const got = await client.publishService(id, { params: PARAMS, root: true, permanent });
      if (got !== id) throw new Error(`publishService(${id}) returned ${got}`);
    },
    unpublish: (id) => client.unpublishService(id, { deleteFile: permanent }),
    close: () => client.close(),
  };
}

/** `ops` calls (publish/unpublish pairs of ids bench0, bench1, …) through `driver`. */
async function run(driver: Driver, ops: number, serverPid: number | undefined): Promise<PublishRun> {
  const pairs = Math.ceil(ops / 2);
  const publishUs = new Float64Array(pairs);
  const unpublishUs = new Float64Array(pairs);
  const cpu = (): number | undefined => (serverPid === undefined ? undefined : cpuTimeMs(serverPid));
  const server0 = cpu();
  const client0 = process.cpuUsage();
  const t0 = performance.now();
  let done = 0;
  let cutShort = false;
  for (let i = 0; i < pairs; i++) {
    const a = performance.now();
    if (a - t0 > config.maxMsPerRun) {
      cutShort = true;
      break;
    }
    const id = `bench${i}`;
    await driver.publish(id);
    const b = performance.now();
    await driver.unpublish(id);
    const c = performance.now();
    publishUs[i] = (b - a) * 1000;
    unpublishUs[i] = (c - b) * 1000;
    done++;
  }
  const elapsedMs = performance.now() - t0;
  const server1 = cpu();
  const client = process.cpuUsage(client0);
  const pub = [...publishUs.subarray(0, done)];
  const unpub = [...unpublishUs.subarray(0, done)];
  return {
    ops: done * 2,
    elapsedMs,
    rate: (done * 2 * 1000) / elapsedMs,
    publishMedianUs: median(pub),
    publishP99Us: percentile(pub, 99),
    unpublishMedianUs: median(unpub),
    unpublishP99Us: percentile(unpub, 99),
    serverCpuMs: server0 === undefined || server1 === undefined ? undefined : server1 - server0,
    clientCpuMs: (client.user + client.system) / 1000,
    cutShort,
  };
}

async function main(): Promise<PublishClientResult> {
  // Loaded at run time, as the other bench clients do: the client API may still move.
  const mod = (await import(pathToFileURL(config.clientModule).href)) as { PoloClient?: PoloClientClass };
  const PoloClient = mod.PoloClient;
  if (typeof PoloClient !== 'function') throw new Error(`${config.clientModule} exports no PoloClient class`);
  const common = { home: config.home, uid: config.uid, timeout: 10_000 };
  const unixClient = new PoloClient({ ...common, socketPath: config.socketPath });
  const tlsClient = new PoloClient({ ...common, tls: { host: '127.0.0.1', port: config.tlsPort } });
  // Untimed: polod writes the token into (the scratch stand-in for) root's home.
  const tokenRequest = await unixClient.requestToken();
  const tokenFile = unixClient.tokenFile;
  if (path.dirname(path.dirname(tokenFile)) !== path.resolve(config.home)) throw new Error(`token file ${tokenFile} is outside ${config.home}`);
  const token = (await readFile(tokenFile, 'utf8')).trim();
  const tokenRead = await timeTokenReads(config.warmup);

  const drivers: Record<PublishMode, Driver> = {
    echo: await lineDriver(config.echoSocketPath, token, false),
    raw: await lineDriver(config.socketPath, token, true),
    'client-unix': clientDriver(unixClient, false),
    'client-unix-perm': clientDriver(unixClient, true),
    'client-tls': clientDriver(tlsClient, false),
    'client-tls-perm': clientDriver(tlsClient, true),
  };
  const pidOf = (mode: PublishMode): number | undefined => (mode === 'echo' ? config.echoPid : config.polodPid);
  const runs = Object.fromEntries(PUBLISH_MODES.map((m) => [m, [] as PublishRun[]])) as Record<PublishMode, PublishRun[]>;
  try {
    for (const mode of PUBLISH_MODES) await run(drivers[mode], config.warmup, undefined);
    for (let round = 0; round < config.rounds; round++) {
      // The order rotates, so that no mode is always the one running after another's aftermath
      // (a permanent run's pending disk writes, a GC in polod).
      for (let k = 0; k < PUBLISH_MODES.length; k++) {
        const mode = PUBLISH_MODES[(round + k) % PUBLISH_MODES.length] as PublishMode;
        const r = await run(drivers[mode], config.ops, pidOf(mode));
        runs[mode].push(r);
        console.error(`publish ${mode} round ${round + 1}/${config.rounds}: ${Math.round(r.rate)} ops/s`);
      }
    }
  } finally {
    // The two PoloClient drivers share their clients: each closed once (close is idempotent).
    await Promise.allSettled(Object.values(drivers).map((d) => d.close()));
  }
  return { runs, tokenRequest, tokenFile, tokenRead };
}

/**
 * Times `count` calls of the library's readTokenFile (after as many untimed ones), as PoloClient
 * makes one per call: undefined when the module does not export it.
 */
async function timeTokenReads(count: number): Promise<PublishClientResult['tokenRead']> {
  const mod = (await import(pathToFileURL(config.tokenModule).href)) as { readTokenFile?: (home: string) => Promise<string | null> };
  const read = mod.readTokenFile;
  if (typeof read !== 'function' || count === 0) return undefined;
  for (let i = 0; i < count; i++) await read(config.home);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < count; i++) await read(config.home);
  const wallUs = ((performance.now() - t0) * 1000) / count;
  const cpu = process.cpuUsage(cpu0);
  return { wallUs, cpuUs: (cpu.user + cpu.system) / count };
}

main().then(
  (result) => console.log(JSON.stringify(result)),
  (err: unknown) => {
    console.error(`publishClient: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
