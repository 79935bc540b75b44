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
import { benchLatency, LATENCY_DEFAULTS } from './latency.js';
import { REPO_ROOT } from './lib/env.js';
import { aimsTable, renderSection, renderTable, type Section } from './lib/report.js';
import { benchMemory, MEMORY_DEFAULTS } from './memory.js';
import { benchThroughput, THROUGHPUT_DEFAULTS } from './throughput.js';

const USAGE = `Usage: npm run bench -- [throughput] [latency] [memory] [options]

  (no names)            all three benchmarks
  --write               rewrite BENCHMARKS.md with the figures (complete default runs only)
  --profile             throughput: run polod and the echo server under --cpu-prof
  --polod FILE          use another build's dist/src/cli/polod.js (A/B a change)
  --pin split|shared    throughput: server and generator on CPUs 1 and 0, or both on CPU 1
  --quick               fewer runs: checks the harness, figures are rough`;

const BENCHMARKS = ['throughput', 'latency', 'memory'] as const;
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
  return renderTable({ ...aimsTable(sections.flatMap((s) => s.aims)) });
}

function document(sections: readonly Section[], info: Record<string, string>, load: { before: string; after: string }, seconds: number): string {
  return `# Benchmarks

Figures from one run of \`npm run bench -- --write\` (as root: every benchmark runs inside
network namespaces it creates, so no datagram leaves the machine). Each benchmark measures its
baseline in the same run — a minimal Node.js echo server, a raw socket and \`node -e ''\`, an
idle Node.js process — so the ratios hold on other machines even where the absolute figures do
not. Total time: ${Math.round(seconds)} s, build excluded.

${renderTable({ header: ['machine', ''], rows: [...Object.entries(info), ['load average (1, 5, 15 min) before / after', `${load.before} / ${load.after}`]] })}

A load average near or above the number of cores means other work shared the CPUs during the
run: throughput figures then vary from run to run (see the range column), latency p95 grows.

## Summary

The aims are those stated in the issue; the last column is the reference (Python/Twisted)
implementation's figure as the issue gives it.

${summary(sections)}

${sections.map(renderSection).join('\n\n')}

## Running them

\`\`\`
npm run bench                          # all three, printed (about 2 minutes)
npm run bench -- --write               # and rewrite this file
npm run bench -- throughput --profile  # CPU profiles of polod and the echo server, per answer
npm run bench -- --polod <path to another build's dist/src/cli/polod.js>   # A/B a change
\`\`\`
`;
}

async function main(): Promise<number> {
  const o = parse(process.argv.slice(2));
  const before = loadavg();
  const started = performance.now();
  const sections: Section[] = [];
  const failed: string[] = [];
  for (const name of o.names) {
    log(`${name}…`);
    try {
      const section = await runOne(name, o);
      sections.push(section);
      console.log(`\n${renderSection(section)}\n`);
      log(`${name} took ${Math.round(section.seconds)} s`);
    } catch (err) {
      failed.push(name);
      console.error(`[bench] ${name} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  if (sections.length > 0) console.log(`## Summary\n\n${summary(sections)}\n`);
  if (failed.length > 0) {
    console.error(`[bench] failed: ${failed.join(', ')}${o.write ? '; BENCHMARKS.md left unchanged' : ''}`);
    return 1;
  }
  if (o.write) {
    const file = path.join(REPO_ROOT, 'BENCHMARKS.md');
    writeFileSync(file, document(sections, machine(), { before, after: loadavg() }, seconds));
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
