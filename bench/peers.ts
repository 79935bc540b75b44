/**
 * MarcoPolo against the mDNS systems people use today for the same job, on one namespace LAN:
 * 10 responder hosts each offering one service, "web" on port 8080, and one client host. The
 * claim measured is ours: "faster than Avahi/Bonjour and the npm mDNS libraries".
 *
 * Systems, one after the other on the same LAN in the same run (never two at once: two mDNS
 * responders on one host would answer each other's queries, and the datagram counts would mix):
 * 1. MarcoPolo: a polod per responder (service `web`, params {"port":8080}), asked by the
 *    in-process `Marco` client with Request-For queries;
 * 2. bonjour-service, the most used Node.js mDNS library: a responder process per host;
 * 3. Avahi (avahi-daemon, when installed): a daemon per host, each in its own mount namespace.
 * The mDNS responders are browsed by bonjour-service's browser (`_web._tcp`), a new instance per
 * round (cold cache, new socket), as each MarcoPolo round is a new query; the bonjour-service
 * responders also by a bare multicast-dns PTR query, the least client code mDNS needs in Node.js.
 *
 * Figures per system: time to the first usable provider (address and port), to all of them,
 * to when the client knows it has them all, and the datagrams sent on the LAN per discovery,
 * from the UDP counters of every host's namespace read around it.
 */
import { performance } from 'node:perf_hooks';
import type { PeersClientConfig, PeersCommand, PeersReply } from './child/peersClient.js';
import type { MdnsResponderConfig } from './child/mdnsResponder.js';
import { AVAHI_INSTALL_HINT, avahiVersion, findAvahiDaemon, startAvahi } from './lib/avahi.js';
import { childScript, distFile, POLOD_JS, requireBuilt, startGrid, stopProc, withLan, withTempDir } from './lib/env.js';
import { udp6Counters, udpCounters } from './lib/procfs.js';
import { fmtMs, fmtRatio, type KeyFigure, type Section, type Table } from './lib/report.js';
import { median, summarize, type Summary } from './lib/stats.js';
import { DEFAULT_TIMING } from '../src/membership/timing.js';
import type { LanHost } from '../test/helpers/netns.js';
import type { Proc } from '../test/helpers/proc.js';

/** Knobs of the peers benchmark. */
export interface PeersOptions {
  /** Responder hosts, each offering the service once. */
  readonly providers: number;
  /** Measured rounds per system. */
  readonly rounds: number;
  /** Untimed rounds per system first (JIT of the client and the responders, ARP caches). */
  readonly warmup: number;
  /** How long MarcoPolo's LAN at rest is counted, ms (the mDNS LANs': between their rounds). */
  readonly idleMs: number;
  /** Another polod build (default: this checkout's). */
  readonly polodJs?: string;
  readonly log: (line: string) => void;
}

/** 10 providers, 20 rounds per system: about 2 minutes (the mDNS discoveries are paced a second apart). */
export const PEERS_DEFAULTS: Omit<PeersOptions, 'log'> = { providers: 10, rounds: 20, warmup: 2, idleMs: 3000 };

/** The LAN of this benchmark (bench/lib/env.ts: names start with `bench`, subnets 150-199). */
const LAN = { name: 'benchpeers', subnet: 160 };
/** marco's defaults. */
const GROUP = '224.0.0.112';
const PORT = 1337;
/** What every responder offers. */
const SERVICE = 'web';
const SERVICE_PORT = 8080;
/** MarcoPolo's query deadline: marco's default. */
const MARCO_TIMEOUT_MS = 1000;
/** An mDNS browse that has not found every provider by then counts as failed. */
const BROWSE_TIMEOUT_MS = 3000;
/**
 * Between the end of one mDNS round and the start of the next. A responder multicasts a record
 * at most once per second (RFC 6762 §6.2), and Avahi leaves out of an answer the records it
 * multicast within its response history (500 ms), the host's address among them: a cold client
 * right behind another would get providers without addresses. Clients on a real LAN arrive
 * independently, so the rounds model that, rather than a client racing its predecessor.
 */
const MDNS_SPACING_MS = 1100;
/**
 * Rounds start once the LAN has sent nothing for this long: probing and the first announcements
 * are over. bonjour-service still re-announces 3, 12, 39 s… after publishing, during the rounds
 * (its rest figure counts them; a counted discovery that meets one is outvoted by the median);
 * Avahi announces nothing more.
 */
const QUIET_MS = 1000;

/** Per-round samples of one system, ms, and the datagrams of each counted discovery. */
interface Samples {
  first: number[];
  all: number[];
  /** When the call ended by itself (MarcoPolo). */
  end: number[];
  /** Datagrams sent (UDP OutDatagrams) on the whole LAN per discovery. */
  sent: number[];
  /** Datagrams read by programs (UDP InDatagrams) on the whole LAN per discovery. */
  read: number[];
  /** Rounds that did not find every provider. */
  failures: number;
  /** mDNS: providers announced without an IPv4 address or with another port (all rounds). */
  unusable: number;
  /** Datagrams per second sent on the LAN at rest, once start-up settled. */
  idlePerSecond: number;
  /** Over how long that was counted, ms. */
  idleSpanMs: number;
}

const emptySamples = (): Samples => ({ first: [], all: [], end: [], sent: [], read: [], failures: 0, unusable: 0, idlePerSecond: Number.NaN, idleSpanMs: 0 });

/** One system's outcome: its samples, or why it did not run. */
interface SystemResult {
  readonly label: string;
  /** For the key figures: "bonjour-service (browser)". */
  readonly short: string;
  readonly samples?: Samples;
  /** Extra samples: MarcoPolo's Marco query (nodes), which ends on the Members hint. */
  readonly nodesEnd?: number[];
  /** MarcoPolo: the first arrival within the streamed Request-For (no maxNodes). */
  readonly streamFirst?: number[];
  readonly skipped?: string;
}

/**
 * The client process on the client host, driven one command at a time; reads the LAN's UDP
 * counters (every host's namespace, through a process living in it) around a command.
 */
class Client {
  private seq = 0;

  private constructor(private readonly proc: Proc) {}

  static async start(host: LanHost, config: PeersClientConfig): Promise<Client> {
    const script = childScript('peersClient');
    requireBuilt(script, 'bench/child/peersClient.ts');
    const proc = host.spawn([process.execPath, script, JSON.stringify(config)]);
    await proc.waitForLine((l) => l.startsWith('{"ready"'), 'the peers client to start', 10_000);
    return new Client(proc);
  }

  get pid(): number {
    if (this.proc.pid === undefined) throw new Error('the peers client has no pid');
    return this.proc.pid;
  }

  async send(op: PeersCommand['op'], extra: Partial<PeersCommand> = {}, timeoutMs = 20_000): Promise<PeersReply> {
    const cmd: PeersCommand = { ...extra, seq: ++this.seq, op };
    const tag = `{"seq":${cmd.seq},`;
    this.proc.child.stdin?.write(`${JSON.stringify(cmd)}\n`);
    const line = await this.proc.waitForLine((l) => l.startsWith(tag), `the peers client's reply to ${op}`, timeoutMs);
    return JSON.parse(line) as PeersReply;
  }

  /**
   * `send`, with the UDP datagrams sent and read on the LAN (all of `pids`' namespaces)
   * meanwhile. With `settle`, the counters are read once they stopped moving (mDNS: every host
   * reads every multicast answer, some after the client had its last one); without, at once
   * (MarcoPolo: the polods read the query before answering, and the replies go to the client).
   */
  async counted(op: PeersCommand['op'], pids: readonly number[], settle = false): Promise<{ reply: PeersReply; sent: number; read: number }> {
    const before = lanUdp(pids);
    const reply = await this.send(op);
    const after = settle ? (await whenStill(pids, 20, 500)).counters : lanUdp(pids);
    return { reply, sent: after.sent - before.sent, read: after.read - before.read };
  }

  async quit(): Promise<void> {
    await this.send('quit');
    await this.proc.exited;
  }
}

/**
 * UDP datagrams sent and read so far, both families (polod also serves the IPv6 twin of its
 * group over the hosts' link-local addresses, docs/protocol.md §9), summed over the namespaces
 * of `pids` (one per host).
 */
function lanUdp(pids: readonly number[]): { sent: number; read: number } {
  let sent = 0;
  let read = 0;
  for (const pid of pids) {
    for (const c of [udpCounters(pid), udp6Counters(pid)]) {
      sent += c['OutDatagrams'] ?? 0;
      read += c['InDatagrams'] ?? 0;
    }
  }
  return { sent, read };
}

/**
 * The LAN's counters once they have not moved for `quietMs` (`still`), or as they are after
 * `capMs`: once the hosts still reading the last multicast answers have read them, or the
 * LAN's start-up traffic is over.
 */
async function whenStill(pids: readonly number[], quietMs: number, capMs: number): Promise<{ counters: { sent: number; read: number }; still: boolean }> {
  const deadline = performance.now() + capMs;
  let last = lanUdp(pids);
  let since = performance.now();
  while (performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    const now = lanUdp(pids);
    if (now.sent !== last.sent || now.read !== last.read) {
      last = now;
      since = performance.now();
    } else if (performance.now() - since >= quietMs) return { counters: last, still: true };
  }
  return { counters: last, still: false };
}

/** Datagrams per second the LAN sends with nobody asking, over `ms`. */
async function idleRate(pids: readonly number[], ms: number): Promise<number> {
  const before = lanUdp(pids).sent;
  await new Promise((resolve) => setTimeout(resolve, ms));
  return ((lanUdp(pids).sent - before) * 1000) / ms;
}

/** Resolves once the LAN has sent and read no datagram for `QUIET_MS` (start-up announcements over). */
async function waitQuiet(pids: readonly number[], timeoutMs: number): Promise<void> {
  if (!(await whenStill(pids, QUIET_MS, timeoutMs)).still) throw new Error(`the LAN never went quiet for ${QUIET_MS} ms within ${timeoutMs} ms`);
}

function pidsOf(procs: readonly Proc[]): number[] {
  return procs.map((p) => {
    if (p.pid === undefined) throw new Error(`${p.argv.join(' ')} has no pid`);
    return p.pid;
  });
}

/** MarcoPolo: polods up, the four queries each round, polods stopped. */
async function raceMarcoPolo(opts: PeersOptions, lan: { responders: readonly LanHost[]; client: Client; dir: string }): Promise<SystemResult> {
  const program = opts.polodJs ?? POLOD_JS;
  const grid = await startGrid(lan.responders, {
    program,
    dir: lan.dir,
    group: GROUP,
    port: PORT,
    services: () => [{ id: SERVICE, params: { port: SERVICE_PORT } }],
  });
  const started = performance.now();
  try {
    const ready = await lan.client.send('mp-ready');
    if (ready.error !== undefined) throw new Error(`MarcoPolo: ${ready.error}`);
    opts.log(`peers: ${lan.responders.length} polods answer`);
    // As the mDNS rounds wait for their responders' probing and first announcements, these wait
    // for the polods' start-up: their views hold each other's services (a Request-For ends on
    // the Providers hint), and the membership queries every polod sends on starting have had
    // their window (docs/protocol.md §8.3). Rounds run in the start-up burst measure it instead.
    const settled = started + DEFAULT_TIMING.startRepeatMs + DEFAULT_TIMING.firstQueryMaxMs + DEFAULT_TIMING.queryWindowMs;
    for (;;) {
      const probe = await lan.client.send('mp-all');
      if (probe.end !== undefined && endedByItself(probe.end) && performance.now() >= settled) break;
      if (performance.now() > started + 30_000) throw new Error('MarcoPolo: the polods did not settle within 30 s (no Providers hint)');
    }
    const pids = [...pidsOf(grid.polods), lan.client.pid];
    const s = emptySamples();
    const nodesEnd: number[] = [];
    const streamFirst: number[] = [];
    for (let round = -opts.warmup; round < opts.rounds; round++) {
      // The four queries in a rotating order, as latencyClient does: none is always the first
      // of a round.
      let first: PeersReply = { seq: 0, found: 0 };
      let all: PeersReply = { seq: 0, found: 0 };
      let nodes: PeersReply = { seq: 0, found: 0 };
      let count: { reply: PeersReply; sent: number; read: number } = { reply: { seq: 0, found: 0 }, sent: 0, read: 0 };
      const queries = [
        async (): Promise<void> => void (first = await lan.client.send('mp-first')),
        async (): Promise<void> => void (all = await lan.client.send('mp-all')),
        // Counted on the query that ends at its last provider: a few ms, so a heartbeat rarely
        // falls inside it (and the median keeps one that does out).
        async (): Promise<void> => void (count = await lan.client.counted('mp-count', pids)),
        async (): Promise<void> => void (nodes = await lan.client.send('mp-nodes')),
      ];
      const start = (round + opts.warmup) % queries.length;
      for (let k = 0; k < queries.length; k++) await queries[(start + k) % queries.length]?.();
      if (round < 0) continue;
      if (first.first !== undefined) s.first.push(first.first);
      if (all.first !== undefined) streamFirst.push(all.first);
      if (all.all !== undefined) s.all.push(all.all);
      if (all.end !== undefined) s.end.push(all.end);
      if (nodes.end !== undefined && nodes.found >= lan.responders.length) nodesEnd.push(nodes.end);
      if (count.reply.all !== undefined) {
        s.sent.push(count.sent);
        s.read.push(count.read);
      }
      if (first.first === undefined || all.all === undefined || count.reply.all === undefined) s.failures++;
    }
    // After the rounds, well clear of the polods' start-up announcements and first membership
    // queries. Their heartbeats never stop (docs/protocol.md §8.2): the rate at rest is part of
    // what MarcoPolo costs a LAN.
    s.idlePerSecond = await idleRate(pids, opts.idleMs);
    s.idleSpanMs = opts.idleMs;
    return { label: 'MarcoPolo (polod; in-process `Marco`, Request-For)', short: 'MarcoPolo', samples: s, nodesEnd, streamFirst };
  } finally {
    await Promise.all(grid.polods.map(stopProc));
  }
}

/** An mDNS client of the benchmark: the client op, and the row it makes. */
interface MdnsClientKind {
  readonly op: 'mdns' | 'mdns-raw';
  readonly label: string;
  readonly short: string;
}

/**
 * One mDNS system whose responders are up: settle, then cold discoveries a second apart, each
 * client kind in turn within a round. One row per client kind.
 */
async function raceMdns(opts: PeersOptions, client: Client, responders: readonly Proc[], kinds: readonly MdnsClientKind[]): Promise<SystemResult[]> {
  const ready = await client.send('mdns-ready', { readyTimeoutMs: 15_000 });
  if (ready.error !== undefined) throw new Error(ready.error);
  const pids = [...pidsOf(responders), client.pid];
  await waitQuiet(pids, 20_000);
  const samples = kinds.map(() => emptySamples());
  // The LAN at rest: what it sends in the gaps between discoveries, where nobody asks (a
  // responder's re-announcements come on their own schedule: one window would be luck).
  let restSent = 0;
  let restMs = 0;
  for (let round = -opts.warmup; round < opts.rounds; round++) {
    for (const [k, kind] of kinds.entries()) {
      const gapStart = { at: performance.now(), sent: lanUdp(pids).sent };
      await new Promise((resolve) => setTimeout(resolve, MDNS_SPACING_MS));
      restSent += lanUdp(pids).sent - gapStart.sent;
      restMs += performance.now() - gapStart.at;
      const { reply, sent, read } = await client.counted(kind.op, pids, true);
      const s = samples[k];
      if (round < 0 || s === undefined) continue;
      s.unusable += reply.unusable ?? 0;
      if (reply.first !== undefined) s.first.push(reply.first);
      if (reply.all !== undefined) {
        s.all.push(reply.all);
        s.sent.push(sent);
        s.read.push(read);
      } else s.failures++;
    }
  }
  return kinds.map((kind, k) => {
    const s = samples[k] ?? emptySamples();
    s.idlePerSecond = (restSent * 1000) / restMs;
    s.idleSpanMs = restMs;
    return { label: kind.label, short: kind.short, samples: s };
  });
}

async function raceBonjour(opts: PeersOptions, responders: readonly LanHost[], client: Client): Promise<SystemResult[]> {
  const script = childScript('mdnsResponder');
  requireBuilt(script, 'bench/child/mdnsResponder.ts');
  const procs = responders.map((host) => {
    const config: MdnsResponderConfig = { name: host.name, type: SERVICE, port: SERVICE_PORT };
    return host.spawn([process.execPath, script, JSON.stringify(config)]);
  });
  try {
    // Probing (three queries 250 ms apart) and the first announcement.
    await Promise.all(procs.map((p) => p.waitForLine((l) => l.includes('"published"'), 'a bonjour-service responder to publish', 15_000)));
    opts.log(`peers: ${procs.length} bonjour-service responders published`);
    // Both clients here, where answers come at once and the client's own work shows; behind
    // Avahi's 20-120 ms answer delay it would not.
    return await raceMdns(opts, client, procs, [
      { op: 'mdns', label: 'bonjour-service responders (npm), bonjour-service browser', short: 'bonjour-service (browser)' },
      { op: 'mdns-raw', label: 'bonjour-service responders (npm), raw multicast-dns PTR query', short: 'bonjour-service (raw query)' },
    ]);
  } finally {
    await Promise.all(procs.map(stopProc));
  }
}

async function raceAvahi(opts: PeersOptions, responders: readonly LanHost[], client: Client, dir: string): Promise<SystemResult[]> {
  const program = findAvahiDaemon();
  const label = 'Avahi responders (avahi-daemon), bonjour-service browser';
  if (program === undefined) return [{ label, short: 'Avahi', skipped: `avahi-daemon is not installed here; ${AVAHI_INSTALL_HINT}` }];
  const procs: Proc[] = [];
  try {
    // All at once: each probes for about a second, and the LAN has room for ten probing daemons.
    await Promise.all(
      responders.map(async (host) => {
        procs.push(await startAvahi(host, program, dir, { name: host.name, type: SERVICE, port: SERVICE_PORT }));
      }),
    );
    opts.log(`peers: ${procs.length} avahi-daemons established their service`);
    return await raceMdns(opts, client, procs, [{ op: 'mdns', label: `${label}; ${avahiVersion(program)}`, short: 'Avahi' }]);
  } finally {
    await Promise.all(procs.map(stopProc));
  }
}

/** `race()`, or a skipped row saying why it failed. */
async function orSkipped(label: string, race: () => Promise<SystemResult[]>): Promise<SystemResult[]> {
  try {
    return await race();
  } catch (err) {
    return [{ label, short: label, skipped: `failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}` }];
  }
}

/** Runs the benchmark and returns its section of the report. */
export async function benchPeers(opts: PeersOptions): Promise<Section> {
  const discoveryModule = distFile('src/discovery/index.js');
  requireBuilt(discoveryModule, 'the Marco client (src/discovery)');
  requireBuilt(opts.polodJs ?? POLOD_JS, 'polod');
  const started = performance.now();
  return withTempDir('bench-peers', (dir) =>
    withLan({ ...LAN, hosts: opts.providers + 1 }, async (lan) => {
      const responders = lan.hosts.slice(0, opts.providers);
      const clientHost = lan.host(opts.providers + 1);
      const client = await Client.start(clientHost, {
        iface: clientHost.address,
        group: GROUP,
        port: PORT,
        service: SERVICE,
        servicePort: SERVICE_PORT,
        providers: opts.providers,
        timeoutMs: MARCO_TIMEOUT_MS,
        browseTimeoutMs: BROWSE_TIMEOUT_MS,
        discoveryModule,
      });
      const results: SystemResult[] = [];
      results.push(await raceMarcoPolo(opts, { responders, client, dir }));
      opts.log('peers: MarcoPolo measured');
      // An mDNS system that fails leaves a note, not a hole in MarcoPolo's figures.
      results.push(...(await orSkipped('bonjour-service', () => raceBonjour(opts, responders, client))));
      opts.log(`peers: bonjour-service ${results.at(-1)?.skipped === undefined ? 'measured' : 'failed'}`);
      results.push(...(await orSkipped('Avahi', () => raceAvahi(opts, responders, client, dir))));
      opts.log(`peers: Avahi ${results.at(-1)?.skipped === undefined ? 'measured' : 'skipped'}`);
      await client.quit();
      return report(opts, results, (performance.now() - started) / 1000);
    }),
  );
}

const cell = (s: Summary): string => (s.n === 0 ? 'n/a' : `${fmtMs(s.median)} / ${fmtMs(s.p95)}`);
const count = (xs: readonly number[]): string => (xs.length === 0 ? 'n/a' : String(median(xs)));

/** What the client knows when its last provider arrived, per system. */
function knowsCell(r: SystemResult, mdns: boolean): string {
  if (mdns) return 'never by itself: its 10th arrival, then a timeout of the caller\'s choosing (below)';
  const end = summarize(r.samples?.end ?? []);
  // The Providers hint ends a Request-For once every provider answered; without it, the deadline.
  return endsByItself(end) ? `ends by itself on the Providers hint: ${cell(end)}` : `the call ends at its deadline: ${cell(end)} (no Providers hint came)`;
}

/** Whether a MarcoPolo query that took `ms` ended well before its deadline: on a hint. */
const endedByItself = (ms: number): boolean => ms < MARCO_TIMEOUT_MS / 2;
/** The same for a system's queries, by their median. */
const endsByItself = (end: Summary): boolean => end.n > 0 && endedByItself(end.median);

function report(opts: PeersOptions, results: readonly SystemResult[], seconds: number): Section {
  const n = opts.providers;
  const [mp, ...mdns] = results;
  if (mp?.samples === undefined) throw new Error('MarcoPolo was not measured');
  const nodes = summarize(mp.nodesEnd ?? []);
  const table: Table = {
    header: ['system', 'first provider (median / p95)', `all ${n} providers (median / p95)`, `client knows it has all ${n}`, 'datagrams sent per discovery (median)', 'datagrams read per discovery (median)', 'LAN at rest (datagrams/s)'],
    rows: results.flatMap((r) => {
      if (r.samples === undefined) return [[r.label, 'skipped', '', '', '', '', '']];
      const s = r.samples;
      const row = [
        r.label,
        cell(summarize(s.first)),
        cell(summarize(s.all)),
        knowsCell(r, r !== mp),
        count(s.sent),
        count(s.read),
        Number.isFinite(s.idlePerSecond) ? s.idlePerSecond.toFixed(1) : 'n/a',
      ];
      // Where MarcoPolo does end by itself: a Marco query, for nodes rather than a service.
      if (r === mp) return [row, ['MarcoPolo, Marco query for all nodes (not a service\'s providers)', '', '', `ends by itself on the Members hint: ${cell(nodes)}`, '', '', '']];
      return [row];
    }),
  };
  const measured = mdns.filter((r) => r.samples !== undefined && r.samples.all.length > 0);
  const fastestAll = measured.reduce<SystemResult | undefined>((best, r) => (best === undefined || median(r.samples?.all ?? []) < median(best.samples?.all ?? []) ? r : best), undefined);
  const fastestFirst = measured.reduce<SystemResult | undefined>((best, r) => (best === undefined || median(r.samples?.first ?? []) < median(best.samples?.first ?? []) ? r : best), undefined);
  const keyFigures: KeyFigure[] = [];
  const mpAll = median(mp.samples.all);
  const mpFirst = median(mp.samples.first);
  if (fastestAll?.samples !== undefined) {
    const other = median(fastestAll.samples.all);
    keyFigures.push({
      what: `peers: all ${n} providers of a service, MarcoPolo (median)`,
      measured: `${fmtMs(mpAll)} (${faster(other, mpAll)})`,
      baseline: `fastest mDNS row, same run: ${fmtMs(other)} (${fastestAll.short})`,
    });
  }
  if (fastestFirst?.samples !== undefined) {
    const other = median(fastestFirst.samples.first);
    keyFigures.push({
      what: 'peers: first provider of a service, MarcoPolo (median)',
      measured: `${fmtMs(mpFirst)} (${faster(other, mpFirst)})`,
      baseline: `fastest mDNS row, same run: ${fmtMs(other)} (${fastestFirst.short})`,
    });
  }
  const mpEnd = summarize(mp.samples.end);
  keyFigures.push({
    what: `peers: client knows it has all ${n} providers, MarcoPolo (median)`,
    measured: endsByItself(mpEnd) ? `${fmtMs(mpEnd.median)}, on the Providers hint` : `not by itself: its ${MARCO_TIMEOUT_MS} ms deadline`,
    baseline: 'mDNS: never by itself (a caller-chosen timeout; Avahi\'s own browsers say "all for now" 1 s after the query)',
  });
  const traffic = (r: SystemResult): string =>
    `${count(r.samples?.sent ?? [])} sent / ${count(r.samples?.read ?? [])} read per discovery, ${(r.samples?.idlePerSecond ?? Number.NaN).toFixed(1)}/s at rest`;
  keyFigures.push({
    what: 'peers: datagrams on the LAN, MarcoPolo (medians)',
    measured: traffic(mp),
    // Per responder system: its client kinds share a LAN and ask the same question.
    baseline: measured.length === 0 ? 'no mDNS system measured' : [...new Map(measured.map((r) => [r.short.split(' ')[0], traffic(r)])).entries()].map(([name, t]) => `${name}: ${t}`).join('; '),
  });
  const notes = [
    `${n} responder hosts and 1 client host on one namespace bridge (LAN \`${LAN.name}\`, 10.201.${LAN.subnet}.0/24); the systems run one after the other (${mp.label}; then bonjour-service; then Avahi), the previous one stopped first. ${opts.rounds} measured rounds per system after ${opts.warmup} untimed ones; every round starts from a cold client.`,
    `MarcoPolo: \`requestFor('${SERVICE}', { maxNodes: 1 })\` for the first provider; \`requestForStream('${SERVICE}')\` (no maxNodes, deadline ${MARCO_TIMEOUT_MS} ms, marco's default) for each provider's arrival and the call's end. Both are Request-For queries answered with the service's params (\`{"port":${SERVICE_PORT}}\`), so the address and port are known at arrival.`,
    `MarcoPolo's first provider is the time until \`requestFor\` with maxNodes 1 returned, which waits for its socket to close, while its all-providers time, like the mDNS rows' times, is taken at the arrival itself: so the first can exceed the all. The first arrival within the streamed query, timed as the mDNS rows are, was ${cell(summarize(mp.streamFirst ?? []))}. The four MarcoPolo queries of a round run in a rotating order, once the polods' start-up is over: a Request-For ends on the Providers hint (their views hold each other's services) and the window of the membership query each polod sends on starting has closed (${DEFAULT_TIMING.startRepeatMs + DEFAULT_TIMING.firstQueryMaxMs + DEFAULT_TIMING.queryWindowMs} ms after the start, docs/protocol.md §8.3).`,
    `mDNS clients, cold each time: bonjour-service's browser (a new instance: new socket on 5353, empty cache) browsing \`_${SERVICE}._tcp\`, which sends one PTR question; and, against the bonjour-service responders, the same question as one raw multicast-dns query on a new socket, the answers read by hand (the least client code a Node.js mDNS discovery can run; multicast-dns is the socket under bonjour-service). A provider counts once it is known with an IPv4 address and port ${SERVICE_PORT} (both responders send SRV, TXT and A with their PTR answer). A discovery ends at the ${n}th provider (failed after ${BROWSE_TIMEOUT_MS} ms) and the next starts ${MDNS_SPACING_MS} ms later: RFC 6762 §6.2 lets a responder multicast a record once a second, and Avahi leaves out of an answer the records it multicast in the last 500 ms (the host's address among them), so back-to-back cold clients would get providers without addresses. Avahi is asked by the browser only: its answers wait 20-120 ms (below), which no client's own work comes near.`,
    `Responders: bonjour-service publishes \`<host>._${SERVICE}._tcp.local\` on \`<host>.local\` (probing on) from one Node.js process per host, answering at once; avahi-daemon has its own mount namespace per host (a tmpfs over /run, its own configuration bind-mounted over /etc/avahi: allow-interfaces=eth0, use-ipv6=no, enable-dbus=no, enable-wide-area=no, publish-workstation=no, a static service file) and runs as root with --no-drop-root --no-chroot --no-rlimits. Avahi delays its answers to shared (PTR) questions by 20-120 ms at random, as RFC 6762 §6 asks of a responder; bonjour-service does not.`,
    `Knowing it has them all: MarcoPolo's OK replies to Request-For carry the Providers hint, how many nodes offer the service as the replying polod's view counts them (docs/protocol.md §8.4), so \`requestForStream('${SERVICE}')\` ends once every provider answered, not at its ${MARCO_TIMEOUT_MS} ms deadline (the end column); a Marco query for all ${n} nodes ends the same way on the Members hint: ${cell(nodes)} (median / p95). An mDNS browse never ends by itself: bonjour-service's \`find()\` browses until stopped and its \`findOne()\` times out after 10 s by default; Avahi's own browsers (\`avahi-browse --terminate\`) end on "all for now", which avahi-core fires 1 s after the query started (avahi-core/multicast-lookup.c). The ${n}th-arrival times above are therefore lower bounds of what any of them waits before it would stop.`,
    `Datagrams: the sum over all ${n + 1} hosts' namespaces of UDP OutDatagrams (sent) and InDatagrams (read by a program), IPv4 and IPv6, from /proc/<pid>/net/snmp and snmp6, read just before and just after one discovery per round that ends at its ${n}th provider (MarcoPolo: \`requestFor\` with maxNodes ${n}, a few ms in which a heartbeat rarely falls; mDNS: the browse, read once the counters have stood still for 20 ms, since every host reads every multicast answer, some after the client had its last), median over rounds. mDNS rounds start once the LAN has been silent for ${QUIET_MS} ms (responders' probes and first announcements over). Multicast answers are read by every mDNS host; MarcoPolo's replies go to the asker alone.`,
    `At rest: what the LAN sends with nobody asking — MarcoPolo over ${opts.idleMs} ms after its rounds: polod's live-discovery heartbeats and membership queries (docs/protocol.md §8.2-8.3), on the IPv4 group and its IPv6 twin; mDNS over the gaps between discoveries (${[...new Map(measured.map((r) => [r.short.split(' ')[0], r.samples?.idleSpanMs ?? 0])).entries()].map(([name, ms]) => `${name} ${(ms / 1000).toFixed(0)} s`).join(', ')}): bonjour-service re-announces each service 3, 12, 39, 120 s… after publishing (gaps growing threefold, up to an hour), Avahi only on changes.`,
  ];
  for (const r of results) {
    if (r.skipped !== undefined) notes.push(`${r.label}: skipped: ${r.skipped}.`);
    else if (r.samples !== undefined && r.samples.failures > 0) notes.push(`${r.label}: ${r.samples.failures} of ${opts.rounds} rounds did not find all ${n} providers (left out of the figures).`);
    if (r.samples !== undefined && r.samples.unusable > 0) notes.push(`${r.label}: ${r.samples.unusable} provider announcements came without an IPv4 address or port ${SERVICE_PORT} and were not counted.`);
  }
  if (results.every((r) => r.skipped !== undefined || (r.samples?.failures ?? 1) === 0)) notes.push(`Every measured round of every system found all ${n} providers.`);
  return {
    id: 'peers',
    title: `MarcoPolo against mDNS (${n} providers of one service)`,
    method: `Time from the start of a cold discovery to the first and to all ${n} providers of "${SERVICE}" (address and port usable), median / p95 over ${opts.rounds} rounds per system, and the datagrams each discovery puts on the LAN.`,
    tables: [table],
    aims: [],
    keyFigures,
    notes,
    seconds,
  };
}

/** "3.20× faster" or "1.50× slower": MarcoPolo's `ours` against `theirs`. */
function faster(theirs: number, ours: number): string {
  return theirs >= ours ? `${fmtRatio(theirs / ours)}× faster` : `${fmtRatio(ours / theirs)}× slower`;
}
