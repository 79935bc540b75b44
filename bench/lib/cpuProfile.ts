/**
 * Reading a V8 .cpuprofile (written by `node --cpu-prof`): where a process spent its samples,
 * by function (self time) and by origin (polod's code, Node's internals, dependencies, GC).
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time of one function. */
export interface HotFunction {
  /** `name (file:line)`, file relative to the repository when inside it. */
  readonly where: string;
  readonly selfMs: number;
  /** Share of the busy (non-idle) time. */
  readonly share: number;
}

/** What a profile says. */
export interface ProfileSummary {
  /** Sampled time excluding `(idle)`, in ms. */
  readonly busyMs: number;
  /** Busy time by origin, largest first. */
  readonly byOrigin: readonly { origin: string; selfMs: number; share: number }[];
  /** The functions with the most self time. */
  readonly top: readonly HotFunction[];
}

/** Where a frame's code lives, for the by-origin breakdown. */
function origin(url: string, name: string, root: string): string {
  if (url === '') {
    if (name === '(garbage collector)') return 'GC';
    // (program): native code outside JS — libuv, system calls, the V8 runtime.
    if (name === '(program)') return 'native: libuv, syscalls, V8 runtime';
    return 'V8 built-ins: RegExp, UTF-8 decoding, microtask queue';
  }
  // The self time of dgram's doSend is mostly the sendmsg(2) call below it (loopback delivery included).
  if (url === 'node:dgram' && name === 'doSend') return 'dgram doSend (the sendmsg system call)';
  if (url.startsWith('node:')) return 'other Node.js internals';
  if (url.includes('/node_modules/')) return `dependency ${url.split('/node_modules/')[1]?.split('/')[0] ?? ''}`;
  if (url.includes(`${root}/dist/src/`) || url.includes('/dist/src/')) return 'polod code (dist/src)';
  return 'other JS';
}

/** Summarises the newest .cpuprofile in `dir`; `root` shortens file names. */
export async function summarizeProfileDir(dir: string, root: string, topN = 15): Promise<ProfileSummary> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile')).sort();
  const newest = files.at(-1);
  if (newest === undefined) throw new Error(`no .cpuprofile in ${dir} (did the process exit cleanly?)`);
  const profile = JSON.parse(await readFile(path.join(dir, newest), 'utf8')) as CpuProfile;
  return summarizeProfile(profile, root, topN);
}

function summarizeProfile(profile: CpuProfile, root: string, topN: number): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  // timeDeltas[i] is the time before sample i; charge it to sample i's node (V8's convention).
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const perFunction = new Map<string, number>();
  const perOrigin = new Map<string, number>();
  let busyUs = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)?.callFrame;
    if (!frame || frame.functionName === '(idle)') continue;
    busyUs += us;
    const file = frame.url.replace(/^file:\/\//, '').replace(`${root}/`, '');
    const where = frame.url === '' ? frame.functionName : `${frame.functionName || '(anonymous)'} (${file}:${frame.lineNumber + 1})`;
    perFunction.set(where, (perFunction.get(where) ?? 0) + us);
    const o = origin(frame.url, frame.functionName, root);
    perOrigin.set(o, (perOrigin.get(o) ?? 0) + us);
  }
  const share = (us: number): number => (busyUs === 0 ? 0 : us / busyUs);
  return {
    busyMs: busyUs / 1000,
    byOrigin: [...perOrigin]
      .sort((a, b) => b[1] - a[1])
      .map(([o, us]) => ({ origin: o, selfMs: us / 1000, share: share(us) })),
    top: [...perFunction]
      .sort((a, b) => b[1] - a[1])
      .slice(0, topN)
      .map(([where, us]) => ({ where, selfMs: us / 1000, share: share(us) })),
  };
}
