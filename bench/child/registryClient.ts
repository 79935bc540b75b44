/**
 * The client side of the grid registry benchmark (bench/registry.ts), one process inside a
 * client namespace. Modes:
 *
 * - query: `requestFor(service, { maxNodes: 1 })` timed, with or without `registry` (the same
 *   query answered on the LAN, or across the router through etcd);
 * - watch: a `Marco.watch({ service })` runs (with or without `registry`); each round writes the
 *   service file into one polod's folder and sends it SIGUSR1 (namespaces share pids and files)
 *   and times until the watcher yields `up`, then the same for `down`;
 * - scale: grids of N simulated nodes written straight into etcd (a node key and one service key
 *   each, as polod writes them), and for each N: the raw etcd range, `marco({ maxNodes: N })`
 *   and `requestFor(service, { maxNodes: N })` through the registry, a new watch's time until it
 *   holds all N, and the time one node's change takes to reach a running watch.
 *
 * Usage: node registryClient.js '<RegistryClientConfig as JSON>' — prints one JSON result line.
 */
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { timeServiceChanges } from '../lib/serviceChanges.js';

export interface RegistryClientConfig {
  readonly mode: 'query' | 'watch' | 'scale';
  readonly discoveryModule: string;
  readonly etcdModule: string;
  readonly layoutModule: string;
  /** scale: src/etcd/signedEntry.js and src/auth/gridAuth.js, for the keyed grid. */
  readonly signedEntryModule?: string;
  readonly gridAuthModule?: string;
  readonly registry?: readonly string[];
  readonly iface: string;
  readonly group: string;
  readonly port: number;
  readonly service: string;
  readonly runs: number;
  readonly warmup: number;
  readonly timeoutMs: number;
  /** watch: the polod whose service changes, its address and services folder. */
  readonly polodPid?: number;
  readonly polodAddress?: string;
  readonly servicesDir?: string;
  /** scale: grid sizes, in increasing order. */
  readonly sizes?: readonly number[];
}

export interface ScaleFigures {
  size: number;
  range: number[];
  marco: number[];
  requestFor: number[];
  watchWarm: number[];
  watchChange: number[];
}

/** The largest grid again with every entry signed, read by a client holding the key. */
export interface KeyedFigures {
  size: number;
  marco: number[];
  requestFor: number[];
}

export interface RegistryClientResult {
  query: number[];
  queryFailures: number;
  watch: { up: number[]; down: number[]; failures: number };
  scale: ScaleFigures[];
  keyed?: KeyedFigures;
}

interface WatchEvent {
  event: string;
  address: string;
}
type WatchIterator = AsyncIterableIterator<WatchEvent> & { ready(): Promise<void> };
interface MarcoClient {
  marco(options: Record<string, unknown>): Promise<unknown[]>;
  requestFor(service: string, options: Record<string, unknown>): Promise<unknown[]>;
  watch(options: Record<string, unknown>): WatchIterator;
}
interface EtcdLike {
  range(prefix: string): Promise<{ kvs: unknown[] }>;
  txn(writes: ReadonlyArray<{ put: string; value: string } | { delete: string; prefix?: boolean }>): Promise<void>;
}
interface Signing {
  signEntry(etcdKey: string, text: string, lease: string, key: unknown): string;
  gridKey(bytes: Buffer): unknown;
}
interface Layout {
  gridPrefix(group: string, port: number): string;
  nodeKey(group: string, port: number, address: string): string;
  serviceKey(group: string, port: number, id: string, address: string): string;
}

const config = JSON.parse(process.argv[2] ?? '{}') as RegistryClientConfig;
const result: RegistryClientResult = { query: [], queryFailures: 0, watch: { up: [], down: [], failures: 0 }, scale: [] };

async function queryRounds(marco: MarcoClient): Promise<void> {
  for (let round = -config.warmup; round < config.runs; round++) {
    const t0 = performance.now();
    const found = await marco.requestFor(config.service, { maxNodes: 1, timeout: config.timeoutMs });
    const ms = performance.now() - t0;
    if (round < 0) continue;
    if (found.length === 1) result.query.push(ms);
    else result.queryFailures++;
  }
}

/** The next event of `watch` for which `match` holds, within `timeoutMs`; undefined on timeout. */
async function nextEvent(watch: WatchIterator, match: (e: WatchEvent) => boolean, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
  const found = (async (): Promise<true> => {
    for (;;) {
      const next = await watch.next();
      if (next.done === true) throw new Error('the watch ended');
      if (match(next.value)) return true;
    }
  })();
  const outcome = await Promise.race([found, timeout]);
  clearTimeout(timer);
  return outcome;
}

async function watchRounds(marco: MarcoClient): Promise<void> {
  const { polodPid, polodAddress, servicesDir } = config;
  if (polodPid === undefined || polodAddress === undefined || servicesDir === undefined) throw new Error('watch mode needs the polod');
  const controller = new AbortController();
  const watch = marco.watch({ group: config.group, port: config.port, interface: config.iface, service: config.service, signal: controller.signal });
  await watch.ready();
  result.watch.failures += await timeServiceChanges<'up' | 'down'>({
    watch,
    controller,
    polodPid,
    polodAddress,
    servicesDir,
    id: config.service,
    warmup: config.warmup,
    runs: config.runs,
    timeoutMs: 10_000,
    steps: (round) => [
      ['up', { round }],
      ['down', undefined],
    ],
    times: result.watch,
  });
  controller.abort();
}

/** Simulated node i's address: 10.202.x.y, never contacted (only its registry entry exists). */
const simAddress = (i: number): string => `10.202.${Math.floor(i / 250)}.${(i % 250) + 1}`;

async function scaleRounds(marco: MarcoClient, etcd: EtcdLike, layout: Layout, signing: Signing | undefined): Promise<void> {
  const { group, port, service } = config;
  const record = (i: number, v: number): string =>
    JSON.stringify({ instance: `sim${i}`, rev: v, params: { hostname: `sim-${i}`, v }, services: [{ id: service, params: { port: 8000 + (i % 1000) } }] });
  /** Writes nodes [from, to), 50 nodes (100 keys) per transaction (etcd allows 128 ops); `sign` wraps each value. */
  const write = async (from: number, to: number, sign: (key: string, text: string) => string = (_k, text) => text): Promise<void> => {
    for (let start = from; start < to; start += 50) {
      const batch: Array<{ put: string; value: string }> = [];
      for (let i = start; i < Math.min(to, start + 50); i++) {
        const nodeKey = layout.nodeKey(group, port, simAddress(i));
        const serviceKey = layout.serviceKey(group, port, service, simAddress(i));
        batch.push({ put: nodeKey, value: sign(nodeKey, record(i, 1)) });
        batch.push({ put: serviceKey, value: sign(serviceKey, JSON.stringify({ port: 8000 + (i % 1000) })) });
      }
      await etcd.txn(batch);
    }
  };
  await etcd.txn([{ delete: layout.gridPrefix(group, port), prefix: true }]);
  let written = 0;
  for (const size of config.sizes ?? []) {
    await write(written, size);
    written = size;
    const figures: ScaleFigures = { size, range: [], marco: [], requestFor: [], watchWarm: [], watchChange: [] };
    const options = { group, port, interface: config.iface, timeout: config.timeoutMs, maxNodes: size };
    for (let round = -config.warmup; round < config.runs; round++) {
      let t0 = performance.now();
      const kvs = (await etcd.range(`${layout.gridPrefix(group, port)}nodes/`)).kvs.length;
      const range = performance.now() - t0;
      t0 = performance.now();
      const nodes = (await marco.marco(options)).length;
      const all = performance.now() - t0;
      t0 = performance.now();
      const providers = (await marco.requestFor(service, options)).length;
      const offers = performance.now() - t0;
      if (kvs !== size || nodes !== size || providers !== size) throw new Error(`grid of ${size}: range ${kvs}, marco ${nodes}, request-for ${providers}`);
      if (round < 0) continue;
      figures.range.push(range);
      figures.marco.push(all);
      figures.requestFor.push(offers);
    }
    // A new watch until it holds every node, then single changes reaching it.
    const watchRuns = Math.max(3, Math.round(config.runs / 2));
    for (let round = 0; round < watchRuns; round++) {
      const controller = new AbortController();
      const t0 = performance.now();
      const watch = marco.watch({ group, port, interface: config.iface, signal: controller.signal });
      let ups = 0;
      const warm = await nextEvent(watch, (e) => e.event === 'up' && ++ups >= size, 30_000);
      if (!warm) throw new Error(`a watch of ${size} nodes saw ${ups} within 30 s`);
      figures.watchWarm.push(performance.now() - t0);
      const target = simAddress(round % size);
      const c0 = performance.now();
      await etcd.txn([{ put: layout.nodeKey(group, port, target), value: record(round % size, 1000 * size + round) }]);
      const changed = await nextEvent(watch, (e) => e.event === 'update' && e.address === target, 10_000);
      if (!changed) throw new Error(`the change of ${target} did not reach the watch of ${size} nodes`);
      figures.watchChange.push(performance.now() - c0);
      controller.abort();
    }
    result.scale.push(figures);
  }
  if (signing !== undefined && written > 0) {
    // The same grid, keyed: every entry signed (without a lease, as these entries have none).
    const key = signing.gridKey(Buffer.alloc(32, 0x4b));
    await write(0, written, (etcdKey, text) => signing.signEntry(etcdKey, text, '0', key));
    const keyed: KeyedFigures = { size: written, marco: [], requestFor: [] };
    const options = { group, port, interface: config.iface, timeout: config.timeoutMs, maxNodes: written, keys: [key] };
    for (let round = -config.warmup; round < config.runs; round++) {
      let t0 = performance.now();
      const nodes = (await marco.marco(options)).length;
      const all = performance.now() - t0;
      t0 = performance.now();
      const providers = (await marco.requestFor(service, options)).length;
      const offers = performance.now() - t0;
      if (nodes !== written || providers !== written) throw new Error(`keyed grid of ${written}: marco ${nodes}, request-for ${providers}`);
      if (round < 0) continue;
      keyed.marco.push(all);
      keyed.requestFor.push(offers);
    }
    result.keyed = keyed;
  }
  await etcd.txn([{ delete: layout.gridPrefix(group, port), prefix: true }]);
}

async function main(): Promise<void> {
  const { Marco } = (await import(pathToFileURL(config.discoveryModule).href)) as { Marco: new (o: Record<string, unknown>) => MarcoClient };
  const marco = new Marco({ ...(config.registry !== undefined && { registry: config.registry }), interface: config.iface, port: config.port, group: config.group });
  if (config.mode === 'query') await queryRounds(marco);
  else if (config.mode === 'watch') await watchRounds(marco);
  else {
    const { EtcdClient } = (await import(pathToFileURL(config.etcdModule).href)) as { EtcdClient: new (o: { endpoints: readonly string[] }) => EtcdLike };
    const layout = (await import(pathToFileURL(config.layoutModule).href)) as Layout;
    const signing =
      config.signedEntryModule === undefined || config.gridAuthModule === undefined
        ? undefined
        : {
            ...((await import(pathToFileURL(config.signedEntryModule).href)) as Pick<Signing, 'signEntry'>),
            ...((await import(pathToFileURL(config.gridAuthModule).href)) as Pick<Signing, 'gridKey'>),
          };
    await scaleRounds(marco, new EtcdClient({ endpoints: config.registry ?? [] }), layout, signing);
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(1);
  },
);
