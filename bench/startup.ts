/**
 * `marco`'s own start-up: the wall time of a whole `marco discover` against a polod on the same
 * host, minus `node -e ''` timed in the same rounds — what marco adds to Node's own start-up
 * (module loading, option parsing, the query). `marco --version` isolates loading and parsing.
 * The command timed is the installed one, dist/bin/marco.cjs (scripts/bundle-marco.mjs: a loader
 * that compiles the bundled command with a V8 code cache).
 * Also polod's private memory (RssAnon) with 10 services, the other aim of the same issue,
 * read after it answered a few queries.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { StartupTimerConfig, StartupTimerResult } from './child/startupTimer.js';
import { MARCO_JS, polodStateArgs, requireBuilt, runChild, spawnPolod, waitPolodStarted, withLan, withTempDir, writeServices } from './lib/env.js';
import { memoryOf, waitCpuIdle } from './lib/procfs.js';
import { fmtMB, fmtMs, type Section } from './lib/report.js';
import { median, p95 } from './lib/stats.js';

/** Knobs of the start-up benchmark. */
export interface StartupOptions {
  /** Timed rounds (each runs every command once). */
  readonly runs: number;
  readonly warmup: number;
  /** Another polod build (default: this checkout's). */
  readonly polodJs?: string;
  readonly log: (line: string) => void;
}

/** 60 rounds of 3 commands: about 15 s. */
export const STARTUP_DEFAULTS: Omit<StartupOptions, 'log'> = { runs: 60, warmup: 5 };

/** The aims: marco's own start-up, polod's private memory with 10 services. */
export const STARTUP_AIM_MS = 10;
export const RSS_ANON_AIM_MB = 20;

const GROUP = '224.0.0.112';
const IFACE = '127.0.0.1';
const PORT = 1337;

export async function benchStartup(opts: StartupOptions): Promise<Section> {
  requireBuilt(MARCO_JS, 'marco');
  const started = performance.now();
  return withTempDir('bench-startup', async (dir) => {
    const services = path.join(dir, 'services');
    await mkdir(services);
    await writeServices(services, Array.from({ length: 10 }, (_, i) => ({ id: `svc${i + 1}`, params: { port: 10_000 + i } })));
    const state = await polodStateArgs(dir, opts.polodJs);
    return withLan({ name: 'benchstart', hosts: 1, subnet: 153 }, async (lan) => {
      const host = lan.host(1);
      const polod = spawnPolod(host, {
        ...(opts.polodJs !== undefined && { program: opts.polodJs }),
        args: ['--group', GROUP, '--interface', IFACE, '--port', String(PORT), '--services-dir', services, '--log-level', 'info', ...state],
      });
      try {
        await waitPolodStarted(polod, 60_000);
        const pid = polod.pid;
        if (pid === undefined) throw new Error('polod has no pid');
        const node = process.execPath;
        const config: StartupTimerConfig = {
          runs: opts.runs,
          warmup: opts.warmup,
          commands: {
            node: [node, '-e', ''],
            discover: [node, MARCO_JS, 'discover', '--group', GROUP, '--interface', IFACE, '--port', String(PORT), '--max-nodes', '1', '--timeout', '5000'],
            version: [node, MARCO_JS, '--version'],
          },
        };
        opts.log(`startup: ${opts.runs} rounds of node -e '', marco discover, marco --version`);
        const timed = await runChild<StartupTimerResult>(host, 'startupTimer', config, { timeoutMs: 300_000 });
        if ((timed.failures['discover'] ?? 0) > 0) throw new Error(`marco discover failed ${timed.failures['discover']} times`);
        await waitCpuIdle(pid, { quietMs: 300 });
        const memory = memoryOf(pid);
        return report(opts, timed, memory.anonKiB, memory.rssKiB, (performance.now() - started) / 1000);
      } finally {
        await polod.stop(5000);
      }
    });
  });
}

function report(opts: StartupOptions, timed: StartupTimerResult, anonKiB: number, rssKiB: number, seconds: number): Section {
  const node = timed.ms['node'] ?? [];
  const diff = (name: string): number[] => (timed.ms[name] ?? []).map((t, i) => t - (node[i] ?? Number.NaN));
  const own = median(diff('discover'));
  const versionOwn = median(diff('version'));
  const anonMB = (anonKiB * 1024) / 1e6;
  const cpu = (name: string): number => timed.cpuMs[name] ?? Number.NaN;
  const row = (what: string, name: string): string[] => [
    what,
    fmtMs(median(timed.ms[name] ?? [])),
    fmtMs(p95(timed.ms[name] ?? [])),
    name === 'node' ? '' : fmtMs(median(diff(name))),
    fmtMs(cpu(name)),
    name === 'node' ? '' : fmtMs(cpu(name) - cpu('node')),
  ];
  return {
    id: 'startup',
    title: 'marco start-up and polod private memory',
    method:
      `Wall time from spawn to exit, ${opts.runs} rounds after ${opts.warmup} untimed ones, each round running \`node -e ''\`, ` +
      '`marco discover --max-nodes 1` (answered by a polod with 10 services on loopback in the same namespace) and `marco --version` ' +
      "in turn; \"marco's own\" is the median of the per-round differences from `node -e ''`. polod's RssAnon is read from /proc/<pid>/status " +
      'after those queries, once it had been idle for 300 ms.',
    tables: [
      {
        header: ['command', 'median', 'p95', "marco's own (minus node -e '')", 'CPU per run (mean)', "CPU, marco's own"],
        rows: [row("`node -e ''` (baseline)", 'node'), row('`marco discover --max-nodes 1`', 'discover'), row('`marco --version`', 'version')],
      },
      {
        header: ['process', 'private (RssAnon)', 'RSS (VmRSS)'],
        rows: [['polod, 10 services, after the queries', fmtMB(anonKiB), fmtMB(rssKiB)]],
      },
    ],
    aims: [
      {
        what: "marco's own start-up (discover minus node -e '')",
        target: `≤ ${STARTUP_AIM_MS} ms`,
        measured: fmtMs(own),
        met: own <= STARTUP_AIM_MS,
        why:
          `in CPU time, less sensitive to other work on the machine, marco adds ${fmtMs(cpu('discover') - cpu('node'))} to Node's ${fmtMs(cpu('node'))}; ` +
          `loading alone (marco --version: one CommonJS bundle compiled from its V8 code cache) cost ${fmtMs(versionOwn)} over Node's ${fmtMs(median(node))}; ` +
          `the query the other ${fmtMs(own - versionOwn)}: node:dgram, the socket (bound without the node:cluster check of ` +
          "dgram's bind, src/transport/udp.ts), the send, one answer, the close"
      },
      {
        what: 'polod private memory (RssAnon), 10 services',
        target: `≤ ${RSS_ANON_AIM_MB} MB`,
        measured: fmtMB(anonKiB),
        met: anonMB <= RSS_ANON_AIM_MB,
        why: 'see the memory section for an idle Node.js process\'s own RssAnon, the floor under any Node.js daemon',
      },
    ],
    notes: [
      "The per-round difference pairs each run with the `node -e ''` run just before it, so a busy moment of the machine weighs on both.",
      "CPU per run: each command run again as many times in a row by bash, whose `times` gives its children's user and system time; the mean per run. Node's own threads (V8's compiler and GC helpers) count too.",
    ],
    seconds,
  };
}
