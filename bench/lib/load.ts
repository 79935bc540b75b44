/**
 * How busy the machine was with work other than the benchmarks: the CPU time of every process
 * that is not this one or a descendant of it (kernel threads excluded), sampled from /proc at
 * intervals. A load average says the CPUs were shared; this says by whom and how much, so that
 * figures measured beside someone else's test run are recorded as such.
 *
 * Processes that start and end between two samples are missed, so the figure is a lower bound.
 */
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** USER_HZ, the unit of utime/stime: 100 on every Linux the benchmarks run on. */
const HZ = 100;

interface ProcSample {
  readonly ppid: number;
  /** utime + stime, in clock ticks. */
  readonly ticks: number;
  readonly comm: string;
}

function scan(): Map<number, ProcSample> {
  const out = new Map<number, ProcSample>();
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const fields = stat.slice(close + 2).split(' ');
      out.set(Number(name), { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]), comm });
    } catch {
      // Gone between readdir and read.
    }
  }
  return out;
}

/** A short name for a process: its command, and for interpreters the script (or -e code) they run. */
function describe(pid: number, comm: string): string {
  let name = comm;
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    if (/^(node|python\d*(\.\d+)?|sh|bash|npm.*)$/.test(comm)) {
      const evalAt = argv.findIndex((a) => a === '-e' || a === '--eval' || a === '-c');
      const script = argv.slice(1).find((a) => !a.startsWith('-'));
      if (evalAt !== -1) name = `${comm} ${argv[evalAt]} ${argv[evalAt + 1] ?? ''}`;
      else if (script !== undefined) name = `${comm} ${path.basename(script)}`;
    }
  } catch {
    // Gone: the command name will do.
  }
  // One short line, safe inside a Markdown code span.
  const flat = name.replace(/\s+/g, ' ').replace(/`/g, "'").trim();
  return flat.length > 40 ? `${flat.slice(0, 39)}…` : flat;
}

/** Other work over one stretch of time. */
export interface OtherWork {
  /** Average number of CPUs busy with other processes. */
  readonly cores: number;
  /** The busiest other processes, by CPU seconds. */
  readonly top: readonly { readonly name: string; readonly cpuSeconds: number }[];
  /** Highest 1-minute load average seen. */
  readonly maxLoad1: number;
  readonly seconds: number;
}

/** Samples other processes' CPU time every `intervalMs` until stopped; {@link since} reads a stretch. */
export class OtherWorkMonitor {
  readonly #timer: NodeJS.Timeout;
  #last = new Map<number, ProcSample>();
  readonly #names = new Map<number, string>();
  /** Cumulative foreign CPU seconds by name, and the total, since the start. */
  readonly #byName = new Map<string, number>();
  #total = 0;
  /** 1-minute load averages sampled, with when. */
  readonly #loads: { at: number; load1: number }[] = [];

  constructor(intervalMs = 2000) {
    this.#last = scan();
    this.#loads.push({ at: performance.now(), load1: os.loadavg()[0] ?? 0 });
    this.#timer = setInterval(() => this.sample(), intervalMs);
    this.#timer.unref();
  }

  /** Takes a sample now (also done on a timer). */
  sample(): void {
    const now = scan();
    const ours = (pid: number): boolean => {
      for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
        if (p === process.pid) return true;
        p = now.get(p)?.ppid ?? 0;
      }
      return false;
    };
    const isKernelThread = (pid: number, s: ProcSample): boolean => pid === 2 || s.ppid === 2;
    for (const [pid, s] of now) {
      const before = this.#last.get(pid);
      // A pid seen for the first time: only what it used since it started within this interval
      // is unknown; count nothing rather than its whole life.
      if (before === undefined || isKernelThread(pid, s) || ours(pid)) continue;
      const seconds = (s.ticks - before.ticks) / HZ;
      if (seconds <= 0) continue;
      let name = this.#names.get(pid);
      if (name === undefined) {
        name = describe(pid, s.comm);
        this.#names.set(pid, name);
      }
      this.#byName.set(name, (this.#byName.get(name) ?? 0) + seconds);
      this.#total += seconds;
    }
    for (const pid of this.#names.keys()) if (!now.has(pid)) this.#names.delete(pid);
    this.#last = now;
    this.#loads.push({ at: performance.now(), load1: os.loadavg()[0] ?? 0 });
  }

  /** A mark to measure from. */
  mark(): { total: number; byName: Map<string, number>; at: number } {
    this.sample();
    return { total: this.#total, byName: new Map(this.#byName), at: performance.now() };
  }

  /** Other work since `mark`. */
  since(mark: ReturnType<OtherWorkMonitor['mark']>): OtherWork {
    this.sample();
    const seconds = (performance.now() - mark.at) / 1000;
    const top = [...this.#byName]
      .map(([name, total]) => ({ name, cpuSeconds: total - (mark.byName.get(name) ?? 0) }))
      .filter((t) => t.cpuSeconds >= 0.5)
      .sort((a, b) => b.cpuSeconds - a.cpuSeconds)
      .slice(0, 3);
    const maxLoad1 = Math.max(0, ...this.#loads.filter((l) => l.at >= mark.at).map((l) => l.load1));
    return { cores: seconds > 0 ? (this.#total - mark.total) / seconds : 0, top, maxLoad1, seconds };
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/** "0.05 of 2 CPUs on average (busiest: `node tsc` 3.1 s)". */
export function describeOtherWork(w: OtherWork): string {
  const top = w.top.length === 0 ? '' : ` (busiest: ${w.top.map((t) => `\`${t.name}\` ${t.cpuSeconds.toFixed(1)} s`).join(', ')})`;
  return `${w.cores.toFixed(2)} of ${os.availableParallelism()} CPUs on average${top}`;
}
