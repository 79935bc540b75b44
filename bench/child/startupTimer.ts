/**
 * The timing side of the start-up benchmark, run inside the namespace next to polod: runs each
 * command in turn, round after round (so a change in the machine's state hits all of them), and
 * times each run from spawn to exit.
 *
 * Usage: node startupTimer.js '<StartupTimerConfig as JSON>' — prints one JSON result line.
 */
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';

/** What the timer is told. */
export interface StartupTimerConfig {
  /** Commands (argv) to time, by name. */
  readonly commands: Readonly<Record<string, readonly string[]>>;
  readonly runs: number;
  readonly warmup: number;
}

/** Wall times in ms, by command name, one per run, in run order. */
export interface StartupTimerResult {
  readonly ms: Record<string, number[]>;
  /**
   * CPU time (user + system) per run in ms, by command name: the mean over `runs` runs, from
   * bash's `times` (its children's totals, to the millisecond). Less sensitive than wall time
   * to other work sharing the machine.
   */
  readonly cpuMs: Record<string, number>;
  /** Runs that did not exit 0, by command name (their times are still recorded). */
  readonly failures: Record<string, number>;
}

function main(): void {
  const config = JSON.parse(process.argv[2] ?? '{}') as StartupTimerConfig;
  const names = Object.keys(config.commands);
  const ms: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  const failures: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  for (let round = -config.warmup; round < config.runs; round++) {
    for (const name of names) {
      const [file, ...args] = config.commands[name] ?? [];
      if (file === undefined) continue;
      const t0 = performance.now();
      const res = spawnSync(file, args, { stdio: 'ignore' });
      const elapsed = performance.now() - t0;
      if (round < 0) continue;
      ms[name]?.push(elapsed);
      if (res.status !== 0) failures[name] = (failures[name] ?? 0) + 1;
    }
  }
  const cpuMs: Record<string, number> = {};
  for (const name of names) {
    const argv = config.commands[name] ?? [];
    const script = `for ((i = 0; i < ${config.runs}; i++)); do "$@" >/dev/null 2>&1; done; times`;
    const out = spawnSync('bash', ['-c', script, 'bash', ...argv], { encoding: 'utf8' }).stdout;
    // `times` prints the shell's own user/sys, then its children's: "0m1.234s 0m0.567s".
    const children = out.trim().split('\n')[1] ?? '';
    const seconds = [...children.matchAll(/(\d+)m([\d.]+)s/g)].reduce((sum, m) => sum + Number(m[1]) * 60 + Number(m[2]), 0);
    cpuMs[name] = (seconds * 1000) / config.runs;
  }
  process.stdout.write(`${JSON.stringify({ ms, cpuMs, failures } satisfies StartupTimerResult)}\n`);
}

main();
