/**
 * The client side of the live-discovery benchmark, one process inside the client's namespace:
 *
 * - discover: rounds of (raw dgram floor until all N replied, `marco({ maxNodes: N })`, and
 *   `marco()` with N not given — which ends on the Members hint), interleaved; each timed around
 *   the call, a round counted only when all N nodes were found;
 * - watch (when `polodPid` is given): a `Marco.watch({ service })` runs; each round writes the
 *   service file into that polod's folder, sends it SIGUSR1 (namespaces share pids and files)
 *   and times until the watcher yields the event: `up` (file added), `update` (params changed),
 *   `down` (file removed).
 *
 * Usage: node liveClient.js '<LiveClientConfig as JSON>' — prints one JSON result line.
 */
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { timeServiceChanges } from '../lib/serviceChanges.js';

export interface LiveClientConfig {
  readonly group: string;
  readonly port: number;
  readonly iface: string;
  readonly nodes: number;
  readonly runs: number;
  readonly warmup: number;
  readonly timeoutMs: number;
  readonly readyTimeoutMs: number;
  readonly discoveryModule: string;
  /** The polod whose services change in the watch rounds, its address and services folder. */
  readonly polodPid?: number;
  readonly polodAddress?: string;
  readonly servicesDir?: string;
  readonly watchRuns?: number;
  /** marcod in this namespace, warm view and all; its rounds run when given. */
  readonly marcod?: { readonly address: string; readonly port: number; readonly service: string };
}

export interface LiveClientResult {
  raw: number[];
  maxNodes: number[];
  untilComplete: number[];
  failures: { raw: number; maxNodes: number; untilComplete: number };
  watch: { up: number[]; update: number[]; down: number[]; failures: number };
  /**
   * Request-For of every provider: through marcod's warm view, with fresh: true, in-process with
   * maxNodes N, and in-process with N not given (ended by the Providers hint).
   */
  marcod: { warm: number[]; fresh: number[]; inProcess: number[]; inProcessComplete: number[]; failures: number; wrong: number };
}

interface WatchEvent {
  event: string;
  address: string;
  params: Record<string, unknown>;
}
interface MarcoClient {
  marco(options: Record<string, unknown>): Promise<unknown[]>;
  requestFor(service: string, options: Record<string, unknown>): Promise<unknown[]>;
  watch(options: Record<string, unknown>): AsyncIterableIterator<WatchEvent> & { ready(): Promise<void> };
}

const config = JSON.parse(process.argv[2] ?? '{}') as LiveClientConfig;
const query = Buffer.from('{"Command":"Marco"}');

function rawRound(): Promise<number | undefined> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const socket = dgram.createSocket('udp4');
    const seen = new Set<string>();
    const done = (value: number | undefined): void => {
      clearTimeout(timer);
      socket.close();
      resolve(value);
    };
    const timer = setTimeout(() => done(undefined), config.timeoutMs);
    socket.on('message', (_msg, from) => {
      seen.add(from.address);
      if (seen.size >= config.nodes) done(performance.now() - t0);
    });
    socket.bind(0, () => {
      socket.setMulticastInterface(config.iface);
      socket.setMulticastTTL(2);
      socket.send(query, config.port, config.group);
    });
  });
}

async function timed(marco: MarcoClient, maxNodes: number | undefined): Promise<number | undefined> {
  const t0 = performance.now();
  const nodes = await marco.marco({
    group: config.group,
    port: config.port,
    timeout: config.timeoutMs,
    interface: config.iface,
    ...(maxNodes === undefined ? {} : { maxNodes }),
  });
  const ms = performance.now() - t0;
  return nodes.length >= config.nodes ? ms : undefined;
}

/** The largest Members hint in the replies to one Marco query (0: none). */
function largestHint(): Promise<number> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    let max = 0;
    const timer = setTimeout(() => {
      socket.close();
      resolve(max);
    }, 200);
    timer.unref();
    socket.on('message', (msg) => {
      try {
        const members = (JSON.parse(msg.toString()) as { Members?: unknown }).Members;
        if (typeof members === 'number' && members > max) max = members;
      } catch {
        // not a reply
      }
    });
    socket.bind(0, () => {
      socket.setMulticastInterface(config.iface);
      socket.send(query, config.port, config.group);
    });
  });
}

async function discoverRounds(marco: MarcoClient, result: LiveClientResult): Promise<void> {
  // Ready: the polods' views count every node (a reference-like node is found by their
  // membership queries, within 15 s of its start), and a query finds them all early.
  const deadline = performance.now() + config.readyTimeoutMs;
  for (;;) {
    const ms = (await largestHint()) >= config.nodes ? await timed(marco, undefined) : undefined;
    if (ms !== undefined && ms < config.timeoutMs / 2) break;
    if (performance.now() > deadline) throw new Error(`the ${config.nodes} nodes were not all found early within ${config.readyTimeoutMs} ms`);
  }
  const kinds = [
    async (): Promise<void> => push('raw', await rawRound()),
    async (): Promise<void> => push('maxNodes', await timed(marco, config.nodes)),
    async (): Promise<void> => push('untilComplete', await timed(marco, undefined)),
  ];
  let measured = false;
  const push = (kind: 'raw' | 'maxNodes' | 'untilComplete', ms: number | undefined): void => {
    if (!measured) return;
    if (ms === undefined) result.failures[kind]++;
    else result[kind].push(ms);
  };
  for (let round = -config.warmup; round < config.runs; round++) {
    measured = round >= 0;
    const start = ((round % 3) + 3) % 3;
    for (let k = 0; k < 3; k++) await kinds[(start + k) % 3]?.();
  }
}

async function watchRounds(marco: MarcoClient, result: LiveClientResult): Promise<void> {
  const { polodPid, polodAddress, servicesDir } = config;
  if (polodPid === undefined || polodAddress === undefined || servicesDir === undefined) return;
  const controller = new AbortController();
  const watch = marco.watch({ group: config.group, port: config.port, interface: config.iface, service: 'livebench', signal: controller.signal });
  await watch.ready();
  result.watch.failures += await timeServiceChanges<'up' | 'update' | 'down'>({
    watch,
    controller,
    polodPid,
    polodAddress,
    servicesDir,
    id: 'livebench',
    warmup: config.warmup,
    runs: config.watchRuns ?? config.runs,
    timeoutMs: 5000,
    steps: (round) => [
      ['up', { round, v: 1 }],
      ['update', { round, v: 2 }],
      ['down', undefined],
    ],
    times: result.watch,
  });
  controller.abort();
}

/** One request to marcod from a fresh socket; resolves with the reply's addresses (undefined: none). */
function marcodRequest(payload: Buffer, address: string, port: number): Promise<string[] | undefined> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    const done = (value: string[] | undefined): void => {
      clearTimeout(timer);
      socket.close();
      resolve(value);
    };
    const timer = setTimeout(() => done(undefined), config.timeoutMs * 2);
    socket.on('message', (msg) => {
      try {
        const list = JSON.parse(msg.toString()) as Array<{ Address: string }>;
        done(Array.isArray(list) ? list.map((n) => n.Address) : undefined);
      } catch {
        done(undefined);
      }
    });
    socket.bind(0, () => socket.send(payload, port, address));
  });
}

async function marcodRounds(marco: MarcoClient, result: LiveClientResult): Promise<void> {
  const m = config.marcod;
  if (m === undefined) return;
  const n = config.nodes;
  const warm = Buffer.from(JSON.stringify({ Command: 'Request-For', Params: m.service, timeout: config.timeoutMs }));
  const fresh = Buffer.from(JSON.stringify({ Command: 'Request-For', Params: m.service, timeout: config.timeoutMs, max_nodes: n, fresh: true }));
  const timedRequest = async (payload: Buffer): Promise<{ ms: number; nodes: string[] | undefined }> => {
    const t0 = performance.now();
    const nodes = await marcodRequest(payload, m.address, m.port);
    return { ms: performance.now() - t0, nodes };
  };
  // Warm: every provider, answered well before any query could have ended.
  const deadline = performance.now() + config.readyTimeoutMs;
  for (;;) {
    const r = await timedRequest(warm);
    if (r.nodes?.length === n && r.ms < 50) break;
    if (performance.now() > deadline) throw new Error(`marcod's view did not become warm within ${config.readyTimeoutMs} ms`);
  }
  let measured = false;
  const record = (list: number[], ms: number, nodes: number): void => {
    if (!measured) return;
    if (nodes === n) list.push(ms);
    else result.marcod.failures++;
  };
  const kinds = [
    async (): Promise<void> => {
      const r = await timedRequest(warm);
      // Never a node that has left, never a missing one: exactly the n providers.
      if (measured && r.nodes !== undefined && new Set(r.nodes).size !== r.nodes.length) result.marcod.wrong++;
      record(result.marcod.warm, r.ms, r.nodes?.length ?? 0);
    },
    async (): Promise<void> => {
      const r = await timedRequest(fresh);
      record(result.marcod.fresh, r.ms, r.nodes?.length ?? 0);
    },
    async (): Promise<void> => {
      const t0 = performance.now();
      const nodes = await marco.requestFor(m.service, { group: config.group, port: config.port, timeout: config.timeoutMs, interface: config.iface, maxNodes: n });
      record(result.marcod.inProcess, performance.now() - t0, nodes.length);
    },
    async (): Promise<void> => {
      const t0 = performance.now();
      const nodes = await marco.requestFor(m.service, { group: config.group, port: config.port, timeout: config.timeoutMs, interface: config.iface });
      record(result.marcod.inProcessComplete, performance.now() - t0, nodes.length);
    },
  ];
  for (let round = -config.warmup * 10; round < config.runs; round++) {
    measured = round >= 0;
    const start = ((round % kinds.length) + kinds.length) % kinds.length;
    for (let k = 0; k < kinds.length; k++) await kinds[(start + k) % kinds.length]?.();
  }
}

async function main(): Promise<LiveClientResult> {
  const mod = (await import(pathToFileURL(config.discoveryModule).href)) as { Marco: new () => MarcoClient };
  const marco = new mod.Marco();
  const result: LiveClientResult = {
    raw: [],
    maxNodes: [],
    untilComplete: [],
    failures: { raw: 0, maxNodes: 0, untilComplete: 0 },
    watch: { up: [], update: [], down: [], failures: 0 },
    marcod: { warm: [], fresh: [], inProcess: [], inProcessComplete: [], failures: 0, wrong: 0 },
  };
  await discoverRounds(marco, result);
  await marcodRounds(marco, result);
  await watchRounds(marco, result);
  return result;
}

main().then(
  (result) => {
    console.log(JSON.stringify(result));
    process.exit(0);
  },
  (err: unknown) => {
    console.error(`liveClient: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
