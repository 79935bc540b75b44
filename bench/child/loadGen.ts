/**
 * Closed-loop load generator, run as its own process inside the benchmark's namespace.
 *
 * Why closed loop: a MarcoPolo reply carries no request id, so the only way to pair a reply with
 * its query is the socket it arrives on. Each of `window` slots owns one socket and keeps exactly
 * one query in flight: a reply completes it and the next query leaves at once. The window thus
 * bounds what is queued at the server (no overload collapse, no dependence on guessing a rate),
 * and the rate measured is the server's capacity at that concurrency. A query unanswered after
 * `timeoutMs` is counted lost and its slot moves on, so loss is measured rather than stalling
 * the loop; the kernel's UDP drop counters are reported next to it.
 *
 * Usage: node loadGen.js '<LoadGenConfig as JSON>' — prints one LoadGenResult JSON line.
 */
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { cpuTimesMs, udpCounters, type CpuTimes } from '../lib/procfs.js';
import { median, percentile } from '../lib/stats.js';

/** What the generator is told to do. */
export interface LoadGenConfig {
  /** Where queries go (a multicast group) and from which interface they leave. */
  readonly group: string;
  readonly port: number;
  readonly iface: string;
  /** The datagram sent, as text. */
  readonly query: string;
  /** Completions (answers or losses) before measuring starts: JIT warm-up of both sides. */
  readonly warmup: number;
  /** Completions measured. */
  readonly total: number;
  /** Queries in flight (one socket each). */
  readonly window: number;
  /** A query unanswered this long is lost. */
  readonly timeoutMs: number;
  /** Hard bound on the loaded phase; the run stops early (and says so) when it is reached. */
  readonly maxMs: number;
  /** How long to wait for the server's first answer before giving up. */
  readonly readyTimeoutMs: number;
  /** The server's pid, to charge it CPU time over the measured phase. */
  readonly serverPid?: number;
  /**
   * A grid key (hex): every query sent is signed with a fresh nonce (src/auth/gridAuth.ts). The
   * queries are signed before the run, so the generator's own cost stays out of the figures.
   */
  readonly signKeyHex?: string;
}

/** What one run measured (the measured phase only, warm-up excluded). */
export interface LoadGenResult {
  readonly answered: number;
  readonly lost: number;
  /** Replies arriving on a slot with nothing in flight (a late answer to a query counted lost). */
  readonly strays: number;
  /** Datagrams the generator could not send. */
  readonly sendErrors: number;
  readonly elapsedMs: number;
  /** Answers per second. */
  readonly rate: number;
  /** lost / (answered + lost). */
  readonly lossRatio: number;
  /** Round-trip time of answered queries under this load, in µs. */
  readonly rttMedianUs: number;
  readonly rttP99Us: number;
  /** CPU time the server used during the measured phase, in ms (undefined without serverPid). */
  readonly serverCpuMs: number | undefined;
  /** The system (kernel) part of serverCpuMs, over the same window. */
  readonly serverSystemMs: number | undefined;
  /** CPU time this generator used during the measured phase, in ms. */
  readonly generatorCpuMs: number;
  /** Growth of the namespace's UDP RcvbufErrors and InErrors counters during the measured phase. */
  readonly kernelDrops: { readonly rcvbufErrors: number; readonly inErrors: number };
  /** True when maxMs cut the run short. */
  readonly cutShort: boolean;
  /** The first reply received (a check that the server answers what was asked). */
  readonly sampleReply: string;
}

interface Slot {
  readonly socket: dgram.Socket;
  /** performance.now() when the in-flight query left; 0 = idle. */
  sentAt: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as LoadGenConfig;
const plainQuery = Buffer.from(config.query);
/** Pre-signed queries, each sent once (a repeat would be refused as a replay). */
const signedQueries: Buffer[] = [];
let nextSigned = 0;
if (config.signKeyHex !== undefined) {
  const { gridKey, signDatagram } = await import('../../src/auth/gridAuth.js');
  const key = gridKey(Buffer.from(config.signKeyHex, 'hex'));
  const count = Math.ceil((config.warmup + config.total) * 1.2) + config.window + 1000;
  for (let k = 0; k < count; k++) signedQueries.push(signDatagram(plainQuery, key).bytes);
}
/** The next datagram to send. */
function nextQuery(): Buffer {
  if (signedQueries.length === 0) return plainQuery;
  return signedQueries[nextSigned++ % signedQueries.length] as Buffer;
}

/**
 * Destinations are literal IPs: answering the lookup synchronously spares the generator the
 * default lookup's nextTick per send, so it stays faster than the servers it measures.
 */
const literalLookup = (address: string, _opts: unknown, cb: (err: Error | null, address: string, family: number) => void): void =>
  cb(null, address, 4);

function openSocket(onMessage: (msg: Buffer) => void): Promise<dgram.Socket> {
  const socket = dgram.createSocket({ type: 'udp4', lookup: literalLookup as never });
  socket.on('message', onMessage);
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, () => {
      socket.off('error', reject);
      socket.setMulticastInterface(config.iface);
      resolve(socket);
    });
  });
}

/** Sends a query every 50 ms until the server answers once; resolves with that answer. */
async function waitReady(): Promise<string> {
  let resolveReply: (text: string) => void = () => {};
  const replied = new Promise<string>((resolve) => (resolveReply = resolve));
  const probe = await openSocket((msg) => resolveReply(msg.toString()));
  const send = (): void => probe.send(nextQuery(), config.port, config.group);
  send();
  const timer = setInterval(send, 50);
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error(`no answer from ${config.group}:${config.port} within ${config.readyTimeoutMs} ms`)), config.readyTimeoutMs).unref(),
  );
  try {
    return await Promise.race([replied, timeout]);
  } finally {
    clearInterval(timer);
    probe.close();
  }
}

async function main(): Promise<LoadGenResult> {
  const sampleReply = await waitReady();
  const target = config.warmup + config.total;
  const rtts = new Float64Array(config.total);
  let rttCount = 0;
  let issued = 0;
  let completions = 0;
  let answered = 0;
  let lost = 0;
  let strays = 0;
  let sendErrors = 0;
  let stopping = false;
  // Snapshot at the start of the measured phase.
  let measuring = false;
  let t0 = 0;
  let answered0 = 0;
  let lost0 = 0;
  let server0: CpuTimes | undefined;
  let generatorCpu0 = process.cpuUsage();
  let udp0 = udpCounters();

  let finish: (r: LoadGenResult) => void = () => {};
  const finished = new Promise<LoadGenResult>((resolve) => (finish = resolve));

  const startMeasuring = (): void => {
    measuring = true;
    t0 = performance.now();
    answered0 = answered;
    lost0 = lost;
    server0 = config.serverPid === undefined ? undefined : cpuTimesMs(config.serverPid);
    generatorCpu0 = process.cpuUsage();
    udp0 = udpCounters();
  };

  const end = (): void => {
    // Cut short during warm-up: nothing was measured, and the figures say so (0 answers, NaN rate).
    if (!measuring) startMeasuring();
    const elapsedMs = performance.now() - t0;
    const udp1 = udpCounters();
    const server1 = config.serverPid === undefined ? undefined : cpuTimesMs(config.serverPid);
    const cpu = process.cpuUsage(generatorCpu0);
    const measuredAnswered = answered - answered0;
    const measuredLost = lost - lost0;
    const sample = rtts.subarray(0, rttCount);
    finish({
      answered: measuredAnswered,
      lost: measuredLost,
      strays,
      sendErrors,
      elapsedMs,
      rate: (measuredAnswered * 1000) / elapsedMs,
      lossRatio: measuredLost / Math.max(1, measuredAnswered + measuredLost),
      rttMedianUs: median([...sample]),
      rttP99Us: percentile([...sample], 99),
      serverCpuMs: server0 === undefined || server1 === undefined ? undefined : server1.cpuMs - server0.cpuMs,
      serverSystemMs: server0 === undefined || server1 === undefined ? undefined : server1.systemMs - server0.systemMs,
      generatorCpuMs: (cpu.user + cpu.system) / 1000,
      kernelDrops: {
        rcvbufErrors: (udp1['RcvbufErrors'] ?? 0) - (udp0['RcvbufErrors'] ?? 0),
        inErrors: (udp1['InErrors'] ?? 0) - (udp0['InErrors'] ?? 0),
      },
      cutShort: stopping && completions < target,
      sampleReply,
    });
  };

  const issue = (slot: Slot): void => {
    if (issued >= target || stopping) {
      slot.sentAt = 0;
      if (slots.every((s) => s.sentAt === 0)) end();
      return;
    }
    issued++;
    slot.sentAt = performance.now();
    slot.socket.send(nextQuery(), config.port, config.group);
  };

  const complete = (slot: Slot, ok: boolean): void => {
    const rtt = performance.now() - slot.sentAt;
    completions++;
    if (ok) {
      answered++;
      if (measuring && rttCount < rtts.length) rtts[rttCount++] = rtt * 1000;
    } else {
      lost++;
    }
    if (!measuring && completions >= config.warmup) startMeasuring();
    issue(slot);
  };

  const slots: Slot[] = [];
  for (let i = 0; i < config.window; i++) {
    const slot: Slot = {
      socket: await openSocket(() => {
        if (slot.sentAt === 0) strays++;
        else complete(slot, true);
      }),
      sentAt: 0,
    };
    // A failed send is counted; the slot's query then times out and counts as lost.
    slot.socket.on('error', () => sendErrors++);
    slots.push(slot);
  }

  if (config.warmup === 0) startMeasuring();
  const loadStart = performance.now();
  // One sweep for every slot: a timer per query would cost more than the work being measured.
  const sweep = setInterval(() => {
    const now = performance.now();
    if (now - loadStart > config.maxMs) stopping = true;
    for (const slot of slots) {
      if (slot.sentAt !== 0 && now - slot.sentAt > config.timeoutMs) complete(slot, false);
    }
  }, 10);
  for (const slot of slots) issue(slot);

  const result = await finished;
  clearInterval(sweep);
  for (const slot of slots) slot.socket.close();
  return result;
}

main().then(
  (result) => {
    console.log(JSON.stringify(result));
  },
  (err: unknown) => {
    console.error(`loadGen: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
