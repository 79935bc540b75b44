/**
 * Live discovery on a namespace LAN of 20 nodes and one client (docs/protocol.md §8):
 *
 * 1. 20 polods: `marco()` with N not given (ended by the Members hint) against the same-run
 *    baselines — the raw socket floor and `marco({ maxNodes: 20 })` (N known) — and the time a
 *    `Marco.watch({ service })` takes to see a service appear, change and leave on one polod.
 * 2. The same grid with one polod replaced by a reference-like polod (test/helpers/reference-polod.ts:
 *    answers queries, never announces): `marco()` with N not given again.
 */
import { performance } from 'node:perf_hooks';
import type { LiveClientConfig, LiveClientResult } from './child/liveClient.js';
import { distFile, POLOD_JS, requireBuilt, runChild, startGrid, stopProc, withLan, withTempDir } from './lib/env.js';
import { fmtMs, type Section } from './lib/report.js';
import { summarize, type Summary } from './lib/stats.js';

export interface LiveOptions {
  readonly nodes: number;
  readonly runs: number;
  readonly warmup: number;
  readonly watchRuns: number;
  readonly polodJs?: string;
  readonly log: (line: string) => void;
}

export const LIVE_DEFAULTS: Omit<LiveOptions, 'log'> = { nodes: 20, runs: 50, warmup: 20, watchRuns: 30 };

/** Aims stated in the issue (medians). */
export const LIVE_AIMS = { untilCompleteMs: 10, watchMs: 50, marcodWarmMs: 1 };

const GROUP = '224.0.0.112';
const PORT = 1337;
const SERVICE = 'web';
const MARCOD_JS = distFile('src/cli/marcod.js');
const MARCOD_ADDRESS = '127.0.1.1';
const MARCOD_PORT = 1338;

export async function benchLive(opts: LiveOptions): Promise<Section> {
  const program = opts.polodJs ?? POLOD_JS;
  requireBuilt(program, 'polod');
  const discoveryModule = distFile('src/discovery/index.js');
  const reference = distFile('test/helpers/reference-polod.js');
  requireBuilt(reference, 'the reference stand-in (test/helpers/reference-polod.ts)');
  const started = performance.now();
  return withTempDir('bench-live', (dir) =>
    withLan({ name: 'benchlive', hosts: opts.nodes + 1, subnet: 155 }, async (lan) => {
      const { polods, servicesDirs } = await startGrid(lan.hosts.slice(0, opts.nodes), {
        program,
        dir,
        group: GROUP,
        port: PORT,
        services: (host) => [{ id: SERVICE, params: { port: 8080, node: host.index } }],
      });
      opts.log(`live: ${opts.nodes} polods started`);
      const client = lan.host(opts.nodes + 1);
      const base: LiveClientConfig = {
        group: GROUP,
        port: PORT,
        iface: client.address,
        nodes: opts.nodes,
        runs: opts.runs,
        warmup: opts.warmup,
        timeoutMs: 1000,
        readyTimeoutMs: 30_000,
        discoveryModule,
      };
      const first = lan.host(1);
      const marcod = client.spawn([
        process.execPath, MARCOD_JS, '--bind', MARCOD_ADDRESS, '--port', String(MARCOD_PORT), '--interface', client.address,
        '--group', GROUP, '--timeout', '1000', '--log-level', 'info',
      ]);
      let ours: LiveClientResult;
      try {
        await marcod.waitForJsonLog((r) => r['msg'] === 'marcod started', "marcod's 'marcod started'", 30_000);
        ours = await runChild<LiveClientResult>(
          client,
          'liveClient',
          {
            ...base,
            polodPid: polods[0]?.pid,
            polodAddress: first.address,
            servicesDir: servicesDirs[0],
            watchRuns: opts.watchRuns,
            marcod: { address: MARCOD_ADDRESS, port: MARCOD_PORT, service: SERVICE },
          },
          { timeoutMs: 300_000 },
        );
      } finally {
        await stopProc(marcod);
      }
      opts.log('live: all-polod grid measured');

      // One node becomes a reference-like polod: stop the last polod (its goodbye empties the
      // views), start the stand-in on the same host, and measure again.
      const last = lan.hosts[opts.nodes - 1];
      const lastPolod = polods[opts.nodes - 1];
      if (last === undefined || lastPolod === undefined) throw new Error('no last host');
      await stopProc(lastPolod);
      const stand = last.spawn([process.execPath, reference, '--group', GROUP, '--interface', last.address, '--params', '{"hostname": "reference"}']);
      try {
        await stand.waitForLine((l) => l === 'ready', 'the reference stand-in', 20_000);
        const mixed = await runChild<LiveClientResult>(client, 'liveClient', base, { timeoutMs: 300_000 });
        opts.log('live: mixed grid measured');
        return report(opts, ours, mixed, (performance.now() - started) / 1000);
      } finally {
        await stopProc(stand);
      }
    }),
  );
}

function report(opts: LiveOptions, ours: LiveClientResult, mixed: LiveClientResult, seconds: number): Section {
  const n = opts.nodes;
  const cell = (s: Summary): string => (s.n === 0 ? 'n/a' : `${fmtMs(s.median)} / ${fmtMs(s.p95)}`);
  const s = {
    raw: summarize(ours.raw),
    maxNodes: summarize(ours.maxNodes),
    complete: summarize(ours.untilComplete),
    mixedRaw: summarize(mixed.raw),
    mixedMax: summarize(mixed.maxNodes),
    mixedComplete: summarize(mixed.untilComplete),
    up: summarize(ours.watch.up),
    update: summarize(ours.watch.update),
    down: summarize(ours.watch.down),
    warm: summarize(ours.marcod.warm),
    fresh: summarize(ours.marcod.fresh),
    inProcess: summarize(ours.marcod.inProcess),
    inProcessComplete: summarize(ours.marcod.inProcessComplete),
  };
  const watchAll = summarize([...ours.watch.up, ...ours.watch.update, ...ours.watch.down]);
  const failures = (r: LiveClientResult): string => `raw ${r.failures.raw}, maxNodes ${r.failures.maxNodes}, N not given ${r.failures.untilComplete}`;
  return {
    id: 'live',
    title: `Live discovery (${n} nodes)`,
    method: `All ${n} nodes of a Marco query with N not given (ended by the Members hint of docs/protocol.md) against the same-run raw floor and \`maxNodes: ${n}\`; and the time a watcher takes to see a service appear, change and leave. Median / p95 over ${opts.runs} rounds (watch: ${opts.watchRuns} rounds of each event).`,
    tables: [
      {
        header: ['measurement', `${n} polods (median / p95)`, `${n - 1} polods + 1 reference-like (median / p95)`],
        rows: [
          ['raw dgram socket until all answered (floor)', cell(s.raw), cell(s.mixedRaw)],
          [`Marco library, \`maxNodes: ${n}\` (N known, baseline)`, cell(s.maxNodes), cell(s.mixedMax)],
          ['Marco library, N not given (before this change: the 1000 ms deadline)', cell(s.complete), cell(s.mixedComplete)],
        ],
      },
      {
        header: [`Request-For of ${n} providers (bare dgram client)`, 'median / p95'],
        rows: [
          ["through marcod, from its warm view", cell(s.warm)],
          [`through marcod, \`"fresh": true, "max_nodes": ${n}\` (a network query, as before)`, cell(s.fresh)],
          [`in-process \`Marco.requestFor\`, maxNodes ${n} (baseline)`, cell(s.inProcess)],
          ['in-process `Marco.requestFor`, N not given (ended by the Providers hint; before it, the 1000 ms deadline)', cell(s.inProcessComplete)],
        ],
      },
      {
        header: ['watch event on a service of one polod (file + SIGUSR1 → event)', 'median / p95'],
        rows: [
          ['up (service added)', cell(s.up)],
          ['update (params changed)', cell(s.update)],
          ['down (service removed)', cell(s.down)],
        ],
      },
    ],
    aims: [
      {
        what: `all ${n} nodes, N not given, in-client (median)`,
        target: `≤ ${LIVE_AIMS.untilCompleteMs} ms`,
        measured: fmtMs(s.complete.median),
        met: s.complete.median <= LIVE_AIMS.untilCompleteMs,
        reference: '1000 ms (the deadline)',
        why: `the same run's floor is ${fmtMs(s.raw.median)} and maxNodes ${n} takes ${fmtMs(s.maxNodes.median)}; the grace after the last answer is 3 ms`,
      },
      {
        what: `the same, one of the ${n} a reference-like polod (median)`,
        target: `≤ ${LIVE_AIMS.untilCompleteMs} ms`,
        measured: fmtMs(s.mixedComplete.median),
        met: s.mixedComplete.median <= LIVE_AIMS.untilCompleteMs,
        reference: '1000 ms (the deadline)',
        why: `floor ${fmtMs(s.mixedRaw.median)}, maxNodes ${n} ${fmtMs(s.mixedMax.median)}; the reference node is counted through the polods' membership queries`,
      },
      {
        what: `Request-For, ${n} providers, through marcod's warm view (median)`,
        target: `≤ ${LIVE_AIMS.marcodWarmMs} ms`,
        measured: fmtMs(s.warm.median),
        met: s.warm.median <= LIVE_AIMS.marcodWarmMs,
        reference: '≈ 1 ms plus the full query',
        why: `the same request as a fresh query takes ${fmtMs(s.fresh.median)}, the in-process library ${fmtMs(s.inProcess.median)}; replies with a wrong or duplicate node: ${ours.marcod.wrong}`,
      },
      {
        what: 'a service change seen by a watcher (median)',
        target: `≤ ${LIVE_AIMS.watchMs} ms`,
        measured: fmtMs(watchAll.median),
        met: watchAll.median <= LIVE_AIMS.watchMs,
        why: `up ${fmtMs(s.up.median)}, update ${fmtMs(s.update.median)}, down ${fmtMs(s.down.median)}; includes the signal, polod's reload of its folder and the announcement`,
      },
    ],
    keyFigures: [
      {
        what: `Request-For, ${n} providers, N not given, in-client (median)`,
        measured: `${fmtMs(s.inProcessComplete.median)}, on the Providers hint`,
        baseline: `maxNodes ${n} (N known): ${fmtMs(s.inProcess.median)}; before the hint, the 1000 ms deadline`,
      },
    ],
    notes: [
      `${n} polods (\`--log-level info\`), one per namespace host of one bridge, client on a ${n + 1}st host; the in-client rows rotate their order round by round.`,
      `Rounds without all ${n} nodes (left out): ${failures(ours)} (all polods); ${failures(mixed)} (mixed); watch rounds lost: ${ours.watch.failures}; marcod rounds without exactly ${n} providers: ${ours.marcod.failures}.`,
      `marcod: \`node dist/src/cli/marcod.js --bind ${MARCOD_ADDRESS} --port ${MARCOD_PORT} --interface <client address> --group ${GROUP}\` in the client namespace; its rounds come after the discovery rounds, once its view answers all ${n} providers.`,
    ],
    seconds,
  };
}
