/**
 * A private LAN made of Linux network namespaces, for integration tests and benchmarks: one
 * namespace holds a bridge, and each host namespace is wired to it by a veth pair. Nothing is
 * ever created in, or routed to, the host's own namespace, so no datagram can leave the machine:
 * host namespaces have no default route, only 10.201.<subnet>.0/24 and multicast on `eth0`.
 *
 * Naming: bridge namespace `mpA<name>-<run>br` with bridge `br0`; host i namespace
 * `mpA<name>-<run>h<i>` with `eth0`, whose peer in the bridge namespace is `h<i>` (interface names
 * stay within IFNAMSIZ = 15; namespace names have no such limit). `<run>` is this process's pid in
 * base 36, so two runs of the suite on one machine never share, sweep or delete each other's LANs.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { finishRun, registerCleanup, spawnProc, type Proc, type RunResult } from './proc.js';
import { waitFor } from './wait.js';

/** Every namespace this process created and has not deleted yet. */
const namespaces = new Set<string>();
/** Interface name inside every host namespace. */
const IFACE = 'eth0';
/** Tags every namespace this process creates: a concurrent run of the suite owns other names. */
const RUN_TAG = process.pid.toString(36);
/** Only namespaces with this prefix are ever created or deleted by the harness. */
const PREFIX = 'mpA';

/** A host of a {@link Lan}: one namespace with `eth0` on the LAN. */
export interface LanHost {
  /** `h<i>`, i from 1. */
  readonly name: string;
  readonly index: number;
  /** Namespace name, for `ip netns exec` / `ip -n`. */
  readonly ns: string;
  /** 10.201.<subnet>.<index> (not configured on a LAN made with `ipv4: false`). */
  readonly address: string;
  /** fd00:201:<subnet>::<index> (unique local), configured on a LAN made with `ipv6: true`. */
  readonly address6: string;
  /** Always `eth0`. */
  readonly iface: string;
  /** Starts `ip netns exec <ns> <argv...>`; the Proc's pid is argv[0]'s, killed on destroy. */
  spawn(argv: readonly string[], opts?: { env?: Record<string, string> }): Proc;
  /** Runs argv in the namespace to completion; SIGKILLed after timeoutMs (default 10 s). */
  run(argv: readonly string[], opts?: { timeoutMs?: number; input?: string; env?: Record<string, string> }): Promise<RunResult>;
}

/** A bridged LAN of namespaces, from {@link createLan}. */
export interface Lan {
  readonly name: string;
  readonly subnet: number;
  readonly bridgeNs: string;
  readonly hosts: readonly LanHost[];
  /** Every namespace of this LAN (hosts and bridge). */
  readonly namespaces: readonly string[];
  /** Host number `i` (1-based, like the address's last octet); throws if out of range. */
  host(i: number): LanHost;
  /** Adds an address (within 10.201.0.0/16, with prefix) to the host's eth0. */
  addAddress(host: LanHost, cidr: string): Promise<void>;
  /** Removes an address from the host's eth0. */
  delAddress(host: LanHost, cidr: string): Promise<void>;
  /** Sets the host's eth0 down (the kernel then drops its routes, multicast included). */
  setLinkDown(host: LanHost): Promise<void>;
  /** Sets the host's eth0 up again, restores the multicast route and waits for carrier. */
  setLinkUp(host: LanHost): Promise<void>;
  /** Kills every process spawned through this LAN, then deletes its namespaces. Idempotent. */
  destroy(): Promise<void>;
}

/** Options of {@link createLan}. */
export interface LanOptions {
  /** Short and unique per test file (letters and digits), e.g. 'lan1'. */
  name: string;
  /** Number of hosts, 1..250. */
  hosts: number;
  /** Third octet of the addresses: hosts get 10.201.<subnet>.<1..n>/24 (default 0). */
  subnet?: number;
  /** False: no IPv4 address nor multicast route on the hosts (an IPv6-only LAN; default true). */
  ipv4?: boolean;
  /**
   * True: hosts get fd00:201:<subnet>::<i>/64 too, and duplicate address detection is off in
   * their namespaces, so the link-local and unique-local addresses are usable at once. IPv6
   * addresses stay inside the namespaces (unique local and link-local are never routed out).
   */
  ipv6?: boolean;
}

/** Runs `ip <args>`; rejects with its stderr. */
export function ip(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`ip ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

function ipSync(args: readonly string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

let availability: { ok: true } | { ok: false; why: string } | undefined;

/**
 * Whether this machine can run namespace LANs: root, `ip` present, and a throwaway namespace
 * with a bridge and a veth pair can be made. Cached.
 */
export function netnsAvailable(): { ok: true } | { ok: false; why: string } {
  availability ??= probe();
  return availability;
}

function probe(): { ok: true } | { ok: false; why: string } {
  if (process.platform !== 'linux') return { ok: false, why: `platform is ${process.platform}, not linux` };
  if (process.getuid?.() !== 0) return { ok: false, why: 'not running as root' };
  try {
    ipSync(['-V']);
  } catch {
    return { ok: false, why: '`ip` (iproute2) not found' };
  }
  // A unique name, so concurrent test files probing at once do not collide.
  const ns = `${PREFIX}q${process.pid}`;
  try {
    ipSync(['netns', 'add', ns]);
    ipSync(['-n', ns, 'link', 'add', 'br0', 'type', 'bridge']);
    ipSync(['-n', ns, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1']);
    return { ok: true };
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    return { ok: false, why: `cannot create a namespace/bridge/veth: ${e.stderr?.trim() || e.message}` };
  } finally {
    try {
      ipSync(['netns', 'del', ns]);
    } catch {
      // It was never created.
    }
  }
}

/**
 * For node:test: returns true when namespaces work; otherwise skips the test with the reason
 * (caller then returns) — except under CI (CI set, not '' / '0' / 'false'), where a silently
 * skipped integration suite would hide breakage, so it throws instead.
 */
export function requireNetns(t: { skip(message?: string): void }): boolean {
  const r = netnsAvailable();
  if (r.ok) return true;
  const ci = process.env['CI'];
  if (ci !== undefined && !['', '0', 'false'].includes(ci.toLowerCase())) {
    throw new Error(`network namespaces are required under CI but unavailable: ${r.why}`);
  }
  t.skip(`needs network namespaces: ${r.why}`);
  return false;
}

function listNamespaces(): string[] {
  // Lines look like "mpAlan1h1 (id: 3)" or just "mpAlan1h1".
  return ipSync(['netns', 'list'])
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n !== '');
}

/** SIGKILLs every process inside `ns` (daemons' own children included), then deletes it. */
function deleteNamespaceSync(ns: string): void {
  if (!ns.startsWith(PREFIX)) throw new Error(`refusing to delete foreign namespace ${ns}`);
  try {
    for (const pid of ipSync(['netns', 'pids', ns]).split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  } catch {
    // Namespace already gone.
  }
  try {
    ipSync(['netns', 'del', ns]);
  } catch {
    // Already gone.
  }
  namespaces.delete(ns);
}

function sweepMatching(match: (ns: string) => boolean): string[] {
  const stale = listNamespaces().filter((ns) => match(ns) && !namespaces.has(ns));
  for (const ns of stale) deleteNamespaceSync(ns);
  return stale;
}

registerCleanup(() => {
  for (const ns of [...namespaces]) deleteNamespaceSync(ns);
});

/**
 * A namespace of this run beside its LANs (a router, …), named `mpA<name>-<run tag><suffix>`:
 * deleted with the run's namespaces at exit, or earlier by `destroy` (which kills what runs in it).
 */
export async function addNamespace(name: string, suffix: string): Promise<{ readonly ns: string; destroy(): void }> {
  if (!/^[A-Za-z0-9]+$/.test(name + suffix)) throw new Error(`namespace name ${name}${suffix} must be letters and digits`);
  const ns = `${PREFIX}${name}-${RUN_TAG}${suffix}`;
  namespaces.add(ns);
  await ip(['netns', 'add', ns]);
  return { ns, destroy: () => deleteNamespaceSync(ns) };
}

const IPV4_CIDR = /^10\.201\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;
const IPV6_CIDR = /^fd00:201:[0-9a-f:]*\/(\d{1,3})$/i;

/**
 * Keeps every address the harness configures inside the test's private ranges: 10.201.0.0/16,
 * and fd00:201::/32 (unique local, never routed).
 */
export function checkCidr(cidr: string): void {
  const v4 = IPV4_CIDR.exec(cidr);
  if (v4 && Number(v4[1]) <= 255 && Number(v4[2]) <= 255 && Number(v4[3]) >= 16 && Number(v4[3]) <= 32) return;
  const v6 = IPV6_CIDR.exec(cidr);
  if (v6 && Number(v6[1]) >= 48 && Number(v6[1]) <= 128) return;
  throw new Error(`address ${cidr} must be 10.201.x.y/<16..32> or fd00:201:…/<48..128>`);
}

/** Waits until `ns`'s `dev` reports state `wanted` in `ip -j link` (carrier, bridge forwarding). */
export function waitLink(ns: string, dev: string, wanted: (link: Record<string, unknown>) => boolean, what: string): Promise<unknown> {
  return waitFor(
    async () => {
      const [link] = JSON.parse(await ip(['-d', '-j', '-n', ns, 'link', 'show', dev])) as Record<string, unknown>[];
      return link !== undefined && wanted(link) ? true : undefined;
    },
    { what, timeoutMs: 5000, intervalMs: 10 },
  );
}

export const isUp = (l: Record<string, unknown>): boolean => l['operstate'] === 'UP';
export const isForwarding = (l: Record<string, unknown>): boolean =>
  (l['linkinfo'] as { info_slave_data?: { state?: string } } | undefined)?.info_slave_data?.state === 'forwarding';

/** Builds a LAN of `hosts` namespaces on one bridge; see the module comment for names. */
export async function createLan(opts: LanOptions): Promise<Lan> {
  const { name, hosts: count, subnet = 0, ipv4 = true, ipv6 = false } = opts;
  if (!/^[A-Za-z0-9]+$/.test(name)) throw new Error(`LAN name ${name} must be letters and digits`);
  if (!Number.isInteger(count) || count < 1 || count > 250) throw new Error(`hosts must be 1..250, got ${count}`);
  if (!Number.isInteger(subnet) || subnet < 0 || subnet > 255) throw new Error(`subnet must be 0..255, got ${subnet}`);
  const bridgeNs = `${PREFIX}${name}-${RUN_TAG}br`;
  const hostNs = (i: number): string => `${PREFIX}${name}-${RUN_TAG}h${i}`;

  // Only this LAN's exact names: a prefix match on 'lan1' would hit a concurrent 'lan10'.
  const mine = new RegExp(`^${PREFIX}${name}-${RUN_TAG}(br|h\\d+)$`);
  if ([...namespaces].some((ns) => mine.test(ns))) throw new Error(`LAN ${name} already exists in this process`);
  sweepMatching((ns) => mine.test(ns));

  const procs = new Set<Proc>();
  const created: string[] = [];
  const addNs = async (ns: string): Promise<void> => {
    // Registered before creation so a failure halfway still gets cleaned up.
    namespaces.add(ns);
    created.push(ns);
    await ip(['netns', 'add', ns]);
    await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  };

  let destroying: Promise<void> | undefined;
  const destroy = (): Promise<void> =>
    (destroying ??= (async () => {
      for (const p of procs) p.kill('SIGKILL');
      await Promise.all([...procs].map((p) => p.exited));
      // Hosts first: deleting their namespaces removes the veth pairs from the bridge.
      for (const ns of [...created].reverse()) deleteNamespaceSync(ns);
      if (rootHome !== undefined) rmSync(rootHome, { recursive: true, force: true });
    })());

  // Every program on the LAN sees a scratch folder of this LAN as root's home: a polod that
  // writes root's token (Request-token for uid 0, a stale token rewritten) never touches the
  // machine's own ~root/.polo.
  let rootHome: string | undefined;
  const makeHost = (i: number): LanHost => {
    const ns = hostNs(i);
    const spawn = (argv: readonly string[], o: { env?: Record<string, string> } = {}): Proc => {
      if (destroying) throw new Error(`LAN ${name} is destroyed`);
      rootHome ??= mkdtempSync(path.join(tmpdir(), `mp-${name}-root-`));
      const p = spawnProc(['ip', 'netns', 'exec', ns, ...pdeathsig(), ...withRootHome(rootHome), ...argv], o);
      procs.add(p);
      void p.exited.then(() => procs.delete(p));
      return p;
    };
    return {
      name: `h${i}`,
      index: i,
      ns,
      address: `10.201.${subnet}.${i}`,
      address6: `fd00:201:${subnet}::${i}`,
      iface: IFACE,
      spawn,
      run: (argv, o = {}) => finishRun(spawn(argv, o.env ? { env: o.env } : {}), o.timeoutMs ?? 10_000, o.input),
    };
  };
  const hostList = Array.from({ length: count }, (_, k) => makeHost(k + 1));

  try {
    await addNs(bridgeNs);
    // Snooping off: the bridge floods all multicast like a hub, so delivery never depends on
    // IGMP reports or querier timing (the default would prune non-link-local groups).
    await ip(['-n', bridgeNs, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0']);
    await ip(['-n', bridgeNs, 'link', 'set', 'br0', 'up']);
    // Namespaces are added one at a time: concurrent first-time `ip netns add` can race on
    // making /run/netns a shared mount.
    for (const h of hostList) await addNs(h.ns);
    // Before eth0 exists: a new device takes the namespace's defaults, DAD off included.
    if (ipv6) await Promise.all(hostList.map((h) => noDad(h.ns)));
    await Promise.all(hostList.map((h) => wireHost(h, bridgeNs, { ipv4, ipv6 })));
    await Promise.all(
      hostList.flatMap((h) => [
        waitLink(h.ns, IFACE, isUp, `${h.ns} eth0 up`),
        waitLink(bridgeNs, h.name, isForwarding, `bridge port ${h.name} forwarding`),
      ]),
    );
  } catch (err) {
    await destroy();
    throw err;
  }

  const lan: Lan = {
    name,
    subnet,
    bridgeNs,
    hosts: hostList,
    namespaces: created,
    host(i) {
      const h = hostList[i - 1];
      if (h === undefined) throw new Error(`LAN ${name} has no host ${i} (1..${count})`);
      return h;
    },
    async addAddress(h, cidr) {
      checkCidr(cidr);
      await ip(['-n', h.ns, 'addr', 'add', cidr, 'dev', IFACE]);
    },
    async delAddress(h, cidr) {
      checkCidr(cidr);
      await ip(['-n', h.ns, 'addr', 'del', cidr, 'dev', IFACE]);
    },
    async setLinkDown(h) {
      await ip(['-n', h.ns, 'link', 'set', IFACE, 'down']);
    },
    async setLinkUp(h) {
      await ip(['-n', h.ns, 'link', 'set', IFACE, 'up']);
      // Link down flushed the multicast route with the device's other routes.
      await ip(['-n', h.ns, 'route', 'replace', '224.0.0.0/4', 'dev', IFACE]);
      await waitLink(h.ns, IFACE, isUp, `${h.ns} eth0 up`);
    },
    destroy,
  };
  return lan;
}

/** Creates host h's veth pair straight into the two namespaces (never via the root one). */
async function wireHost(h: LanHost, bridgeNs: string, family: { ipv4: boolean; ipv6: boolean }): Promise<void> {
  await ip(['-n', h.ns, 'link', 'add', IFACE, 'type', 'veth', 'peer', 'name', h.name, 'netns', bridgeNs]);
  await ip(['-n', bridgeNs, 'link', 'set', h.name, 'master', 'br0']);
  await ip(['-n', bridgeNs, 'link', 'set', h.name, 'up']);
  if (family.ipv4) await ip(['-n', h.ns, 'addr', 'add', `${h.address}/24`, 'dev', IFACE]);
  if (family.ipv6) await ip(['-n', h.ns, 'addr', 'add', `${h.address6}/64`, 'dev', IFACE, 'nodad']);
  await ip(['-n', h.ns, 'link', 'set', IFACE, 'up']);
  if (family.ipv4) await ip(['-n', h.ns, 'route', 'add', '224.0.0.0/4', 'dev', IFACE]);
}

/** Turns IPv6 duplicate address detection off in `ns` (its own sysctls, nobody else's). */
async function noDad(ns: string): Promise<void> {
  const script = 'for k in all default; do echo 0 > /proc/sys/net/ipv6/conf/$k/accept_dad; done';
  await ip(['netns', 'exec', ns, 'sh', '-c', script]);
}

let pdeathsigArgs: string[] | undefined;

/**
 * The argv prefix that runs a program in a private mount namespace where `home` is mounted over
 * root's home. `unshare` and `sh` exec, so the pid stays the program's.
 */
function withRootHome(home: string): string[] {
  const script = 'mount --bind "$1" "$2" && shift 2 && exec "$@"';
  return ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', home, userInfo().homedir];
}

/**
 * `setpriv --pdeathsig KILL --` when available: the kernel then kills the program if this test
 * process dies without running its cleanups (SIGKILL, runner timeout). setpriv execs, so the
 * pid stays the program's, as with `ip netns exec` itself.
 */
function pdeathsig(): string[] {
  if (pdeathsigArgs === undefined) {
    try {
      execFileSync('setpriv', ['--pdeathsig', 'KILL', '--', 'true'], { stdio: 'ignore' });
      pdeathsigArgs = ['setpriv', '--pdeathsig', 'KILL', '--'];
    } catch {
      pdeathsigArgs = [];
    }
  }
  return pdeathsigArgs;
}
