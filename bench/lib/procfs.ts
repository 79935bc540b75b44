/**
 * Readings from /proc: a process's CPU time and memory, and the UDP counters of the network
 * namespace of the reader. Linux only, as are the namespaces the benchmarks run in.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';

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
  return cpuTimesMs(pid).cpuMs;
}

/** CPU time of a process so far, in ms, both from one reading of /proc/<pid>/stat. */
export interface CpuTimes {
  /** User + system. */
  readonly cpuMs: number;
  /** System (kernel) only. */
  readonly systemMs: number;
}

/** User + system and system-only CPU time of `pid` so far, read together (so over the same window when subtracted). */
export function cpuTimesMs(pid: number): CpuTimes {
  const { utime, stime } = cpuTicks(pid);
  return { cpuMs: ((utime + stime) * 1000) / clockTicks(), systemMs: (stime * 1000) / clockTicks() };
}

function cpuTicks(pid: number): { utime: number; stime: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces and parentheses: count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { utime: Number(fields[11]), stime: Number(fields[12]) };
}

/** Memory of a process from /proc/<pid>/status, in KiB. */
export interface MemoryReading {
  /** Resident set size now. */
  readonly rssKiB: number;
  /** Peak resident set size ("high water mark"). */
  readonly hwmKiB: number;
  /**
   * The private part of RSS (heap, stacks, malloc). The rest is mostly file pages of the node
   * binary, shared by every Node.js process on the machine.
   */
  readonly anonKiB: number;
}

/** Reads VmRSS, VmHWM and RssAnon of `pid`. */
export function memoryOf(pid: number): MemoryReading {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status);
    if (!m) throw new Error(`/proc/${pid}/status has no ${name}`);
    return Number(m[1]);
  };
  return { rssKiB: field('VmRSS'), hwmKiB: field('VmHWM'), anonKiB: field('RssAnon') };
}

/**
 * The `Udp:` counters of /proc/net/snmp, as seen from the calling process's network namespace
 * (RcvbufErrors counts datagrams the kernel dropped because a socket's buffer was full), or from
 * `pid`'s: /proc/<pid>/net/snmp is the counters of the namespace that process lives in, so a
 * benchmark reads any host of a namespace LAN without entering it.
 */
export function udpCounters(pid?: number): Record<string, number> {
  const lines = readFileSync(pid === undefined ? '/proc/net/snmp' : `/proc/${pid}/net/snmp`, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('Udp:'));
  const names = (lines[0] ?? '').split(/\s+/).slice(1);
  const values = (lines[1] ?? '').split(/\s+/).slice(1).map(Number);
  return Object.fromEntries(names.map((n, i) => [n, values[i] ?? 0]));
}

/**
 * The IPv6 UDP counters of /proc/<pid>/net/snmp6 (or the caller's), without their `Udp6`
 * prefix: `OutDatagrams`, `InDatagrams`, … as {@link udpCounters} names them.
 */
export function udp6Counters(pid?: number): Record<string, number> {
  const text = readFileSync(pid === undefined ? '/proc/net/snmp6' : `/proc/${pid}/net/snmp6`, 'utf8');
  const entries = text
    .split('\n')
    .map((l) => /^Udp6(\w+)\s+(\d+)$/.exec(l.trim()))
    .filter((m) => m !== null)
    .map((m) => [m[1] ?? '', Number(m[2])] as const);
  return Object.fromEntries(entries);
}

/**
 * Resolves once `pid` has used at most one clock tick of CPU over `quietMs`: start-up work that
 * outlives the readiness log line (key generation, lazy compilation, GC) is over. Rejects after
 * `timeoutMs`. Polled, since the kernel has no notification for "went idle".
 */
export async function waitCpuIdle(pid: number, opts: { quietMs?: number; timeoutMs?: number } = {}): Promise<void> {
  const quietMs = opts.quietMs ?? 300;
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  const tick = 1000 / clockTicks();
  const history: { at: number; cpu: number }[] = [];
  for (;;) {
    const now = Date.now();
    history.push({ at: now, cpu: cpuTimeMs(pid) });
    while (history.length > 1 && (history[1]?.at ?? now) <= now - quietMs) history.shift();
    const oldest = history[0];
    const newest = history.at(-1);
    if (oldest && newest && newest.at - oldest.at >= quietMs && newest.cpu - oldest.cpu <= tick) return;
    if (now > deadline) throw new Error(`pid ${pid} still busy after ${opts.timeoutMs ?? 30_000} ms`);
    await delay(50);
  }
}
