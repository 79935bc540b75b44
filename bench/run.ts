/**
 * Runs the benchmarks and prints their figures; with `--write`, records them in BENCHMARKS.md.
 * Benchmarks report; they never fail on a missed aim. The exit code is 1 only when a benchmark
 * could not run (2 for bad usage). Needs root (network namespaces); nothing leaves the machine.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ABUSE_DEFAULTS, benchAbuse } from './abuse.js';
import { benchLatency, LATENCY_DEFAULTS } from './latency.js';
import { REPO_ROOT } from './lib/env.js';
import { describeOtherWork, OtherWorkMonitor, type OtherWork } from './lib/load.js';
import { aimsTable, keyFiguresTable, renderSection, renderTable, type Section } from './lib/report.js';
import { benchLive, LIVE_DEFAULTS } from './live.js';
import { benchMarcod, MARCOD_DEFAULTS } from './marcod.js';
import { benchMemory, MEMORY_DEFAULTS } from './memory.js';
import { benchPeers, PEERS_DEFAULTS } from './peers.js';
import { benchPublish, PUBLISH_DEFAULTS } from './publish.js';
import { benchRegistry, REGISTRY_DEFAULTS } from './registry.js';
import { benchStartup, STARTUP_DEFAULTS } from './startup.js';
import { benchThroughput, THROUGHPUT_DEFAULTS } from './throughput.js';

const USAGE = `Usage: npm run bench -- [throughput] [latency] [memory] [publish] [marcod] [live] [startup] [abuse] [registry] [peers] [options]

  (no names)            every benchmark
  --write               rewrite BENCHMARKS.md with the figures (complete default runs only)
  --profile             throughput: run polod and the echo server under --cpu-prof;
                        abuse: the keyed and unkeyed polods of the key cost
  --polod FILE          use another build's dist/src/cli/polod.js (A/B a change)
  --pin split|shared    throughput and abuse's key cost: server and generator on CPUs 1 and 0,
                        or both on CPU 1
  --quick               fewer runs: checks the harness, figures are rough`;

const BENCHMARKS = ['throughput', 'latency', 'memory', 'publish', 'marcod', 'live', 'startup', 'abuse', 'registry', 'peers'] as const;
type BenchName = (typeof BENCHMARKS)[number];

/** What the command line asked for. */
interface RunOptions {
  names: BenchName[];
  write: boolean;
  profile: boolean;
  quick: boolean;
  pin: 'split' | 'shared' | undefined;
  polodJs: string | undefined;
}

function parse(argv: readonly string[]): RunOptions {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      write: { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      pin: { type: 'string' },
      polod: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const unknown = positionals.filter((p) => !(BENCHMARKS as readonly string[]).includes(p));
  if (unknown.length > 0) throw new Error(`unknown benchmark ${unknown.join(', ')}: choose from ${BENCHMARKS.join(', ')}`);
  const names = positionals.length === 0 ? [...BENCHMARKS] : BENCHMARKS.filter((b) => positionals.includes(b));
  // BENCHMARKS.md is one consistent record: every figure from the same run, full settings.
  if (values.write && (names.length !== BENCHMARKS.length || values.quick || values.profile || values.polod !== undefined)) {
    throw new Error('--write records a complete default run: use it without benchmark names, --quick, --profile or --polod');
  }
  if (values.pin !== undefined && values.pin !== 'split' && values.pin !== 'shared') throw new Error(`--pin is split or shared, not ${values.pin}`);
  return {
    names,
    write: values.write,
    profile: values.profile,
    quick: values.quick,
    pin: values.pin,
    polodJs: values.polod === undefined ? undefined : path.resolve(values.polod),
  };
}

const log = (line: string): void => {
  console.error(`[bench] ${line}`);
};

async function runOne(name: BenchName, o: RunOptions): Promise<Section> {
  const polod = o.polodJs === undefined ? {} : { polodJs: o.polodJs };
  switch (name) {
    case 'throughput':
      return benchThroughput({
        ...THROUGHPUT_DEFAULTS,
        ...(o.quick && { runs: 2, total: 50_000 }),
        ...polod,
        ...(o.pin === 'split' && { cpus: { server: 1, generator: 0 } }),
        ...(o.pin === 'shared' && { cpus: { server: 1, generator: 1 } }),
        profile: o.profile,
        log,
      });
    case 'latency':
      return benchLatency({ ...LATENCY_DEFAULTS, ...(o.quick && { runs: 10 }), ...polod, log });
    case 'memory':
      return benchMemory({ ...MEMORY_DEFAULTS, ...(o.quick && { runs: 1 }), ...polod, log });
    case 'publish':
      return benchPublish({ ...PUBLISH_DEFAULTS, ...(o.quick && { rounds: 1, ops: 400 }), ...polod, log });
    case 'marcod':
      return benchMarcod({ ...MARCOD_DEFAULTS, ...(o.quick && { runs: 10 }), ...polod, log });
    case 'live':
      return benchLive({ ...LIVE_DEFAULTS, ...(o.quick && { runs: 10, watchRuns: 5 }), ...polod, log });
    case 'startup':
      return benchStartup({ ...STARTUP_DEFAULTS, ...(o.quick && { runs: 10 }), ...polod, log });
    case 'registry':
      return benchRegistry({ ...REGISTRY_DEFAULTS, ...(o.quick && { runs: 10, warmup: 2, watchRuns: 5, scaleRuns: 3 }), ...polod, log });
    case 'peers':
      return benchPeers({ ...PEERS_DEFAULTS, ...(o.quick && { rounds: 5, warmup: 1, idleMs: 1000 }), ...polod, log });
    case 'abuse':
      return benchAbuse({
        ...ABUSE_DEFAULTS,
        ...(o.quick && { burst: 1000, probes: 100, stormRounds: 2, authRounds: 2, authTotal: 20_000 }),
        ...polod,
        profile: o.profile,
        ...(o.pin === 'split' && { cpus: { server: 1, generator: 0 } }),
        ...(o.pin === 'shared' && { cpus: { server: 1, generator: 1 } }),
        log,
      });
  }
}

/** The machine, the code and the moment the figures belong to. */
function machine(): Record<string, string> {
  const cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'bench', 'package.json'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    if (dirty !== '') commit += ' (with uncommitted changes to src/, bench/ or package.json)';
  } catch {
    // Not a git checkout: the commit stays unknown.
  }
  return {
    CPU: cpuModel,
    cores: String(os.availableParallelism()),
    memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    kernel: `${os.type()} ${os.release()}`,
    'Node.js': process.version,
    commit,
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  };
}

const loadavg = (): string => os.loadavg().map((l) => l.toFixed(2)).join(' ');

function summary(sections: readonly Section[]): string {
  const aims = sections.flatMap((s) => s.aims);
  const parts = aims.length === 0 ? [] : [renderTable(aimsTable(aims))];
  const figures = sections.flatMap((s) => s.keyFigures ?? []);
  if (figures.length > 0) parts.push(renderTable(keyFiguresTable(figures)));
  return parts.join('\n\n');
}

/** What the run shared the machine with. */
interface RunLoad {
  readonly before: string;
  readonly after: string;
  readonly other: OtherWork;
}

function document(sections: readonly Section[], info: Record<string, string>, load: RunLoad, seconds: number): string {
  // The load average counts the benchmarks' own processes (they keep both CPUs busy): only other
  // processes' CPU says whether someone else shared the machine.
  const busy = load.other.cores >= 0.1;
  return `# Benchmarks

Figures from one run of \`npm run bench -- --write\` (as root: every benchmark runs inside
network namespaces it creates, so no datagram leaves the machine). Each benchmark measures its
baseline in the same run — a minimal Node.js echo server (datagrams; lines on a Unix socket), a
raw socket and \`node -e ''\`, an idle Node.js process, the in-process Marco library — so the
ratios hold on other machines even where the absolute figures do not. Total time:
${Math.round(seconds)} s, build excluded.

${renderTable({
  header: ['machine', ''],
  rows: [
    ...Object.entries(info),
    ['load average (1, 5, 15 min) before / after', `${load.before} / ${load.after}`],
    ['highest 1-min load average during the run', load.other.maxLoad1.toFixed(2)],
    ["other processes' CPU during the run", describeOtherWork(load.other)],
  ],
})}

The load average counts the benchmarks' own processes, which keep the CPUs busy, so it rises
during any run. "Other processes' CPU" is the figure that says whether other work shared the
machine: the CPU time of every process that is not the benchmark or one of its children, sampled
from /proc every 2 s (a lower bound: processes living less than 2 s are missed); each section
repeats it for its own stretch of the run. When it is well above zero, throughput figures vary
from run to run (see the range columns) and latency p95 grows.${
    busy
      ? `\n\n**This run shared the machine with other work** (above): its throughput and p95 figures are
less steady than a quiet machine's would be, and ratios are the figures to trust.`
      : ''
  }

## Summary

The aims are those stated in the issue; "reference" is the reference (Python/Twisted)
implementation's figure as the issue gives it, and "why" explains each result from this run's
own baselines. The issue states no aims for the publish API or marcod: their headline figures
follow, each next to its same-run baseline.

${summary(sections)}

${sections.map(renderSection).join('\n\n')}

## Running them

\`\`\`
npm run bench                          # all ten, printed (about 6 minutes)
npm run bench -- --write               # and rewrite this file
npm run bench -- publish marcod        # any of throughput, latency, memory, publish, marcod, live, startup, abuse, registry, peers, alone
npm run bench -- throughput --profile  # CPU profiles of polod and the echo server, per answer
npm run bench -- --polod <path to another build's dist/src/cli/polod.js>   # A/B a change
\`\`\`

Run it at a quiet moment (\`uptime\`: a 1-minute load well under the number of cores).
`;
}

async function main(): Promise<number> {
  const o = parse(process.argv.slice(2));
  const before = loadavg();
  const monitor = new OtherWorkMonitor();
  const runMark = monitor.mark();
  const started = performance.now();
  const sections: Section[] = [];
  const failed: string[] = [];
  for (const name of o.names) {
    log(`${name}…`);
    try {
      const mark = monitor.mark();
      const measured = await runOne(name, o);
      const other = monitor.since(mark);
      const section = { ...measured, notes: [...measured.notes, `Other processes' CPU during this benchmark: ${describeOtherWork(other)}; highest 1-min load average ${other.maxLoad1.toFixed(2)}.`] };
      sections.push(section);
      console.log(`\n${renderSection(section)}\n`);
      log(`${name} took ${Math.round(section.seconds)} s`);
    } catch (err) {
      failed.push(name);
      console.error(`[bench] ${name} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const other = monitor.since(runMark);
  monitor.stop();
  log(`other processes' CPU during the run: ${describeOtherWork(other)}`);
  if (sections.some((s) => s.aims.length > 0 || (s.keyFigures ?? []).length > 0)) console.log(`## Summary\n\n${summary(sections)}\n`);
  if (failed.length > 0) {
    console.error(`[bench] failed: ${failed.join(', ')}${o.write ? '; BENCHMARKS.md left unchanged' : ''}`);
    return 1;
  }
  if (o.write) {
    const file = path.join(REPO_ROOT, 'BENCHMARKS.md');
    writeFileSync(file, document(sections, machine(), { before, after: loadavg(), other }, seconds));
    log(`wrote ${path.relative(process.cwd(), file) || file}`);
  }
  log(`done in ${Math.round(seconds)} s`);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`bench: ${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
    process.exitCode = 2;
  },
);
