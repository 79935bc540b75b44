/**
 * What remote senders can make polod do (src/responder/guard.ts), measured as an attacker
 * would on a namespace LAN: bytes out per byte in for every query type (one query, and a burst
 * of thousands from one source), a second host's share of answered queries under the two
 * floods of the issue with polod's memory, and the share of a 500-reply burst that
 * `marco discover --max-nodes 500` keeps. Same-run baselines: polod with its limits raised out
 * of reach (as before the guard), and a plain socket with the kernel's default receive queue.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Lan, LanHost } from '../test/helpers/netns.js';
import type { Proc } from '../test/helpers/proc.js';
import { probe, sendDatagrams, startFlood, startStormStandIn, type SendReport } from '../test/helpers/udp-tools.js';
import { MARCO_JS, POLOD_JS, polodStateArgs, requireBuilt, spawnPolod, waitPolodStarted, withLan, withTempDir, writeServices } from './lib/env.js';
import { fmtInt, fmtMB, fmtPct, type Aim, type Section, type Table } from './lib/report.js';
import { memoryOf } from './lib/procfs.js';
import { measureAuthCost } from './keyCost.js';

export interface AbuseOptions {
  /** Queries of each amplification burst. */
  readonly burst: number;
  /** Legitimate queries per flood scenario. */
  readonly probes: number;
  /** Rounds of the 500-reply storm. */
  readonly stormRounds: number;
  /** Rounds (one keyed, one unkeyed run each) and answers per run of the authentication cost. */
  readonly authRounds: number;
  readonly authTotal: number;
  readonly polodJs?: string;
  /** Run the key-cost polods under --cpu-prof and table their hottest functions. */
  readonly profile?: boolean;
  /** CPUs of the key-cost polods and generator (`--pin`). */
  readonly cpus?: { readonly server: number; readonly generator: number };
  readonly log: (line: string) => void;
}

export const ABUSE_DEFAULTS: Omit<AbuseOptions, 'log'> = { burst: 3000, probes: 500, stormRounds: 10, authRounds: 5, authTotal: 50_000 };

const GROUP = '224.0.0.112';
/** [polo] keys that take the guard's limits out of reach: the baseline of "before". */
const NO_LIMITS = [
  'reply_burst_per_source',
  'reply_rate_per_source',
  'reply_burst_total',
  'reply_rate_total',
  'query_burst_per_source',
  'query_rate_per_source',
].map((k) => `${k} = 1000000000`).join('\n');

const TEN = Array.from({ length: 10 }, (_, k) => ({ id: `svc${k}`, params: { port: 8000 + k, path: `/service/number/${k}` } }));
const BIG = [
  { id: 'web', params: { port: 8080 } },
  ...Array.from({ length: 200 }, (_, k) => ({ id: `big${k}`, params: { port: 9000 + k, blob: 'p'.repeat(3850) } })),
];

interface Running {
  proc: Proc;
  stop(): Promise<void>;
}

async function startPolodOn(host: LanHost, dir: string, program: string, services: readonly { id: string; params: Record<string, unknown> }[], config: string): Promise<Running> {
  const own = path.join(dir, `${host.name}-${Math.random().toString(36).slice(2, 8)}`);
  await mkdir(path.join(own, 'services'), { recursive: true });
  await writeServices(path.join(own, 'services'), services);
  await writeFile(path.join(own, 'polo.cfg'), `[polo]\n${config}\n`);
  const proc = spawnPolod(host, {
    program,
    args: [
      ...['--config', path.join(own, 'polo.cfg'), '--group', GROUP, '--interface', host.address, '--hostname', host.name],
      ...['--services-dir', path.join(own, 'services'), '--log-level', 'info'],
      ...(await polodStateArgs(own, program)),
    ],
  });
  await waitPolodStarted(proc, 30_000);
  await proc.waitForJsonLog((r) => r['msg'] === 'polod ready', 'polod ready', 30_000);
  return {
    proc,
    stop: async () => {
      await proc.stop(2000);
    },
  };
}


const ratio = (r: SendReport): string => (r.bytesSent === 0 ? '–' : `${(r.bytesReceived / r.bytesSent).toFixed(2)}×`);

export async function benchAbuse(opts: AbuseOptions): Promise<Section> {
  const program = opts.polodJs ?? POLOD_JS;
  requireBuilt(program, 'polod');
  requireBuilt(MARCO_JS, 'marco');
  const started = performance.now();
  return withTempDir('bench-abuse', (dir) =>
    withLan({ name: 'benchabuse', hosts: 3, subnet: 156 }, async (lan) => {
      const amplification = await measureAmplification(lan, dir, program, opts);
      const floods = await measureFloods(lan, dir, program, opts);
      const storm = await measureStorm(lan, opts);
      const auth = await measureAuthCost(lan.host(3), dir, program, {
        rounds: opts.authRounds,
        total: opts.authTotal,
        ...(opts.profile === true && { profile: true }),
        ...(opts.cpus && { cpus: opts.cpus }),
        log: (l: string) => opts.log(`abuse: ${l}`),
      });
      const aims: Aim[] = [
        {
          what: 'bytes back per byte sent, burst of thousands of queries from one source (worst query type)',
          target: '≤ about 1×',
          measured: amplification.worstBurst,
          met: amplification.worstBurstValue <= 1.2,
          reference: '63× (Services by unicast, one node); 627× to the group of 10 nodes',
        },
        ...floods.aims,
        {
          what: '500-reply burst kept by marco discover --max-nodes 500',
          target: '≥ 99.9 %',
          measured: fmtPct(storm.kept),
          met: storm.kept >= 0.999,
          reference: '88 %',
          why: `the query socket's receive queue is sized for the grid; a plain socket with the kernel's default queue kept ${fmtPct(storm.baseline)} of the same bursts`,
        },
        {
          what: 'answers/s with a grid key, relative to without (same run)',
          target: '≥ 0.8×',
          measured: `${auth.ratio.toFixed(2)}×`,
          met: auth.ratio >= 0.8,
          why: `${fmtInt(auth.keyed)} vs ${fmtInt(auth.plain)} answers/s (medians); per answer polod checks one HMAC-SHA256 and the replay cache, and computes one HMAC for the reply. The control, the keyed polod with its MAC replaced by a constant, reaches ${auth.controlRatio.toFixed(2)}×: what any authenticator must do besides its MAC (find the fields, track the nonce, send a longer reply) takes most of the 20 % by itself; the four SHA-256 calls of the two HMACs would alone cap the ratio at ${auth.ceiling.toFixed(2)}× (see the floor table)`,
        },
      ];
      return {
        id: 'abuse',
        title: 'Abuse: amplification, floods, storms',
        method:
          `A namespace LAN of 3 hosts (h1 polod, h2 attacker, h3 legitimate client). Amplification: h2 sends one query, then a burst of ${fmtInt(opts.burst)} of the same from one socket, to h1's polod (10 services) by unicast and to the group, and counts the bytes of the replies. ` +
          `Floods: h2 floods (valid and malformed queries to the group and h1 as fast as its sender goes; or Services by unicast at about 100/s to a polod offering 200 services of 3.9 KB params) while h3 sends ${fmtInt(opts.probes)} queries one at a time (Request-For and Marco to the group, one Services by unicast in ten), each waiting up to 2 s. ` +
          `Storm: a stand-in host with 500 addresses answers each Marco with 500 replies back to back; ${opts.stormRounds} rounds. Baselines: polod with every limit raised out of reach (as before the guard), same run.`,
        tables: [amplification.table, floods.table, storm.table, ...auth.tables],
        aims,
        notes: [],
        seconds: (performance.now() - started) / 1000,
      };
    }),
  );
}

async function measureAmplification(lan: Lan, dir: string, program: string, opts: AbuseOptions): Promise<{ table: Table; worstBurst: string; worstBurstValue: number }> {
  const [h1, h2] = [lan.host(1), lan.host(2)];
  const rows: string[][] = [];
  let worst = 0;
  let worstText = '';
  // Each measurement from a fresh address of h2: the per-source budgets start full for each.
  let nextSource = 100;
  const queries = [
    ['Marco', '{"Command": "Marco"}'],
    ['Request-For', '{"Command": "Request-For", "Params": "svc3"}'],
    ['Services', '{"Command": "Services"}'],
  ] as const;
  for (const [mode, config] of [['limits (defaults)', ''], ['no limits (baseline)', NO_LIMITS]] as const) {
    const polod = await startPolodOn(h1, dir, program, TEN, config);
    try {
      for (const [what, payload] of queries) {
        for (const [how, target] of [['unicast', h1.address], ['multicast', GROUP]] as const) {
          const local = `10.201.156.${nextSource++}`;
          await lan.addAddress(h2, `${local}/24`);
          const one = await sendDatagrams(h2, { local, targets: [target], payloads: [payload], count: 1, quietMs: 300 });
          const burst = await sendDatagrams(h2, { local, targets: [target], payloads: [payload], count: opts.burst, quietMs: 300 });
          rows.push([mode, `${what} (${how})`, `${one.bytesSent} → ${one.bytesReceived}`, ratio(one), `${fmtInt(burst.bytesSent)} → ${fmtInt(burst.bytesReceived)}`, ratio(burst)]);
          const r = burst.bytesReceived / burst.bytesSent;
          if (config === '' && r > worst) {
            worst = r;
            worstText = `${r.toFixed(2)}× (${what}, ${how})`;
          }
          opts.log(`abuse: ${mode}, ${what} ${how}: one ${ratio(one)}, burst ${ratio(burst)}`);
        }
      }
    } finally {
      await polod.stop();
    }
  }
  return {
    table: {
      caption: `Bytes sent → bytes received by one source (UDP payload), one query and a burst of ${fmtInt(opts.burst)}; polod with 10 services`,
      header: ['polod', 'query', 'one query', 'ratio', 'burst', 'ratio'],
      rows,
    },
    worstBurst: worstText,
    worstBurstValue: worst,
  };
}

async function measureFloods(lan: Lan, dir: string, program: string, opts: AbuseOptions): Promise<{ table: Table; aims: Aim[] }> {
  const [h1, h2, h3] = [lan.host(1), lan.host(2), lan.host(3)];
  // Request-For and Marco to the group, one Services by unicast in ten (as the test does).
  const legit = [
    ...Array.from({ length: 9 }, (_, k) =>
      k % 2 === 0 ? { to: GROUP, payload: '{"Command": "Request-For", "Params": "web"}' } : { to: GROUP, payload: '{"Command": "Marco"}' },
    ),
    { to: h1.address, payload: '{"Command": "Services"}' },
  ];
  const scenarios = [
    {
      name: 'full-speed flood, valid + malformed',
      services: [{ id: 'web', params: { port: 8080 } }],
      plan: {
        local: h2.address,
        targets: [GROUP, h1.address],
        payloads: ['{"Command": "Marco"}', '{"Command": "Request-For", "Params": "web"}', '{"Command": "Services"}', '{"Command": "Marco"', 'not json', '{"Command": "Nope"}', `{"Command": "Marco", "pad": "${'x'.repeat(3000)}"}`, '['.repeat(2000)],
        count: 5_000_000,
        batch: 64,
        quietMs: 100,
      },
      reference: '9 %',
    },
    {
      name: 'Services by unicast at 100/s, 200 services of 3.9 KB',
      services: BIG,
      plan: { local: h2.address, targets: [h1.address], payloads: ['{"Command": "Services"}'], count: 1_000_000, batch: 1, intervalMs: 10, quietMs: 100 },
      reference: '73 %',
    },
  ];
  const rows: string[][] = [];
  const aims: Aim[] = [];
  for (const s of scenarios) {
    const answered: Record<string, number> = {};
    for (const [mode, config] of [['limits', ''], ['no limits', NO_LIMITS]] as const) {
      const polod = await startPolodOn(h1, dir, program, s.services, config);
      try {
        const idle = memoryOf(polod.proc.child.pid as number);
        const flood = startFlood(h2, s.plan);
        const result = await probe(h3, { local: h3.address, queries: legit, count: opts.probes, waitMs: 2000, intervalMs: 5 });
        const sent = await flood.stop();
        const peak = memoryOf(polod.proc.child.pid as number);
        // Back to idle: what polod holds once the flood is over and its collector has run.
        await new Promise((resolve) => setTimeout(resolve, 5000));
        const after = memoryOf(polod.proc.child.pid as number);
        const share = result.answered / result.sent;
        answered[mode] = share;
        rows.push([s.name, mode, fmtPct(share), fmtInt(sent.sent), `${fmtInt(sent.bytesSent)} → ${fmtInt(sent.bytesReceived)}`, fmtMB(idle.rssKiB), fmtMB(peak.hwmKiB), fmtMB(after.rssKiB)]);
        opts.log(`abuse: ${s.name}, ${mode}: ${fmtPct(share)} answered, RSS ${fmtMB(idle.rssKiB)} → peak ${fmtMB(peak.hwmKiB)} → ${fmtMB(after.rssKiB)}`);
      } finally {
        await polod.stop();
      }
    }
    aims.push({
      what: `second host's queries answered: ${s.name}`,
      target: '≥ 99 %',
      measured: fmtPct(answered['limits'] ?? 0),
      met: (answered['limits'] ?? 0) >= 0.99,
      reference: s.reference,
      why: `without the limits, same run: ${fmtPct(answered['no limits'] ?? 0)}`,
    });
  }
  return {
    table: {
      caption: `A second host's ${fmtInt(opts.probes)} queries (one at a time) during a flood from another host; polod's resident memory idle, at its peak, and 5 s after`,
      header: ['flood', 'polod', 'answered', 'flood datagrams', 'flood bytes sent → received', 'RSS idle', 'RSS peak', 'RSS after'],
      rows,
    },
    aims,
  };
}

const BASELINE_RECEIVER = `
const dgram = require('node:dgram');
const [local, group] = process.argv.slice(1);
const s = dgram.createSocket('udp4');
let n = 0;
let last = 0;
s.on('message', () => { n++; last = Date.now(); });
s.bind(0, local, () => {
  s.setMulticastInterface(local);
  s.send(Buffer.from('{"Command": "Marco"}'), 1337, group);
  const start = Date.now();
  const t = setInterval(() => {
    if ((n > 0 && Date.now() - last > 500) || Date.now() - start > 5000) { clearInterval(t); console.log(n); s.close(); }
  }, 20);
});
`;

async function measureStorm(lan: Lan, opts: AbuseOptions): Promise<{ table: Table; kept: number; baseline: number }> {
  const [grid, client] = [lan.host(1), lan.host(3)];
  const nodes = Array.from({ length: 500 }, (_, k) => `10.201.${157 + Math.floor(k / 250)}.${(k % 250) + 1}`);
  await grid.run(['ip', '-batch', '-'], { input: `${nodes.map((a) => `address add ${a}/24 dev ${grid.iface}`).join('\n')}\n`, timeoutMs: 30_000 });
  for (const net of ['10.201.157.0/24', '10.201.158.0/24']) await client.run(['ip', 'route', 'add', net, 'dev', client.iface]);
  const standIn = await startStormStandIn(grid, { addresses: nodes, group: GROUP, iface: grid.address });
  let kept = 0;
  let baseline = 0;
  try {
    for (let round = 0; round < opts.stormRounds; round++) {
      const res = await client.run([process.execPath, MARCO_JS, 'discover', '--group', GROUP, '--interface', client.address, '--max-nodes', '500', '--timeout', '5000', '--json'], { timeoutMs: 20_000 });
      kept += (JSON.parse(res.stdout) as unknown[]).length;
      const raw = await client.run([process.execPath, '-e', BASELINE_RECEIVER, client.address, GROUP], { timeoutMs: 20_000 });
      baseline += Number(raw.stdout.trim());
    }
  } finally {
    await standIn.stop();
  }
  const total = opts.stormRounds * nodes.length;
  opts.log(`abuse: storm: marco kept ${kept} of ${total}, a default-queue socket ${baseline}`);
  return {
    table: {
      caption: `A burst of 500 Polo replies from 500 addresses, ${opts.stormRounds} rounds`,
      header: ['receiver', 'replies kept', 'share'],
      rows: [
        ['marco discover --max-nodes 500', `${fmtInt(kept)} of ${fmtInt(total)}`, fmtPct(kept / total)],
        ["plain socket, kernel's default receive queue (baseline)", `${fmtInt(baseline)} of ${fmtInt(total)}`, fmtPct(baseline / total)],
      ],
    },
    kept: kept / total,
    baseline: baseline / total,
  };
}
