/**
 * What marcod adds to a discovery: Request-For through marcod (the MarcodClient library, and a
 * bare socket) against the in-process Marco library, measured in the same run on the same
 * namespace LAN. 10 polods offer `web`, one per host; the client host runs marcod bound to
 * 127.0.1.1 in its own namespace and the client program (bench/child/marcodClient.ts), which
 * times every way round by round.
 */
import { performance } from 'node:perf_hooks';
import type { MarcodClientConfig, MarcodClientResult } from './child/marcodClient.js';
import { distFile, POLOD_JS, requireBuilt, runChild, startGrid, withLan, withTempDir } from './lib/env.js';
import { MARCOD_MODES, type MarcodMode } from './lib/modes.js';
import { fmtMs, fmtRatio, type Section } from './lib/report.js';
import { median, summarize } from './lib/stats.js';

/** Knobs of the marcod benchmark. */
export interface MarcodBenchOptions {
  /** Hosts running polod, each offering the service. */
  readonly nodes: number;
  readonly runs: number;
  readonly warmup: number;
  /** Another polod build (default: this checkout's). */
  readonly polodJs?: string;
  readonly log: (line: string) => void;
}

/**
 * 10 polods, 50 rounds after 200 untimed ones: about 10 s, most of it starting the polods. The
 * rounds take milliseconds each, so a short warm-up would leave the first measured rounds to
 * freshly started processes whose JIT has not compiled the query path yet (they ran visibly
 * slower).
 */
export const MARCOD_DEFAULTS: Omit<MarcodBenchOptions, 'log'> = { nodes: 10, runs: 50, warmup: 200 };

const GROUP = '224.0.0.112';
const PORT = 1337;
const MARCOD_ADDRESS = '127.0.1.1';
const MARCOD_PORT = 1338;
const SERVICE = 'web';
const TIMEOUT_MS = 1000;
export const MARCOD_JS = distFile('src/cli/marcod.js');

const LABELS: Record<MarcodMode, string> = {
  raw: 'raw dgram socket to the group (floor)',
  inProcess: 'in-process `Marco.requestFor` (baseline)',
  rawMarcod: 'bare dgram socket → marcod',
  marcodClient: '`MarcodClient.requestFor` → marcod',
};

/** Runs the benchmark and returns its section of the report. */
export async function benchMarcod(opts: MarcodBenchOptions): Promise<Section> {
  const program = opts.polodJs ?? POLOD_JS;
  requireBuilt(program, 'polod');
  requireBuilt(MARCOD_JS, 'marcod');
  const indexModule = distFile('src/index.js');
  requireBuilt(indexModule, 'the library (src/index.ts)');
  const started = performance.now();
  return withTempDir('bench-md', (dir) =>
    withLan({ name: 'benchmd', hosts: opts.nodes + 1, subnet: 154 }, async (lan) => {
      await startGrid(lan.hosts.slice(0, opts.nodes), {
        program,
        dir,
        group: GROUP,
        port: PORT,
        services: (host) => [{ id: SERVICE, params: { port: 8080, path: '/index', node: host.index } }],
      });
      const client = lan.host(opts.nodes + 1);
      const marcodArgs = [
        ...['--bind', MARCOD_ADDRESS, '--port', String(MARCOD_PORT), '--interface', client.address, '--group', GROUP],
        ...['--timeout', String(TIMEOUT_MS), '--log-level', 'info'],
      ];
      const marcod = client.spawn([process.execPath, MARCOD_JS, ...marcodArgs]);
      await marcod.waitForJsonLog((r) => r['msg'] === 'marcod started', "marcod's 'marcod started'", 30_000);
      opts.log(`marcod: ${opts.nodes} polods and marcod started`);
      const config: MarcodClientConfig = {
        indexModule,
        group: GROUP,
        port: PORT,
        iface: client.address,
        marcodAddress: MARCOD_ADDRESS,
        marcodPort: MARCOD_PORT,
        service: SERVICE,
        nodes: opts.nodes,
        runs: opts.runs,
        warmup: opts.warmup,
        timeoutMs: TIMEOUT_MS,
        readyTimeoutMs: 15_000,
      };
      let r: MarcodClientResult;
      try {
        r = await runChild<MarcodClientResult>(client, 'marcodClient', config, { timeoutMs: 180_000 });
      } catch (err) {
        throw new Error(`${(err as Error).message}\n--- marcod stderr ---\n${marcod.stderr.slice(-2000)}`, { cause: err });
      }
      await marcod.stop(5000);
      const problems = [...new Set(marcod.jsonLogs().filter((l) => typeof l['level'] === 'number' && l['level'] >= 40).map((l) => String(l['msg'])))];
      opts.log(`marcod: ${opts.runs} rounds measured`);
      return report(opts, r, `node dist/src/cli/marcod.js ${marcodArgs.join(' ').replace(client.address, '<client address>')}`, problems, (performance.now() - started) / 1000);
    }),
  );
}

function report(opts: MarcodBenchOptions, r: MarcodClientResult, command: string, problems: readonly string[], seconds: number): Section {
  const ok = (xs: readonly (number | null)[]): number[] => xs.filter((x): x is number => x !== null);
  const s = Object.fromEntries(MARCOD_MODES.map((m) => [m, summarize(ok(r[m]))])) as Record<MarcodMode, ReturnType<typeof summarize>>;
  // Paired by round: the two measurements of a round are a few ms apart.
  const pairs = r.marcodClient.flatMap((m, i) => {
    const b = r.inProcess[i];
    return m === null || b === null || b === undefined ? [] : [{ m, b }];
  });
  const diff = median(pairs.map(({ m, b }) => m - b));
  const ratio = s.marcodClient.median / s.inProcess.median;
  const rawDiff = median(
    r.rawMarcod.flatMap((m, i) => {
      const b = r.raw[i];
      return m === null || b === null || b === undefined ? [] : [m - b];
    }),
  );
  const n = opts.nodes;
  const failures = MARCOD_MODES.map((m) => [m, r[m].filter((x) => x === null).length] as const).filter(([, k]) => k > 0);
  const notes = [
    `${n} polods on ${n} namespace hosts of one bridge, each offering \`${SERVICE}\`; marcod and the client on an ${n + 1}th host: \`${command}\`. ${opts.runs} measured rounds after ${opts.warmup} untimed ones, each round timing every way once (order rotating). Every query: Request-For \`${SERVICE}\`, maxNodes ${n}, timeout ${TIMEOUT_MS} ms; the time is to the ${n}th node (the call returns then).`,
    `MarcodClient − in-process, median of per-round differences: ${fmtMs(diff)}; bare socket → marcod − raw group socket: ${fmtMs(rawDiff)} (marcod's own share, without either client library).`,
    "marcod answers from its warm view of the grid once that view is complete (src/marcod/warmView.ts), which it is here after its first second: the marcod rows are view answers, no network query. The same request forced to query (`\"fresh\": true`) is measured in the live benchmark.",
    'The in-process row is what a Node.js program gets from the library; the marcod rows are what it gets through the daemon — the path of the bindings in other languages, whose own overhead (not measured here) comes on top of the bare-socket row.',
    failures.length === 0
      ? `Every round of every way found all ${n} nodes.`
      : `Rounds that did not find all ${n} nodes (left out): ${failures.map(([m, k]) => `${m} ${k}`).join(', ')}.`,
  ];
  if (problems.length > 0) notes.push(`marcod logged warnings or errors during the run: ${problems.map((m) => `"${m}"`).join(', ')}.`);
  return {
    id: 'marcod',
    title: `marcod overhead (${n} polods)`,
    method: `Time to all ${n} answers of a Request-For, median / p95 over ${opts.runs} rounds: through marcod (127.0.1.1:${MARCOD_PORT} in the client's namespace) against the in-process Marco library, same LAN, same run. The issue states no aim for marcod: the in-process library is the yardstick.`,
    tables: [
      {
        header: ['way', `all ${n} (median / p95)`, 'min', '÷ in-process (medians)'],
        rows: MARCOD_MODES.map((m) => [
          LABELS[m],
          `${fmtMs(s[m].median)} / ${fmtMs(s[m].p95)}`,
          fmtMs(s[m].min),
          m === 'inProcess' ? '1' : fmtRatio(s[m].median / s.inProcess.median),
        ]),
      },
      {
        header: ['marcod adds (MarcodClient vs in-process)', 'value'],
        rows: [
          ['difference of medians', fmtMs(s.marcodClient.median - s.inProcess.median)],
          ['median of per-round differences', fmtMs(diff)],
          ['ratio of medians', `**${fmtRatio(ratio)}**`],
        ],
      },
    ],
    aims: [],
    keyFigures: [
      {
        what: `Request-For, all ${n} nodes, through marcod (MarcodClient), median`,
        measured: `${fmtMs(s.marcodClient.median)} (× ${fmtRatio(ratio)}, + ${fmtMs(s.marcodClient.median - s.inProcess.median)})`,
        baseline: `${fmtMs(s.inProcess.median)}: in-process Marco library`,
      },
    ],
    notes,
    seconds,
  };
}
