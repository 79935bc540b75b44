/**
 * polod's resident memory with a small and a large service folder, next to an idle Node.js
 * process measured in the same run. Each polod runs alone in a namespace on loopback, answers a
 * few queries (so the reply path has run and its allocations are counted), goes idle, and then
 * VmRSS is read. All polods share one state folder, seeded by a first start that creates the
 * publish API's TLS key: later starts, the daemon's normal case, find it there.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { LanHost } from '../test/helpers/netns.js';
import type { LoadGenConfig, LoadGenResult } from './child/loadGen.js';
import { POLOD_JS, polodStateArgs, requireBuilt, runChild, spawnPolod, waitPolodStarted, withLan, withTempDir, writeServices } from './lib/env.js';
import { memoryOf, waitCpuIdle } from './lib/procfs.js';
import { fmtInt, fmtMB, fmtMs, type Section } from './lib/report.js';
import { median } from './lib/stats.js';

/** Knobs of the memory benchmark. */
export interface MemoryOptions {
  /** Service counts to measure polod with. */
  readonly serviceCounts: readonly number[];
  /** Processes started per configuration (the median is reported). */
  readonly runs: number;
  /** Another polod build (default: this checkout's). */
  readonly polodJs?: string;
  readonly log: (line: string) => void;
}

/** 10 and 10,000 services, 3 processes each: about 20 s. */
export const MEMORY_DEFAULTS: Omit<MemoryOptions, 'log'> = { serviceCounts: [10, 10_000], runs: 3 };

/** Aims stated in the issue, in MB, by service count. */
export const MEMORY_AIMS_MB: Readonly<Record<number, number>> = { 10: 50, 10_000: 65 };
/** The reference (Python) polod's RSS as the issue gives it, in MB, by service count. */
const REFERENCE_MB: Readonly<Record<number, number>> = { 10: 50, 10_000: 65 };

const GROUP = '224.0.0.112';
const IFACE = '127.0.0.1';
const PORT = 1337;
/** How long a process must stay idle (≤ one clock tick of CPU) before its RSS is read. */
const QUIET_MS = 300;

/** Service i of a generated folder; ids sort in creation order. */
function serviceId(i: number): string {
  return `svc${String(i).padStart(5, '0')}`;
}

/** One polod (or baseline) process's figures. */
interface Reading {
  rssKiB: number;
  hwmKiB: number;
  anonKiB: number;
  /** Spawn to 'polod started', ms (polod only). */
  startMs: number;
  /** Request-For answers/s for the last service of the folder (polod only). */
  lookupRate: number;
}

/** Runs the benchmark and returns its section of the report. */
export async function benchMemory(opts: MemoryOptions): Promise<Section> {
  const program = opts.polodJs ?? POLOD_JS;
  requireBuilt(program, 'polod');
  const started = performance.now();
  return withTempDir('bench-mem', async (dir) => {
    const folders = new Map<number, string>();
    for (const count of new Set([...opts.serviceCounts, FIRST_START_SERVICES])) folders.set(count, await serviceFolder(dir, count));
    const state = await polodStateArgs(dir, program);
    return withLan({ name: 'benchmem', hosts: 1, subnet: 152 }, async (lan) => {
      const host = lan.host(1);
      const polod = (count: number): Promise<Reading> => polodReading(host, program, folders.get(count) ?? '', count, state);
      const firstStart = await polod(FIRST_START_SERVICES);
      opts.log(`memory: polod first start: ${fmtMB(firstStart.rssKiB)}`);
      const baseline: Reading[] = [];
      const readings = new Map<number, Reading[]>(opts.serviceCounts.map((n) => [n, []]));
      // Interleaved, so a change in the machine's state over the run hits every configuration.
      for (let run = 0; run < opts.runs; run++) {
        baseline.push(await idleNode(host));
        for (const count of opts.serviceCounts) {
          const r = await polod(count);
          readings.get(count)?.push(r);
          opts.log(`memory: polod with ${fmtInt(count)} services, run ${run + 1}/${opts.runs}: ${fmtMB(r.rssKiB)}`);
        }
      }
      return report(opts, baseline, firstStart, readings, (performance.now() - started) / 1000);
    });
  });
}

/** Services of the first start, the one that creates the TLS key (reported on its own row). */
const FIRST_START_SERVICES = 10;

/** Writes a folder of `count` generated service files under `dir`; returns its path. */
async function serviceFolder(dir: string, count: number): Promise<string> {
  const folder = path.join(dir, `services-${count}`);
  await mkdir(folder);
  await writeServices(
    folder,
    Array.from({ length: count }, (_, i) => ({ id: serviceId(i + 1), params: { port: 10_000 + (i % 50_000), path: `/${serviceId(i + 1)}` } })),
  );
  return folder;
}

/** RSS of `node -e 'setInterval(()=>{},1000)'`: what any idle Node.js process costs. */
async function idleNode(host: LanHost): Promise<Reading> {
  const proc = host.spawn([process.execPath, '-e', 'setInterval(()=>{},1000)']);
  try {
    if (proc.pid === undefined) throw new Error('idle node did not start');
    await waitCpuIdle(proc.pid, { quietMs: QUIET_MS });
    return { ...memoryOf(proc.pid), startMs: Number.NaN, lookupRate: Number.NaN };
  } finally {
    await proc.stop(2000);
  }
}

async function polodReading(host: LanHost, program: string, services: string, count: number, state: readonly string[]): Promise<Reading> {
  const t0 = performance.now();
  const proc = spawnPolod(host, {
    program,
    args: [...['--group', GROUP, '--interface', IFACE, '--port', String(PORT), '--services-dir', services, '--log-level', 'info'], ...state],
  });
  try {
    await waitPolodStarted(proc, 60_000);
    const startMs = performance.now() - t0;
    const pid = proc.pid;
    if (pid === undefined) throw new Error('polod has no pid');
    // A few queries of each kind answered: a Marco, then Request-For of the folder's last id —
    // which, timed over a short burst, also shows what a long service list costs per lookup.
    const ask = (query: string, total: number): Promise<LoadGenResult> => {
      const config: LoadGenConfig = { group: GROUP, port: PORT, iface: IFACE, query, warmup: 100, total, window: 8, timeoutMs: 500, maxMs: 20_000, readyTimeoutMs: 10_000, serverPid: pid };
      return runChild<LoadGenResult>(host, 'loadGen', config, { timeoutMs: 60_000 });
    };
    await ask('{"Command":"Marco"}', 10);
    const lookup = await ask(JSON.stringify({ Command: 'Request-For', Params: serviceId(count) }), 20_000);
    if (lookup.answered === 0) throw new Error(`polod with ${count} services did not answer Request-For ${serviceId(count)}`);
    await waitCpuIdle(pid, { quietMs: QUIET_MS });
    return { ...memoryOf(pid), startMs, lookupRate: lookup.rate };
  } finally {
    await proc.stop(5000);
  }
}

function report(opts: MemoryOptions, baseline: readonly Reading[], firstStart: Reading, polod: ReadonlyMap<number, Reading[]>, seconds: number): Section {
  const med = (rs: readonly Reading[], key: keyof Reading): number => median(rs.map((r) => r[key]));
  const baseRss = med(baseline, 'rssKiB');
  const rows = [
    ["idle `node -e 'setInterval(()=>{},1000)'` (baseline)", fmtMB(baseRss), fmtMB(med(baseline, 'anonKiB')), fmtMB(med(baseline, 'hwmKiB')), '', '', ''],
    ...[...polod].map(([count, rs]) => [
      `polod, ${fmtInt(count)} services`,
      fmtMB(med(rs, 'rssKiB')),
      fmtMB(med(rs, 'anonKiB')),
      fmtMB(med(rs, 'hwmKiB')),
      `+${fmtMB(med(rs, 'rssKiB') - baseRss)}`,
      fmtMs(med(rs, 'startMs')),
      fmtInt(med(rs, 'lookupRate')),
    ]),
    [
      `polod, ${FIRST_START_SERVICES} services, first start (creates its TLS key; 1 process)`,
      fmtMB(firstStart.rssKiB),
      fmtMB(firstStart.anonKiB),
      fmtMB(firstStart.hwmKiB),
      `+${fmtMB(firstStart.rssKiB - baseRss)}`,
      fmtMs(firstStart.startMs),
      fmtInt(firstStart.lookupRate),
    ],
  ];
  return {
    id: 'memory',
    title: 'polod memory',
    method: `VmRSS from /proc/<pid>/status (MB = 10^6 bytes), median of ${opts.runs} processes per row. Each polod ran alone in a namespace on loopback with a generated service folder, answered a Marco and a burst of Request-For queries for the folder's last service, and was read once it had used no CPU for ${QUIET_MS} ms (the idle Node.js process likewise).`,
    tables: [
      {
        header: ['process', 'RSS (VmRSS)', 'private (RssAnon)', 'peak RSS (VmHWM)', 'over idle Node', "start-up (spawn → 'polod started')", 'Request-For answers/s, last service'],
        rows,
      },
    ],
    aims: [...memoryAims(polod, baseline, baseRss, med), ...lookupAim(polod, med)],
    notes: [
      'RSS counts the pages of the node binary itself (about 36 MB here, shared by every Node.js process on the machine); RssAnon is the memory a process has to itself.',
      'Service files are one JSON object each, e.g. `{"id":"svc00001","params":{"port":10000,"path":"/svc00001"}}`.',
      'The last column is a side figure from the same processes: a closed-loop burst (8 in flight) of Request-For for the last id of the folder, which is where a linear search of the service list would cost most (the registry looks ids up in an index).',
    ],
    seconds,
  };
}

type Med = (rs: readonly Reading[], key: keyof Reading) => number;

/** Request-For is O(1): the last of 10,000 services is answered about as fast as the last of 10. */
function lookupAim(polod: ReadonlyMap<number, Reading[]>, med: Med): Section['aims'] {
  const small = polod.get(10);
  const large = polod.get(10_000);
  if (!small || !large) return [];
  const ratio = med(large, 'lookupRate') / med(small, 'lookupRate');
  return [
    {
      what: 'Request-For answers/s of the last service, 10,000 ÷ 10 services',
      target: '≥ 0.9',
      measured: ratio.toFixed(2),
      met: ratio >= 0.9,
      reference: '',
      why: 'an index by id makes the lookup independent of the number of services (a linear scan made it 0.24 in the previous figures)',
    },
  ];
}

function memoryAims(polod: ReadonlyMap<number, Reading[]>, baseline: readonly Reading[], baseRss: number, med: Med): Section['aims'] {
  return [...polod].flatMap(([count, rs]) => {
    const aim = MEMORY_AIMS_MB[count];
    if (aim === undefined) return [];
    const rssMB = (med(rs, 'rssKiB') * 1024) / 1e6;
    const over = med(rs, 'rssKiB') - baseRss;
    const why =
      `an idle Node.js process is already ${fmtMB(baseRss)} here (${fmtMB(med(baseline, 'anonKiB'))} of it private, the rest the node binary's shared pages), ` +
      `leaving ${fmtMB((aim * 1e6) / 1024 - baseRss)} for polod's own code and data; polod adds ${fmtMB(over)}`;
    return [
      {
        what: `polod RSS, ${fmtInt(count)} services`,
        target: `≤ ~${aim} MB`,
        measured: fmtMB(med(rs, 'rssKiB')),
        met: rssMB <= aim,
        reference: REFERENCE_MB[count] === undefined ? '' : `≈ ${REFERENCE_MB[count]} MB`,
        why,
      },
    ];
  });
}
