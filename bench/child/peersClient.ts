/**
 * The client side of the peers benchmark, run as one long-lived process inside the client's
 * namespace and driven round by round over stdin, so that the parent can read every host's UDP
 * counters just before and just after each discovery, and no `ip netns exec` start-up sits
 * inside a timed interval.
 *
 * Each stdin line is a {@link PeersCommand}; each is answered by one stdout line, a
 * {@link PeersReply} with the same `seq`. Every discovery starts cold: MarcoPolo's `Marco`
 * keeps no socket nor cache between calls, and each mDNS browse is a new bonjour-service
 * instance (new socket, empty cache), destroyed at its end.
 *
 * Usage: node peersClient.js '<PeersClientConfig as JSON>'
 */
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import Bonjour from 'bonjour-service';
import multicastDns, { type MdnsRecord } from 'multicast-dns';

/** What the client is told once, at start. */
export interface PeersClientConfig {
  /** This host's address: MarcoPolo queries leave from it. */
  readonly iface: string;
  readonly group: string;
  readonly port: number;
  /** The service every responder offers: a MarcoPolo service id, and the mDNS type `_<id>._tcp`. */
  readonly service: string;
  /** The port every responder gives for it (an mDNS provider counts once its SRV says so). */
  readonly servicePort: number;
  /** Responders on the LAN. */
  readonly providers: number;
  /** MarcoPolo's query deadline, ms (marco's default: 1000). */
  readonly timeoutMs: number;
  /** How long an mDNS browse may take to find every provider before it counts as failed. */
  readonly browseTimeoutMs: number;
  /** The discovery module exporting `Marco` (dist/src/discovery/index.js). */
  readonly discoveryModule: string;
}

/**
 * One discovery to run:
 * - `mp-first`: Request-For with maxNodes 1, the first provider;
 * - `mp-all`: Request-For with no maxNodes, streamed: each provider's arrival, and when the call
 *   itself ends (a Request-For has no Members hint, so at its deadline);
 * - `mp-count`: Request-For with maxNodes = providers (ends on the last one: the short window in
 *   which the parent counts datagrams);
 * - `mp-nodes`: a Marco query with no maxNodes, which ends on the Members hint (§8.4);
 * - `mdns`: a bonjour-service browse of `_<service>._tcp`, ended at the last provider;
 * - `mdns-raw`: the same question as one bare multicast-dns PTR query, answers read by hand;
 * - `*-ready`: repeat that system's discovery until one finds every provider (start-up settled).
 */
export interface PeersCommand {
  readonly seq: number;
  readonly op: 'mp-first' | 'mp-all' | 'mp-count' | 'mp-nodes' | 'mdns' | 'mdns-raw' | 'mp-ready' | 'mdns-ready' | 'quit';
  /** For the `*-ready` ops: give up after this long, ms. */
  readonly readyTimeoutMs?: number;
}

/** The outcome of one command; times in ms from the start of the discovery call. */
export interface PeersReply {
  readonly seq: number;
  /** Distinct providers (or nodes, for `mp-nodes`) found with a usable address and port. */
  readonly found: number;
  /** The first usable provider. */
  readonly first?: number;
  /** The providers-th usable provider. */
  readonly all?: number;
  /** When the call returned by itself (MarcoPolo only: an mDNS browse never ends by itself). */
  readonly end?: number;
  /** mDNS: services announced without an IPv4 address or with another port (not counted). */
  readonly unusable?: number;
  /** The command failed: why. */
  readonly error?: string;
}

/** What the benchmark needs of the Marco client (src/discovery/marco.ts). */
interface MarcoClient {
  requestFor(service: string, options: QueryOptions): Promise<unknown[]>;
  requestForStream(service: string, options: QueryOptions): AsyncIterable<{ address: string }>;
  marco(options: QueryOptions): Promise<unknown[]>;
}
interface QueryOptions {
  group: string;
  port: number;
  timeout: number;
  interface: string;
  maxNodes?: number;
}

type Reply = Omit<PeersReply, 'seq'>;

const config = JSON.parse(process.argv[2] ?? '{}') as PeersClientConfig;

async function loadMarco(): Promise<MarcoClient> {
  // Loaded at run time, as latencyClient does: a bench must not pin the client API at build time.
  const mod = (await import(pathToFileURL(config.discoveryModule).href)) as { Marco?: new () => MarcoClient };
  if (typeof mod.Marco !== 'function') throw new Error(`${config.discoveryModule} exports no Marco class`);
  return new mod.Marco();
}

function options(maxNodes?: number): QueryOptions {
  return { group: config.group, port: config.port, timeout: config.timeoutMs, interface: config.iface, ...(maxNodes !== undefined && { maxNodes }) };
}

async function mpFirst(marco: MarcoClient): Promise<Reply> {
  const t0 = performance.now();
  const found = await marco.requestFor(config.service, options(1));
  const ms = performance.now() - t0;
  return found.length > 0 ? { found: found.length, first: ms } : { found: 0 };
}

async function mpAll(marco: MarcoClient): Promise<Reply> {
  const t0 = performance.now();
  const seen = new Set<string>();
  let first: number | undefined;
  let all: number | undefined;
  for await (const node of marco.requestForStream(config.service, options())) {
    const at = performance.now() - t0;
    seen.add(node.address);
    first ??= at;
    if (all === undefined && seen.size >= config.providers) all = at;
  }
  const end = performance.now() - t0;
  return { found: seen.size, ...(first !== undefined && { first }), ...(all !== undefined && { all }), end };
}

async function mpCount(marco: MarcoClient): Promise<Reply> {
  const t0 = performance.now();
  const found = await marco.requestFor(config.service, options(config.providers));
  const ms = performance.now() - t0;
  return { found: found.length, ...(found.length >= config.providers && { all: ms }) };
}

async function mpNodes(marco: MarcoClient): Promise<Reply> {
  const t0 = performance.now();
  const found = await marco.marco(options());
  const end = performance.now() - t0;
  return { found: found.length, end };
}

/** What an mDNS discovery found: its usable and unusable providers, when the first and the last came, why it failed. */
function browseReply(found: number, unusable: number, first: number | undefined, all: number | undefined, error: string | undefined): Reply {
  return { found, unusable, ...(first !== undefined && { first }), ...(all !== undefined && { all }), ...(error !== undefined && { error }) };
}

/**
 * One cold browse: a new bonjour-service instance (its own socket on 5353, an empty cache) asks
 * for `_<service>._tcp` once, as its browser does; a provider counts when it is up with an IPv4
 * address and the expected port, i.e. usable. Ends at the last provider or at the timeout.
 */
function mdnsBrowse(): Promise<Reply> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const bonjour = new Bonjour({}, (err: unknown) => finish(err instanceof Error ? err.message : String(err)));
    const usable = new Set<string>();
    let unusable = 0;
    let first: number | undefined;
    let all: number | undefined;
    let done = false;
    // Filled in below: the error callback may fire before find() returns.
    const browsing: { stop?: () => void } = {};
    const finish = (error?: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      browsing.stop?.();
      const reply = browseReply(usable.size, unusable, first, all, error);
      bonjour.destroy(() => resolve(reply));
    };
    const timer = setTimeout(() => finish(), config.browseTimeoutMs);
    const browser = bonjour.find({ type: config.service, protocol: 'tcp' }, (service) => {
      const at = performance.now() - t0;
      const v4 = (service.addresses ?? []).some((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a));
      if (!v4 || service.port !== config.servicePort) {
        unusable++;
        return;
      }
      usable.add(service.name);
      first ??= at;
      if (usable.size >= config.providers) {
        all = at;
        finish();
      }
    });
    browsing.stop = () => browser.stop();
  });
}

const sameName = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();

/**
 * The provider an answer packet names for `instance`, when it is usable: its SRV (port) and the
 * A record of the SRV's target, both in the packet (responders send them as additionals).
 */
function usableIn(records: readonly MdnsRecord[], instance: string): boolean {
  const srv = records.find((r) => r.type === 'SRV' && sameName(r.name, instance))?.data as { port?: number; target?: string } | undefined;
  const target = srv?.target;
  if (srv?.port !== config.servicePort || target === undefined) return false;
  return records.some((r) => r.type === 'A' && sameName(r.name, target) && typeof r.data === 'string');
}

/**
 * One cold raw query: a new multicast-dns socket (the one under bonjour-service) sends one PTR
 * question for `_<service>._tcp.local`, and each answer is read by hand — no browser, no service
 * objects, no events: the least client code an mDNS discovery can run in Node.js.
 */
function mdnsRaw(): Promise<Reply> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const type = `_${config.service}._tcp.local`;
    const mdns = multicastDns({ interface: config.iface, bind: '0.0.0.0' });
    const usable = new Set<string>();
    const unusable = new Set<string>();
    let first: number | undefined;
    let all: number | undefined;
    let done = false;
    const finish = (error?: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const reply = browseReply(usable.size, unusable.size, first, all, error);
      mdns.destroy(() => resolve(reply));
    };
    const timer = setTimeout(() => finish(), config.browseTimeoutMs);
    mdns.on('error', (err) => finish(err.message));
    mdns.on('response', (packet) => {
      const at = performance.now() - t0;
      const records = [...packet.answers, ...packet.additionals];
      for (const ptr of records) {
        if (ptr.type !== 'PTR' || !sameName(ptr.name, type) || typeof ptr.data !== 'string') continue;
        const instance = ptr.data.toLowerCase();
        if (usable.has(instance)) continue;
        if (!usableIn(records, instance)) {
          unusable.add(instance);
          continue;
        }
        unusable.delete(instance);
        usable.add(instance);
        first ??= at;
        if (usable.size >= config.providers) {
          all = at;
          finish();
          return;
        }
      }
    });
    mdns.query(type, 'PTR');
  });
}

/** Repeats `discover` until one finds every provider; after `timeoutMs`, its last reply with an error. */
async function untilAll(discover: () => Promise<Reply>, timeoutMs: number): Promise<Reply> {
  const deadline = performance.now() + timeoutMs;
  let last: Reply = { found: 0 };
  while (performance.now() < deadline) {
    last = await discover();
    if (last.found >= config.providers) return last;
  }
  return { ...last, error: `only ${last.found} of ${config.providers} providers found within ${timeoutMs} ms` };
}

async function run(marco: MarcoClient, cmd: PeersCommand): Promise<Reply> {
  const readyMs = cmd.readyTimeoutMs ?? 15_000;
  switch (cmd.op) {
    case 'mp-first':
      return mpFirst(marco);
    case 'mp-all':
      return mpAll(marco);
    case 'mp-count':
      return mpCount(marco);
    case 'mp-nodes':
      return mpNodes(marco);
    case 'mdns':
      return mdnsBrowse();
    case 'mdns-raw':
      return mdnsRaw();
    case 'mp-ready':
      return untilAll(() => mpCount(marco), readyMs);
    case 'mdns-ready':
      return untilAll(mdnsBrowse, readyMs);
    case 'quit':
      return { found: 0 };
  }
}

async function main(): Promise<void> {
  const marco = await loadMarco();
  console.log(JSON.stringify({ ready: true }));
  // One command at a time: the parent waits for each reply before sending the next.
  for await (const line of createInterface({ input: process.stdin })) {
    if (line.trim() === '') continue;
    const cmd = JSON.parse(line) as PeersCommand;
    let reply: Reply;
    try {
      reply = await run(marco, cmd);
    } catch (err) {
      reply = { found: 0, error: err instanceof Error ? err.message : String(err) };
    }
    console.log(JSON.stringify({ seq: cmd.seq, ...reply }));
    if (cmd.op === 'quit') break;
  }
  process.exit(0);
}

main().catch((err: unknown) => {
  console.error(`peersClient: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
