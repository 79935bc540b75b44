/**
 * Readings from /proc: a process's CPU time and memory, and the UDP counters of the network
 * namespace of the reader. Linux only, as are the namespaces the benchmarks run in.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticksPerSecond: number | undefined;

/** USER_HZ, the unit of utime/stime in /proc/<pid>/stat (100 on every common kernel). */
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** User + system CPU time of `pid` so far, in ms (resolution: one clock tick, 10 ms). */
export function cpuTimeMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces and parentheses: count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1000) / clockTicks();
}

/** Memory of a process from /proc/<pid>/status, in KiB. */
export interface MemoryReading {
  /** Resident set size now. */
  readonly rssKiB: number;
  /** Peak resident set size ("high water mark"). */
  readonly hwmKiB: number;
}

/** Reads VmRSS and VmHWM of `pid`. */
export function memoryOf(pid: number): MemoryReading {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status);
    if (!m) throw new Error(`/proc/${pid}/status has no ${name}`);
    return Number(m[1]);
  };
  return { rssKiB: field('VmRSS'), hwmKiB: field('VmHWM') };
}

/**
 * The `Udp:` counters of /proc/net/snmp, as seen from the calling process's network namespace
 * (RcvbufErrors counts datagrams the kernel dropped because a socket's buffer was full).
 */
export function udpCounters(): Record<string, number> {
  const lines = readFileSync('/proc/net/snmp', 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('Udp:'));
  const names = (lines[0] ?? '').split(/\s+/).slice(1);
  const values = (lines[1] ?? '').split(/\s+/).slice(1).map(Number);
  return Object.fromEntries(names.map((n, i) => [n, values[i] ?? 0]));
}
