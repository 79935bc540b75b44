/**
 * Grids across subnets on etcd (docs/operations.md, "Grids across subnets"): two namespace
 * LANs joined by a router that forwards unicast only, one etcd member on the first LAN, one
 * polod on each LAN registered in it, and clients on the first LAN (and one on the second for
 * the LAN baselines):
 *
 * 1. Request-For (first answer) of a service offered across the router, through the registry,
 *    next to the same query answered on the client's own LAN without the registry;
 * 2. the time a service change on one subnet takes to reach a `Marco.watch` on the other
 *    (registry), next to a watch on the changing node's own LAN (announcements);
 * 3. simulated grids of 10, 100 and 1,000 registered nodes (entries written straight into etcd,
 *    no processes): the raw etcd read, `marco()` and `requestFor()` of every node, a new
 *    watch's time until it holds the grid, and one change reaching a running watch.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { RegistryClientConfig, RegistryClientResult } from './child/registryClient.js';
import { distFile, POLOD_JS, polodStateArgs, requireBuilt, runChild, spawnPolod, stopProc, waitPolodStarted, withLan, withTempDir, writeServices } from './lib/env.js';
import { fmtMs, fmtRatio, type Section, type Table } from './lib/report.js';
import { summarize } from './lib/stats.js';
import type { Lan } from '../test/helpers/netns.js';
import { joinLans } from '../test/helpers/subnets.js';
import { etcdAvailable, startEtcdCluster } from '../test/helpers/etcd.js';
import type { Proc } from '../test/helpers/proc.js';

export interface RegistryBenchOptions {
  readonly runs: number;
  readonly warmup: number;
  readonly watchRuns: number;
  readonly scaleRuns: number;
  readonly sizes: readonly number[];
  readonly polodJs?: string;
  readonly log: (line: string) => void;
}

export const REGISTRY_DEFAULTS: Omit<RegistryBenchOptions, 'log'> = { runs: 50, warmup: 10, watchRuns: 20, scaleRuns: 10, sizes: [10, 100, 1000] };

const GROUP = '224.0.0.112';
/** The simulated grids live in a group no polod serves, so only registry entries answer. */
const SIM_GROUP = '224.0.0.150';
const PORT = 1337;

export async function benchRegistry(opts: RegistryBenchOptions): Promise<Section> {
  const program = opts.polodJs ?? POLOD_JS;
  requireBuilt(program, 'polod');
  if (!etcdAvailable()) throw new Error('etcd is not installed: run scripts/install-test-deps.sh (Debian package etcd-server)');
  const started = performance.now();
  // Subnets 157-158: no other benchmark's (bench/lib/env.ts withLan keeps them in 150-199).
  return withTempDir('bench-registry', (dir) =>
    withLan({ name: 'benchrga', hosts: 3, subnet: 157 }, (A) =>
      withLan({ name: 'benchrgb', hosts: 2, subnet: 158 }, (B) => measure(opts, program, dir, A, B, started)),
    ),
  );
}

/** Runs the benchmark on LANs A (etcd, near polod, clients) and B (far polod); stops what it started. */
async function measure(opts: RegistryBenchOptions, program: string, dir: string, A: Lan, B: Lan, started: number): Promise<Section> {
  let router: { destroy(): void } | undefined;
  let cluster: Awaited<ReturnType<typeof startEtcdCluster>> | undefined;
  const polods: Proc[] = [];
  try {
    router = await joinLans('benchrg', A, B);
    cluster = await startEtcdCluster([A.host(1)], { token: `benchrg-${process.pid}` });
    await cluster.waitHealthy(A.host(3));
    const registry = [cluster.endpoints];
    opts.log('registry: etcd up, two subnets joined');

    // polod a2 offers `near` on the client's LAN; polod b1 offers `far` across the router.
    const servicesDirs: string[] = [];
    for (const [host, service] of [
      [A.host(2), 'near'],
      [B.host(1), 'far'],
    ] as const) {
      const own = path.join(dir, host.ns);
      const services = path.join(own, 'services');
      await mkdir(services, { recursive: true });
      await writeServices(services, [{ id: service, params: { port: 8080 } }]);
      servicesDirs.push(services);
      const proc = spawnPolod(host, {
        program,
        args: [
          ...['--group', GROUP, '--port', String(PORT), '--interface', host.address, '--hostname', host.name],
          ...['--services-dir', services, '--log-level', 'info', '--registry', cluster.endpoints],
          ...(await polodStateArgs(own, program)),
        ],
      });
      polods.push(proc);
      await waitPolodStarted(proc, 60_000);
      await proc.waitForJsonLog((r) => r['msg'] === 'node registered in the registry', 'polod registered', 30_000);
    }
    const farPolod = polods[1] as Proc;
    const base = {
      discoveryModule: distFile('src/discovery/index.js'),
      etcdModule: distFile('src/etcd/client.js'),
      layoutModule: distFile('src/etcd/layout.js'),
      signedEntryModule: distFile('src/etcd/signedEntry.js'),
      gridAuthModule: distFile('src/auth/gridAuth.js'),
      group: GROUP,
      port: PORT,
      runs: opts.runs,
      warmup: opts.warmup,
      timeoutMs: 2000,
    };
    const client = A.host(3);
    const run = (host: typeof client, config: Partial<RegistryClientConfig> & Pick<RegistryClientConfig, 'mode' | 'iface' | 'service'>, timeoutMs = 600_000): Promise<RegistryClientResult> =>
      runChild<RegistryClientResult>(host, 'registryClient', { ...base, ...config }, { timeoutMs });

    const lanQuery = await run(client, { mode: 'query', iface: client.address, service: 'near' });
    const farQuery = await run(client, { mode: 'query', iface: client.address, service: 'far', registry });
    const mixedQuery = await run(client, { mode: 'query', iface: client.address, service: 'near', registry });
    opts.log('registry: queries done');
    const watchBase = { mode: 'watch' as const, service: 'flip', runs: opts.watchRuns, warmup: 2, polodPid: farPolod.pid as number, polodAddress: B.host(1).address, servicesDir: servicesDirs[1] as string };
    const lanWatch = await run(B.host(2), { ...watchBase, iface: B.host(2).address });
    const farWatch = await run(client, { ...watchBase, iface: client.address, registry });
    opts.log('registry: watches done');
    const scale = await run(client, { mode: 'scale', iface: client.address, service: 'sim', registry, group: SIM_GROUP, runs: opts.scaleRuns, warmup: 2, sizes: opts.sizes });
    opts.log('registry: simulated grids done');

    const med = (samples: readonly number[]): string => (samples.length === 0 ? 'n/a' : fmtMs(summarize(samples).median));
    const p95 = (samples: readonly number[]): string => (samples.length === 0 ? 'n/a' : fmtMs(summarize(samples).p95));
    const queries: Table = {
      caption: `Request-For, first answer (\`requestFor(service, { maxNodes: 1 })\`), ${opts.runs} runs each:`,
      header: ['query', 'median', 'p95', 'failures'],
      rows: [
        ['on the LAN, no registry (baseline)', med(lanQuery.query), p95(lanQuery.query), String(lanQuery.queryFailures)],
        ['across the router, through the registry', med(farQuery.query), p95(farQuery.query), String(farQuery.queryFailures)],
        ['on the LAN, registry also asked (first of both)', med(mixedQuery.query), p95(mixedQuery.query), String(mixedQuery.queryFailures)],
      ],
    };
    const watches: Table = {
      caption: `A service appearing and leaving on one polod (file + SIGUSR1) until a watch yields the event, ${opts.watchRuns} rounds:`,
      header: ['watcher', 'up median', 'up p95', 'down median', 'down p95', 'failures'],
      rows: [
        ['same LAN, announcements (baseline)', med(lanWatch.watch.up), p95(lanWatch.watch.up), med(lanWatch.watch.down), p95(lanWatch.watch.down), String(lanWatch.watch.failures)],
        ['other subnet, through the registry', med(farWatch.watch.up), p95(farWatch.watch.up), med(farWatch.watch.down), p95(farWatch.watch.down), String(farWatch.watch.failures)],
      ],
    };
    const grid: Table = {
      caption: `Simulated grids (one etcd member; every node a node key and one service key), medians of ${opts.scaleRuns} runs (watch: ${scale.scale[0]?.watchWarm.length ?? 0}):`,
      header: ['registered nodes', 'etcd range (raw)', 'marco() of all', 'requestFor() of all', 'new watch holds all', 'change reaches a watch'],
      rows: scale.scale.map((s) => [String(s.size), med(s.range), med(s.marco), med(s.requestFor), med(s.watchWarm), med(s.watchChange)]),
    };
    const biggest = scale.scale[scale.scale.length - 1];
    const keyed = scale.keyed;
    const keyedTable: Table | undefined =
      keyed === undefined || biggest === undefined
        ? undefined
        : {
            caption: `The ${keyed.size}-node grid again with every entry signed (a keyed grid, docs/protocol.md §10.1), read by a client holding the key, medians of ${opts.scaleRuns} runs:`,
            header: ['read', 'unsigned grid (above)', 'signed grid, verified', 'ratio'],
            rows: [
              ['marco() of all', med(biggest.marco), med(keyed.marco), `${fmtRatio(summarize(keyed.marco).median / summarize(biggest.marco).median)}×`],
              ['requestFor() of all', med(biggest.requestFor), med(keyed.requestFor), `${fmtRatio(summarize(keyed.requestFor).median / summarize(biggest.requestFor).median)}×`],
            ],
          };
    return {
      id: 'registry',
      title: 'Grids across subnets (etcd registry)',
      method:
        'Two namespace LANs joined by a router namespace that forwards unicast but not multicast; one etcd 3.4 member (Debian etcd-server) on the first; one polod per LAN with `--registry`; clients are in-process Marco instances (bench/child/registryClient.ts) on the first LAN, and on the second for the LAN watch baseline.',
      tables: [queries, watches, grid, ...(keyedTable === undefined ? [] : [keyedTable])],
      aims: [],
      keyFigures: [
        { what: 'Request-For across subnets through etcd (median)', measured: med(farQuery.query), baseline: `${med(lanQuery.query)} on one LAN` },
        { what: 'service change reaching a watcher on another subnet (median)', measured: med(farWatch.watch.up), baseline: `${med(lanWatch.watch.up)} on the same LAN` },
        ...(biggest === undefined
          ? []
          : [{ what: `marco() of a ${biggest.size}-node registered grid (median)`, measured: med(biggest.marco), baseline: `${med(biggest.range)} raw etcd range` }]),
      ],
      notes: [
        'A registry answer costs one HTTP request to etcd (the gRPC-JSON gateway) per query: the raw range column is its floor. Query and watch costs grow with the number of entries read; Request-For reads only the providers of one service (its own key prefix).',
        'A keyed reader checks one HMAC-SHA256 per entry read (and the entries are larger): the ratio is what verifying costs at that size.',
      ],
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await Promise.all(polods.map((p) => stopProc(p)));
    await cluster?.destroy();
    router?.destroy();
  }
}
