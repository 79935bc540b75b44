/**
 * Helpers shared by the marcod integration tests; it holds no tests itself (the file name
 * follows this folder's naming rule). The built `marcod` runs as a process in one host of a
 * namespace LAN, bound to 127.0.1.1:1338 inside that namespace (127.0.0.0/8 is local on `lo`
 * there, so the address needs no setup), and raw local clients run in the same namespace.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LanFixture, LogRecord } from './lan-daemons.js';
import { logIs } from './lan-daemons.js';
import type { LanHost } from './netns.js';
import type { Proc } from './proc.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The compiled command (this file runs as dist/test/integration/marcod-fixture.test.js). */
export const MARCOD = path.resolve(here, '..', '..', 'src', 'cli', 'marcod.js');
/** The compiled client, for programs run inside a namespace. */
export const MARCOD_CLIENT = path.resolve(here, '..', '..', 'src', 'client', 'marcodClient.js');

/** A running marcod. */
export interface MarcodProc {
  readonly host: LanHost;
  readonly proc: Proc;
  logs(match: (r: LogRecord) => boolean): LogRecord[];
  alive(): boolean;
}

/** Options of {@link startMarcod}. */
export interface MarcodOptions {
  /** Text of a marco.cfg passed with `--config` (default: a file with the reference's values). */
  config?: string;
  /** Extra arguments (`--log-level debug` is always given). */
  args?: readonly string[];
  /** False: no `--interface <host address>` (marcod then asks out of every interface). Default true. */
  interface?: boolean;
}

/** The reference's marco.cfg, as installed. */
export const REFERENCE_MARCO_CFG = `[marco]
marcoport = 1338
binding_iface = 127.0.1.1
multicast_addr = 224.0.0.112
poloport = 1337
timeout = 1000.0
frame_size = 4096
debug = True
`;

/** Starts the built marcod on `host`, queries leaving from the host's LAN address; resolves once it listens. */
export async function startMarcod(fixture: LanFixture, host: LanHost, opts: MarcodOptions = {}): Promise<MarcodProc> {
  const cfg = path.join(await fixture.tmpDir(), 'marco.cfg');
  await writeFile(cfg, opts.config ?? REFERENCE_MARCO_CFG);
  const proc = host.spawn([
    process.execPath,
    MARCOD,
    '--config',
    cfg,
    ...(opts.interface === false ? [] : ['--interface', host.address]),
    '--log-level',
    'debug',
    ...(opts.args ?? []),
  ]);
  await proc.waitForJsonLog(logIs('marcod started'), `'marcod started' (marcod on ${host.name})`);
  return {
    host,
    proc,
    logs: (match) => proc.jsonLogs().filter(match),
    alive: () => proc.child.exitCode === null && proc.child.signalCode === null,
  };
}

/** One raw request for {@link rawRequests}: text sent as UTF-8, or bytes given in base64. */
export type RawRequest = { text: string } | { base64: string };

/** What one raw request got back. */
export interface RawOutcome {
  /** The first reply, parsed as JSON (or its text when it is not JSON); null when none came. */
  reply: unknown;
  /** Datagrams that came back after the first one and before the barrier's reply (must be 0; 0 without barrier). */
  extra: number;
}

/**
 * The raw client, run in a namespace with `node -e`: reads a JSON list of RawRequests on stdin,
 * sends each from its own socket at once, waits for its first reply (up to argv[3] ms), then
 * sends a barrier request on the same socket (an invalid timeout, whose error reply quotes
 * "barrier") and counts every other datagram before the barrier's reply: marcod answers in
 * order on one socket, so a second reply to the first request would be counted. Prints one
 * JSON list of RawOutcomes. Without the barrier (argv[4] not "barrier"), it stops at the first
 * reply: for a marcod that is busy or stopping, which would not answer the barrier.
 */
const RAW_CLIENT = `
const dgram = require('node:dgram');
const [address, port, waitMs, barrier] = process.argv.slice(1);
const BARRIER = Buffer.from('{"Command":"Marco","timeout":"barrier"}');
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (c) => { input += c; });
process.stdin.on('end', async () => {
  const requests = JSON.parse(input);
  const outcomes = await Promise.all(requests.map(exchange));
  process.stdout.write(JSON.stringify(outcomes) + '\\n');
});
function parse(buf) {
  const text = buf.toString('utf8');
  try { return JSON.parse(text); } catch { return text; }
}
function exchange(request) {
  const payload = request.base64 !== undefined ? Buffer.from(request.base64, 'base64') : Buffer.from(request.text, 'utf8');
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const outcome = { reply: null, extra: 0 };
    let phase = 'reply';
    const done = () => { clearTimeout(timer); s.close(); resolve(outcome); };
    const timer = setTimeout(done, Number(waitMs));
    s.on('message', (msg) => {
      const value = parse(msg);
      if (phase === 'reply') {
        outcome.reply = value;
        if (barrier !== 'barrier') return done();
        phase = 'barrier';
        s.send(BARRIER, Number(port), address);
      } else if (value && typeof value.Error === 'string' && value.Error.includes('"barrier"')) {
        done();
      } else {
        outcome.extra++;
      }
    });
    s.bind(0, () => s.send(payload, Number(port), address));
  });
}
`;

/**
 * Sends `requests` at once, each from its own socket, to marcod at `address:port` inside
 * `host`'s namespace, and returns what each got back (in request order). `prefix` runs the
 * client through another command (setpriv: as another user).
 */
export async function rawRequests(
  host: LanHost,
  requests: readonly RawRequest[],
  opts: { address?: string; port?: number; waitMs?: number; barrier?: boolean; prefix?: readonly string[] } = {},
): Promise<RawOutcome[]> {
  const waitMs = opts.waitMs ?? 15_000;
  const barrier = opts.barrier === false ? 'none' : 'barrier';
  const res = await host.run(
    [...(opts.prefix ?? []), process.execPath, '-e', RAW_CLIENT, opts.address ?? '127.0.1.1', String(opts.port ?? 1338), String(waitMs), barrier],
    { input: JSON.stringify(requests), timeoutMs: waitMs + 10_000 },
  );
  if (res.code !== 0) throw new Error(`raw client failed (code ${res.code}): ${res.stderr}`);
  return JSON.parse(res.stdout) as RawOutcome[];
}

/** A request object as raw text (JSON.stringify: compact, like the C++ and Java bindings). */
export const json = (value: unknown): RawRequest => ({ text: JSON.stringify(value) });

/** Node entries of a reply, sorted by address. */
export function sortedNodes(reply: unknown): Array<{ Address: string; Params: unknown }> {
  if (!Array.isArray(reply)) throw new Error(`expected a node list, got ${JSON.stringify(reply)}`);
  return [...(reply as Array<{ Address: string; Params: unknown }>)].sort((a, b) => a.Address.localeCompare(b.Address, 'en', { numeric: true }));
}
