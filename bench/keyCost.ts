/**
 * The cost of a grid key (docs/protocol.md §2.4): answers per second of a keyed polod against an
 * unkeyed one on the same host, measured by the throughput benchmark's closed-loop generator
 * (bench/child/loadGen.ts) on loopback; the keyed generator sends queries it signed before the
 * run, each with its own nonce. A third polod, the control, is the keyed one with its MAC
 * computation replaced by a constant (bench/lib/macControl.ts): it splits the cost into the MAC's
 * and the format's around it. Part of the abuse benchmark (bench/abuse.ts); with `profile`, the
 * plain and keyed polods run under `--cpu-prof` and their hottest functions are tabled.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { LanHost } from '../test/helpers/netns.js';
import type { Proc } from '../test/helpers/proc.js';
import type { LoadGenConfig, LoadGenResult } from './child/loadGen.js';
import { summarizeProfileDir } from './lib/cpuProfile.js';
import { measureHmacFloor } from './lib/hmacFloor.js';
import { macFreePolod } from './lib/macControl.js';
import { childScript, polodStateArgs, REPO_ROOT, requireBuilt, runChild, spawnPolod, writeServices } from './lib/env.js';
import { fmtInt, fmtPct, type Table } from './lib/report.js';
import { median } from './lib/stats.js';

const GROUP = '224.0.0.112';
const QUERY = '{"Command":"Request-For","Params":"web"}';

export interface KeyCostOptions {
  /** Rounds (one keyed, one unkeyed run each). */
  readonly rounds: number;
  /** Answers per run. */
  readonly total: number;
  /** Run both polods under --cpu-prof and add their hottest functions. */
  readonly profile?: boolean;
  /** CPUs to pin the polods and the generator to (`--pin`); default: the scheduler's choice. */
  readonly cpus?: { readonly server: number; readonly generator: number };
  readonly log: (line: string) => void;
}

export interface KeyCost {
  readonly tables: Table[];
  /** Median of the per-round ratios keyed ÷ plain answers/s. */
  readonly ratio: number;
  /** The same for the control (keyed, MAC replaced by a constant) ÷ plain: the best any MAC could do. */
  readonly controlRatio: number;
  readonly keyed: number;
  readonly plain: number;
  /** Best answers-per-CPU ratio of any HMAC-SHA256 design: plain ÷ (plain + four bare SHA-256 calls). */
  readonly ceiling: number;
}

type Side = 'plain' | 'keyed' | 'control';
const SIDES: readonly Side[] = ['plain', 'keyed', 'control'];
const PORTS: Record<Side, number> = { plain: 1337, keyed: 1338, control: 1339 };

/** Queries each run sends before it measures. */
const WARMUP = 5000;

/** Measures on `host` (one polod per side on loopback, ports 1337 to 1339), files under `dir`. */
export async function measureAuthCost(host: LanHost, dir: string, program: string, opts: KeyCostOptions): Promise<KeyCost> {
  const keyFile = path.join(dir, 'grid.key');
  const keyBytes = Buffer.alloc(32, 0x5a);
  await writeFile(keyFile, keyBytes, { mode: 0o600 });
  requireBuilt(childScript('loadGen'), 'bench/child/loadGen.ts');
  const profileRoot = opts.profile ? await mkdtemp(path.join(os.tmpdir(), 'bench-keyprof-')) : undefined;
  const control = await macFreePolod(program, dir);
  const start = async (name: Side, extra: string[], side = program): Promise<Proc> => {
    const port = PORTS[name];
    const own = path.join(dir, `auth-${name}`);
    await mkdir(path.join(own, 'services'), { recursive: true });
    await writeServices(path.join(own, 'services'), [{ id: 'web', params: { port: 8080, path: '/index' } }]);
    await writeFile(path.join(own, 'polo.cfg'), `[polo]\npolo_binding_port = ${port + 100}\n`);
    return spawnPolod(host, {
      program: side,
      args: [
        ...['--config', path.join(own, 'polo.cfg'), '--group', GROUP, '--interface', '127.0.0.1', '--port', String(port)],
        ...['--services-dir', path.join(own, 'services'), '--log-level', 'warn', ...extra],
        ...(await polodStateArgs(own, side)),
      ],
      ...(profileRoot !== undefined && name !== 'control' && { nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${path.join(profileRoot, name)}`] }),
      ...(opts.cpus && { cpu: opts.cpus.server }),
    });
  };
  try {
    const procs: Record<Side, Proc> = {
      plain: await start('plain', []),
      keyed: await start('keyed', ['--key', keyFile]),
      control: await start('control', ['--key', keyFile], control),
    };
    const rates: Record<Side, number[]> = { plain: [], keyed: [], control: [] };
    const cpu: Record<Side, number[]> = { plain: [], keyed: [], control: [] };
    try {
      for (let round = 0; round < opts.rounds; round++) {
        // Each side first, second and last in turn.
        const order = SIDES.map((_, k) => SIDES[(k + round) % SIDES.length] as Side);
        for (const side of order) {
          const config: LoadGenConfig = {
            group: GROUP,
            port: PORTS[side],
            iface: '127.0.0.1',
            query: QUERY,
            warmup: WARMUP,
            total: opts.total,
            window: 16,
            timeoutMs: 200,
            maxMs: 30_000,
            readyTimeoutMs: 20_000,
            ...(side !== 'plain' && { signKeyHex: keyBytes.toString('hex') }),
            ...(procs[side].pid !== undefined && { serverPid: procs[side].pid }),
          };
          const r = await runChild<LoadGenResult>(host, 'loadGen', config, { timeoutMs: 90_000, ...(opts.cpus && { cpu: opts.cpus.generator }) });
          rates[side].push(r.rate);
          cpu[side].push(((r.serverCpuMs ?? Number.NaN) * 1000) / r.answered);
          // The sends and receives: system time over user + system, both over the measured phase
          // (bench/child/loadGen.ts reads them together); 10 ms ticks.
          const kernelShare = (r.serverSystemMs ?? Number.NaN) / (r.serverCpuMs ?? Number.NaN);
          opts.log(`auth cost, ${side} run ${round + 1}/${opts.rounds}: ${fmtInt(r.rate)} answers/s, lost ${r.lost}, CPU ${(((r.serverCpuMs ?? Number.NaN) * 1000) / r.answered).toFixed(1)} µs/answer, ${Math.round(kernelShare * 100)} % in the kernel`);
        }
      }
    } finally {
      // SIGTERM: both stop cleanly, which is also when --cpu-prof writes the profiles.
      await Promise.all(SIDES.map((side) => procs[side].stop(5000)));
    }
    const ratiosOf = (side: Side): number[] => rates.plain.map((p, k) => (rates[side][k] ?? Number.NaN) / p);
    const floor = measureHmacFloor();
    // Median polod CPU per answer, µs (tabled below, not returned).
    const result = {
      plain: median(rates.plain),
      keyed: median(rates.keyed),
      control: median(rates.control),
      ratio: median(ratiosOf('keyed')),
      controlRatio: median(ratiosOf('control')),
      plainCpuUs: median(cpu.plain),
      keyedCpuUs: median(cpu.keyed),
      controlCpuUs: median(cpu.control),
    };
    const ceiling = result.plainCpuUs / (result.plainCpuUs + floor.hashesUs);
    const tables: Table[] = [
      {
        caption: `Request-For answers per second on loopback, closed loop (16 in flight), ${opts.rounds} rounds of ${fmtInt(opts.total)} answers per side`,
        header: ['polod', 'answers/s (median)', 'range', 'polod CPU per answer'],
        rows: [
          ['no key', fmtInt(result.plain), `${fmtInt(Math.min(...rates.plain))}–${fmtInt(Math.max(...rates.plain))}`, `${result.plainCpuUs.toFixed(1)} µs`],
          [
            '--key (required): queries verified, replies signed',
            fmtInt(result.keyed),
            `${fmtInt(Math.min(...rates.keyed))}–${fmtInt(Math.max(...rates.keyed))}`,
            `${result.keyedCpuUs.toFixed(1)} µs`,
          ],
          ['ratio (median of per-round ratios)', `${result.ratio.toFixed(2)}×`, '', `${(result.plainCpuUs / result.keyedCpuUs).toFixed(2)}× (answers per CPU second)`],
          [
            'control: --key with the MAC replaced by a constant (everything else of the keyed path)',
            fmtInt(result.control),
            `${fmtInt(Math.min(...rates.control))}–${fmtInt(Math.max(...rates.control))}`,
            `${result.controlCpuUs.toFixed(1)} µs`,
          ],
          ['control ratio: the best any MAC could reach', `${result.controlRatio.toFixed(2)}×`, '', `${(result.plainCpuUs / result.controlCpuUs).toFixed(2)}× (answers per CPU second)`],
        ],
      },
      {
        caption: 'The floor under any HMAC-SHA256 design, measured in the benchmark process (medians of 5 × 200,000 calls)',
        header: ['work per answer', 'CPU', 'answers per CPU second, relative to no key'],
        rows: [
          ['four one-shot SHA-256 (the two HMACs of an answer), nothing else', `${floor.hashesUs.toFixed(2)} µs`, `${ceiling.toFixed(2)}× at best`],
          ["polod's verify of the query + signing of the reply (src/auth/gridAuth.ts)", `${floor.verifySignUs.toFixed(2)} µs`, `${(result.plainCpuUs / (result.plainCpuUs + floor.verifySignUs)).toFixed(2)}× if nothing else cost`],
        ],
      },
    ];
    if (profileRoot !== undefined) {
      const answers = opts.rounds * (opts.total + WARMUP);
      for (const side of ['plain', 'keyed'] as const) {
        const summary = await summarizeProfileDir(path.join(profileRoot, side), REPO_ROOT, 25);
        tables.push({
          caption: `${side} polod: hottest functions by self time (--cpu-prof, whole run)`,
          header: ['function', 'per answer', 'share of busy time'],
          rows: summary.top.map((f) => [f.where, `${((f.selfMs * 1000) / answers).toFixed(2)} µs`, fmtPct(f.share)]),
        });
      }
    }
    return { plain: result.plain, keyed: result.keyed, ratio: result.ratio, controlRatio: result.controlRatio, ceiling, tables };
  } finally {
    if (profileRoot !== undefined) await rm(profileRoot, { recursive: true, force: true });
  }
}
