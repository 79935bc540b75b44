/**
 * Small senders run inside a namespace host for the abuse tests (test/integration/lan-abuse-*):
 * a paced UDP sender that counts the bytes it sends and the replies it gets back, and a raw
 * socket that forges a datagram from source port 0 (which no ordinary socket can send), and a
 * one-datagram asker that reads the replies.
 */
import type { LanHost } from './netns.js';

/** What {@link sendDatagrams} does. */
export interface SendPlan {
  /** Local address to send from (and receive replies on). */
  readonly local: string;
  /** Where each datagram goes, in turn. */
  readonly targets: readonly string[];
  readonly port?: number;
  /** Payloads, sent in turn: a string, or `{ template }` where `%d` is replaced by the datagram's number. */
  readonly payloads: readonly (string | { readonly template: string })[];
  /** Datagrams to send in all. */
  readonly count: number;
  /** Datagrams per batch; a timer tick between batches paces the flood (default 32). */
  readonly batch?: number;
  /** After the last datagram, stop once no reply came for this long (a collection window, ms). */
  readonly quietMs?: number;
  /** Stop sending once this many replies came (0 = never). */
  readonly stopAfterReplies?: number;
  /** Pause between batches, ms (default 1: a timer tick). */
  readonly intervalMs?: number;
  /** Send until stdin ends (and at most `count`): a flood run alongside a test (see startFlood). */
  readonly untilStdinEnd?: boolean;
}

/** What the sender reports. */
export interface SendReport {
  sent: number;
  bytesSent: number;
  errors: number;
  replies: number;
  bytesReceived: number;
  /** Replies per source address. */
  from: Record<string, number>;
}

const SENDER = `
const dgram = require('node:dgram');
const plan = JSON.parse(process.argv[1]);
const port = plan.port ?? 1337;
const batch = plan.batch ?? 32;
const quiet = plan.quietMs ?? 500;
let stdinEnded = false;
if (plan.untilStdinEnd) { process.stdin.on('data', () => {}); process.stdin.on('end', () => { stdinEnded = true; }); }
const r = { sent: 0, bytesSent: 0, errors: 0, replies: 0, bytesReceived: 0, from: {} };
const payload = (k) => {
  const p = plan.payloads[k % plan.payloads.length];
  return Buffer.from(typeof p === 'string' ? p : p.template.replaceAll('%d', String(k)));
};
let last = Date.now();
const s = dgram.createSocket('udp4');
s.on('message', (msg, rinfo) => {
  r.replies++; r.bytesReceived += msg.length; r.from[rinfo.address] = (r.from[rinfo.address] ?? 0) + 1; last = Date.now();
});
s.on('error', () => {});
s.bind(0, plan.local, async () => {
  s.setMulticastInterface(plan.local);
  s.setMulticastTTL(1);
  s.setRecvBufferSize(4 * 1024 * 1024);
  while (r.sent < plan.count && !stdinEnded && !(plan.stopAfterReplies > 0 && r.replies >= plan.stopAfterReplies)) {
    const sends = [];
    for (let k = 0; k < batch && r.sent < plan.count; k++, r.sent++) {
      const buf = payload(r.sent);
      r.bytesSent += buf.length;
      const to = plan.targets[r.sent % plan.targets.length];
      sends.push(new Promise((done) => s.send(buf, port, to, (err) => { if (err) r.errors++; done(); })));
    }
    await Promise.all(sends);
    if (plan.untilStdinEnd && (r.sent <= batch || r.sent % 1024 < batch)) console.log('sent ' + r.sent);
    await new Promise((done) => setTimeout(done, plan.intervalMs ?? 1));
  }
  last = Date.now();
  const check = setInterval(() => {
    if (Date.now() - last < quiet) return;
    clearInterval(check);
    console.log(JSON.stringify(r));
    s.close();
  }, 20);
});
`;

/** A sender running in the background until {@link Flood.stop}. */
export interface Flood {
  /** Resolves once the flood has sent at least `count` datagrams (it prints its progress). */
  sent(count: number): Promise<void>;
  /** Ends the flood and returns its report. */
  stop(): Promise<SendReport>;
}

/** Starts the sender with `untilStdinEnd`: it runs until stop() (or `count` datagrams). */
export function startFlood(host: LanHost, plan: SendPlan): Flood {
  const proc = host.spawn([process.execPath, '-e', SENDER, JSON.stringify({ ...plan, untilStdinEnd: true })]);
  return {
    async sent(count) {
      await proc.waitForLine((l) => l.startsWith('sent ') && Number(l.slice(5)) >= count, `the flood's first ${count} datagrams`, 30_000);
    },
    async stop() {
      proc.child.stdin?.end();
      const exit = await proc.exited;
      if (exit.code !== 0) throw new Error(`flood on ${host.name} failed (${JSON.stringify(exit)}): ${proc.lines('stderr').join('\n')}`);
      return JSON.parse(proc.lines('stdout').at(-1) ?? '') as SendReport;
    },
  };
}


/** What {@link probe} does: queries sent one at a time, each waiting for its first reply. */
export interface ProbePlan {
  readonly local: string;
  /** Each query: where it goes and its payload; they are sent in turn. */
  readonly queries: readonly { readonly to: string; readonly payload: string }[];
  readonly count: number;
  readonly port?: number;
  /** How long one query waits for its reply before it counts as unanswered (ms). */
  readonly waitMs: number;
  /** Pause after each answered query, ms (default 0). */
  readonly intervalMs?: number;
}

export interface ProbeReport {
  sent: number;
  answered: number;
}

const PROBER = `
const dgram = require('node:dgram');
const plan = JSON.parse(process.argv[1]);
const s = dgram.createSocket('udp4');
let pending;
s.on('message', () => { if (pending) { const p = pending; pending = undefined; p(true); } });
s.bind(0, plan.local, async () => {
  s.setMulticastInterface(plan.local);
  s.setMulticastTTL(1);
  let answered = 0;
  for (let k = 0; k < plan.count; k++) {
    const q = plan.queries[k % plan.queries.length];
    const ok = await new Promise((resolve) => {
      const timer = setTimeout(() => { pending = undefined; resolve(false); }, plan.waitMs);
      pending = (v) => { clearTimeout(timer); resolve(v); };
      s.send(Buffer.from(q.payload), plan.port ?? 1337, q.to);
    });
    if (ok) answered++;
    if (plan.intervalMs) await new Promise((done) => setTimeout(done, plan.intervalMs));
  }
  console.log(JSON.stringify({ sent: plan.count, answered }));
  s.close();
});
`;

/** Runs the prober on `host`: legitimate queries, one at a time, counting the answered ones. */
export async function probe(host: LanHost, plan: ProbePlan): Promise<ProbeReport> {
  const res = await host.run([process.execPath, '-e', PROBER, JSON.stringify(plan)], { timeoutMs: plan.count * (plan.waitMs + (plan.intervalMs ?? 0)) + 30_000 });
  if (res.code !== 0) throw new Error(`prober on ${host.name} failed (exit ${res.code}): ${res.stderr}`);
  return JSON.parse(res.stdout.trim().split('\n').at(-1) ?? '') as ProbeReport;
}

/** Runs the paced sender on `host` and returns its report. */
export async function sendDatagrams(host: LanHost, plan: SendPlan, timeoutMs = 60_000): Promise<SendReport> {
  const res = await host.run([process.execPath, '-e', SENDER, JSON.stringify(plan)], { timeoutMs });
  if (res.code !== 0) throw new Error(`sender on ${host.name} failed (exit ${res.code}): ${res.stderr}`);
  return JSON.parse(res.stdout.trim().split('\n').at(-1) ?? '') as SendReport;
}

const PORT_ZERO = `
import socket, struct, sys
src, dst, payload = sys.argv[1], sys.argv[2], sys.argv[3].encode()
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
s.bind((src, 0))
if dst.startswith('224.'):
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(src))
# UDP header: source port 0, destination 1337, length, checksum 0 (none, allowed in IPv4).
s.sendto(struct.pack('!HHHH', 0, 1337, 8 + len(payload), 0) + payload, (dst, 0))
`;

/** Sends one UDP datagram from source port 0 (raw socket, python3) from `src` to `dst`:1337. */
export async function sendFromPortZero(host: LanHost, src: string, dst: string, payload: string): Promise<void> {
  const res = await host.run(['python3', '-c', PORT_ZERO, src, dst, payload]);
  if (res.code !== 0) throw new Error(`raw send on ${host.name} failed (exit ${res.code}): ${res.stderr}`);
}

const STORM = `
const dgram = require('node:dgram');
const plan = JSON.parse(process.argv[1]);
const sockets = [];
let ready = 0;
for (const address of plan.addresses) {
  const s = dgram.createSocket('udp4');
  s.on('error', () => {});
  s.bind(0, address, () => { if (++ready === plan.addresses.length) listen(); });
  sockets.push(s);
}
const replies = plan.addresses.map((a, k) => Buffer.from(JSON.stringify({ Command: 'Polo', Params: { hostname: 'n' + k } })));
let bursts = 0;
function listen() {
  const g = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  g.on('message', (msg, rinfo) => {
    if (!msg.toString().includes('Marco')) return;
    bursts++;
    // Back to back, one socket per address: the stand-in for a real LAN answering at once.
    for (let k = 0; k < sockets.length; k++) sockets[k].send(replies[k], rinfo.port, rinfo.address);
    console.log('burst ' + bursts);
  });
  g.bind(1337, plan.group, () => {
    g.addMembership(plan.group, plan.iface);
    console.log('ready');
  });
}
process.stdin.on('data', () => {});
process.stdin.on('end', () => process.exit(0));
`;

/** A stand-in for a large grid: one host, many addresses, answering every Marco with a burst. */
export interface StormStandIn {
  /** Marco queries answered so far. */
  bursts(): number;
  stop(): Promise<void>;
}

/**
 * Starts the stand-in on `host`: it takes `addresses` (already on the host), listens on `group`
 * on `iface`, and answers each Marco query with one Polo reply from every address, back to back.
 */
export async function startStormStandIn(host: LanHost, plan: { addresses: readonly string[]; group: string; iface: string }): Promise<StormStandIn> {
  const proc = host.spawn([process.execPath, '-e', STORM, JSON.stringify(plan)]);
  await proc.waitForLine((l) => l === 'ready', 'the storm stand-in ready', 20_000);
  return {
    bursts: () => proc.lines('stdout').filter((l) => l.startsWith('burst ')).length,
    async stop() {
      proc.child.stdin?.end();
      await proc.exited;
    },
  };
}

/** What {@link groupReplies} does: one datagram to `to`:`port` from `local`, and its replies read. */
export interface AskPlan {
  readonly local: string;
  readonly to: string;
  /** The datagram, as latin1 text (a signed one keeps its bytes). */
  readonly payload: string;
  readonly port?: number;
  /** Replies awaited: the read ends once this many came and `windowMs` is over. */
  readonly expect: number;
  /** Read at least this long, ms (to see a reply more than expected; default 0). */
  readonly windowMs?: number;
  /** Read at most this long, ms (fewer replies than expected came). */
  readonly limitMs: number;
}

const ASKER = `
const dgram = require('node:dgram');
const plan = JSON.parse(process.argv[1]);
const s = dgram.createSocket('udp4');
const replies = [];
let windowOver = false;
const done = () => { s.close(); process.stdout.write(JSON.stringify(replies)); process.exit(0); };
s.on('message', (msg) => { replies.push(msg.toString('latin1')); if (windowOver && replies.length >= plan.expect) done(); });
s.bind(0, plan.local, () => {
  s.setMulticastInterface(plan.local);
  s.send(Buffer.from(plan.payload, 'latin1'), plan.port ?? 1337, plan.to);
});
setTimeout(() => { windowOver = true; if (replies.length >= plan.expect) done(); }, plan.windowMs ?? 0);
setTimeout(done, plan.limitMs);
`;

/** Runs the asker on `host`: the texts of the replies to one datagram, in arrival order. */
export async function groupReplies(host: LanHost, plan: AskPlan): Promise<string[]> {
  const res = await host.run([process.execPath, '-e', ASKER, JSON.stringify(plan)], { timeoutMs: plan.limitMs + 15_000 });
  if (res.code !== 0) throw new Error(`asker on ${host.name} failed (exit ${res.code}): ${res.stderr}`);
  return JSON.parse(res.stdout) as string[];
}
