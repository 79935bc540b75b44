/**
 * The client side of the marcod benchmark, run as one process inside the client's namespace,
 * next to marcod (bound to 127.0.1.1 there). Each round times one Request-For for `service`
 * with maxNodes = the number of polods, four ways, in a rotating order:
 *
 * - raw: a bare dgram socket sends the query to the group and counts the replies — the floor
 *   that the network and the polods set, no library code;
 * - in-process: the `Marco` library's requestFor in this process;
 * - raw→marcod: a bare dgram socket sends marcod the request (docs/protocol.md §4) and waits for its
 *   one reply — marcod's own cost, without a client library;
 * - MarcodClient: the `MarcodClient` library's requestFor through marcod.
 *
 * Usage: node marcodClient.js '<MarcodClientConfig as JSON>' — prints one JSON result line.
 */
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { MARCOD_MODES, type MarcodMode } from '../lib/modes.js';

/** What the client is told. */
export interface MarcodClientConfig {
  /** The module exporting `Marco` and `MarcodClient` (dist/src/index.js). */
  readonly indexModule: string;
  readonly group: string;
  readonly port: number;
  /** This host's address: the in-process queries leave from it (marcod's `--interface`). */
  readonly iface: string;
  readonly marcodAddress: string;
  readonly marcodPort: number;
  readonly service: string;
  /** Polods expected to answer (maxNodes). */
  readonly nodes: number;
  readonly runs: number;
  readonly warmup: number;
  /** Deadline of each query, ms. */
  readonly timeoutMs: number;
  /** How long to wait for every polod to answer through marcod before starting. */
  readonly readyTimeoutMs: number;
}

/** Timings in ms, one per round; null for a round that did not find every node (rounds stay paired). */
export type MarcodClientResult = Record<MarcodMode, (number | null)[]>;

interface NodeLike {
  readonly address: string;
}
interface RequestForClient {
  requestFor(service: string, options: Record<string, unknown>): Promise<NodeLike[]>;
}
interface IndexModule {
  Marco?: new () => RequestForClient;
  MarcodClient?: new (options: Record<string, unknown>) => RequestForClient;
}

const config = JSON.parse(process.argv[2] ?? '{}') as MarcodClientConfig;

interface Reply {
  readonly msg: Buffer;
  readonly from: string;
}

/** Sends `payload` from a fresh socket; resolves with the replies once `enough` says so, or at 2 × timeout. */
function exchange(payload: Buffer, port: number, address: string, enough: (replies: Reply[]) => boolean, multicast: boolean): Promise<Reply[]> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    const replies: Reply[] = [];
    const done = (): void => {
      clearTimeout(timer);
      socket.close();
      resolve(replies);
    };
    const timer = setTimeout(done, config.timeoutMs * 2);
    socket.on('message', (msg, rinfo) => {
      replies.push({ msg, from: rinfo.address });
      if (enough(replies)) done();
    });
    socket.bind(0, () => {
      if (multicast) {
        socket.setMulticastInterface(config.iface);
        socket.setMulticastTTL(2);
      }
      socket.send(payload, port, address);
    });
  });
}

async function main(): Promise<MarcodClientResult> {
  // Loaded at run time, as the other bench clients do: the client API may still move.
  const mod = (await import(pathToFileURL(config.indexModule).href)) as IndexModule;
  if (typeof mod.Marco !== 'function' || typeof mod.MarcodClient !== 'function') throw new Error(`${config.indexModule} exports no Marco or MarcodClient`);
  const marco = new mod.Marco();
  const viaMarcod = new mod.MarcodClient({ address: config.marcodAddress, port: config.marcodPort });
  const n = config.nodes;
  const query = Buffer.from(JSON.stringify({ Command: 'Request-For', Params: config.service }));
  const marcodRequest = Buffer.from(JSON.stringify({ Command: 'Request-For', Params: config.service, max_nodes: n, timeout: config.timeoutMs }));

  /** ms to all `n` nodes, or NaN when fewer answered. */
  const timed = async (fn: () => Promise<number>): Promise<number> => {
    const t0 = performance.now();
    const found = await fn();
    const ms = performance.now() - t0;
    return found >= n ? ms : Number.NaN;
  };
  const measure: Record<MarcodMode, () => Promise<number>> = {
    raw: () => timed(async () => new Set((await exchange(query, config.port, config.group, (r) => r.length >= n, true)).map((r) => r.from)).size),
    inProcess: () => timed(async () => (await marco.requestFor(config.service, { maxNodes: n, timeout: config.timeoutMs, interface: config.iface, group: config.group, port: config.port })).length),
    rawMarcod: () =>
      timed(async () => {
        const [reply] = await exchange(marcodRequest, config.marcodPort, config.marcodAddress, () => true, false);
        const nodes: unknown = reply === undefined ? [] : JSON.parse(reply.msg.toString());
        return Array.isArray(nodes) ? nodes.length : 0;
      }),
    marcodClient: () => timed(async () => (await viaMarcod.requestFor(config.service, { maxNodes: n, timeout: config.timeoutMs })).length),
  };

  // Every polod answering through marcod before anything is timed.
  const deadline = performance.now() + config.readyTimeoutMs;
  while (Number.isNaN(await measure.marcodClient()) || Number.isNaN(await measure.inProcess())) {
    if (performance.now() > deadline) throw new Error(`fewer than ${n} polods answered through marcod within ${config.readyTimeoutMs} ms`);
  }
  const result = Object.fromEntries(MARCOD_MODES.map((m) => [m, [] as (number | null)[]])) as MarcodClientResult;
  for (let round = -config.warmup; round < config.runs; round++) {
    // Rotating order: the first query of a round meets idle polods, and no way may always pay for it.
    const start = ((round % MARCOD_MODES.length) + MARCOD_MODES.length) % MARCOD_MODES.length;
    for (let k = 0; k < MARCOD_MODES.length; k++) {
      const mode = MARCOD_MODES[(start + k) % MARCOD_MODES.length] as MarcodMode;
      const ms = await measure[mode]();
      if (round >= 0) result[mode].push(Number.isNaN(ms) ? null : ms);
    }
  }
  return result;
}

main().then(
  (result) => console.log(JSON.stringify(result)),
  (err: unknown) => {
    console.error(`marcodClient: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
