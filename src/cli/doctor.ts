/**
 * `marco doctor`: checks, on this host, what makes discovery fail on a real machine, and says how
 * to fix each problem. Read-only: it reads /sys, /proc and the firewall rules, sends discovery
 * queries and asks polod's publish API for its list, and changes nothing.
 *
 * Loaded by src/cli/marco.ts only when asked for, so `marco`'s queries do not pay for it.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_POLOD_SOCKET, DEFAULT_TLS_PORT, polodSocketPath } from '../client/polodEndpoint.js';
import { Marco } from '../discovery/marco.js';
import { DEFAULT_GROUPS, POLO_PORT } from '../protocol/limits.js';
import { commandHelp, parseCommand, type CommandSpec } from './args.js';
import {
  ExitCode,
  oneLine,
  parseIPv4,
  parseMulticastGroup,
  parseNonNegativeInt,
  parsePort,
  terminalSafe,
  type CliIo,
} from './common.js';
import { tcpConnects } from '../health/probe.js';
import { ipv4ToNumber } from '../util/ipv4.js';
import { currentUserTokenFile } from '../auth/tokenFile.js';

/** The outcome of one check. `skip`: it could not be made here (a tool missing, no permission). */
export interface Finding {
  readonly check: string;
  readonly status: 'ok' | 'warn' | 'fail' | 'skip';
  readonly message: string;
  /** What to do about it (fail and warn). */
  readonly fix?: string;
}

interface Flags {
  group?: string[];
  port?: number;
  interface?: string;
  stateDir?: string;
  socket?: string;
  tlsPort?: number;
  tokenFile?: string;
  timeout?: number;
  json?: boolean;
}

const SPEC: CommandSpec = {
  name: 'doctor',
  description:
    'Check what makes discovery fail on this host: interfaces up with MULTICAST, a route for 224.0.0.0/4, ' +
    "the groups joined, firewall rules dropping polod's port, polod and marcod running and answering, " +
    "polod's publish API, and this user's token file. Changes nothing.",
  args: [],
  flags: [
    {
      name: 'group',
      value: '<addr>',
      description: `a group polod should serve (repeatable; default ${DEFAULT_GROUPS.join(' and ')})`,
      parse: parseMulticastGroup,
      repeatable: true,
    },
    { name: 'port', value: '<n>', description: `polod's port (default ${POLO_PORT})`, parse: parsePort },
    { name: 'interface', value: '<addr>', description: 'the local IPv4 address discovery should use', parse: parseIPv4 },
    { name: 'state-dir', value: '<dir>', description: "polod's --state-dir: its socket is <dir>/polod.sock" },
    { name: 'socket', value: '<path>', description: `polod's Unix socket (default ${DEFAULT_POLOD_SOCKET})` },
    { name: 'tls-port', value: '<n>', description: `polod's TLS publish port on 127.0.0.1 (default ${DEFAULT_TLS_PORT})`, parse: parsePort },
    { name: 'token-file', value: '<file>', description: "the token file to check (default ~/.polo/token of this user)" },
    { name: 'timeout', value: '<ms>', description: 'how long each daemon may take to answer (default 1000)', parse: parseNonNegativeInt },
    { name: 'json', description: 'print a JSON array of {check, status, message, fix}' },
  ],
};

const EPILOGUE = `
Each line is one check: ok, warn, FAIL (with "fix:" saying what to do) or skip (it could not be
made here, e.g. no iptables/nft, or not root).

Exit codes:
  0  no check failed (warnings allowed)
  1  at least one check failed
  2  usage error or invalid value
  3  runtime error`;

/** Runs `marco doctor` with the arguments after `doctor`. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  let flags: Flags;
  try {
    const parsed = parseCommand(SPEC, argv);
    if (parsed.help) {
      io.stdout.write(commandHelp('marco', SPEC, EPILOGUE));
      return ExitCode.OK;
    }
    flags = parsed.flags as Flags;
  } catch (err) {
    io.stderr.write(
      `marco: ${oneLine(err instanceof Error ? err.message : String(err))}\nUsage: marco doctor [options]\n` +
        "Run 'marco doctor --help' for the options and exit codes.\n",
    );
    return ExitCode.USAGE;
  }
  const findings = await diagnose(flags);
  if (flags.json === true) io.stdout.write(`${JSON.stringify(findings)}\n`);
  else io.stdout.write(formatFindings(findings));
  return findings.some((f) => f.status === 'fail') ? ExitCode.NOT_FOUND : ExitCode.OK;
}

/** The findings as aligned text lines, fixes indented under their check. */
export function formatFindings(findings: readonly Finding[]): string {
  const width = Math.max(...findings.map((f) => f.check.length));
  return findings
    .map((f) => {
      const status = f.status === 'fail' ? 'FAIL' : f.status;
      const head = `${status.padEnd(5)} ${f.check.padEnd(width)}  ${terminalSafe(f.message)}\n`;
      return f.fix === undefined ? head : `${head}${' '.repeat(width + 8)}fix: ${terminalSafe(f.fix)}\n`;
    })
    .join('');
}

/** Every check, in the order a person would look. */
async function diagnose(flags: Flags): Promise<Finding[]> {
  const groups = flags.group ?? [...DEFAULT_GROUPS];
  const port = flags.port ?? POLO_PORT;
  const timeout = flags.timeout ?? 1000;
  const polodPids = processes(['polod', 'polod.js']);
  const marcodPids = processes(['marcod', 'marcod.js']);
  return [
    ...interfaces(flags.interface),
    route(groups),
    ...(await firewall(port)),
    ...joined(groups, polodPids.length > 0),
    await polod(polodPids, groups, port, flags.interface, timeout),
    await marcod(marcodPids, timeout),
    ...(await publishApi(flags, polodPids.length > 0, timeout)),
    tokenFile(flags.tokenFile),
  ];
}

// ---- Interfaces

/** IFF_UP and IFF_MULTICAST of <linux/if.h>, as /sys/class/net/<if>/flags shows them. */
const IFF_UP = 0x1;
const IFF_LOOPBACK = 0x8;
const IFF_MULTICAST = 0x1000;

function interfaces(wanted: string | undefined): Finding[] {
  const check = 'interfaces';
  const rows = Object.entries(os.networkInterfaces()).flatMap(([name, list]) =>
    (list ?? []).filter((a) => a.family === 'IPv4').map((a) => ({ name, address: a.address, flags: linkFlags(name) })),
  );
  const candidates = rows.filter((r) => (wanted === undefined ? (r.flags & IFF_LOOPBACK) === 0 : r.address === wanted));
  if (candidates.length === 0) {
    return wanted === undefined
      ? [{ check, status: 'fail', message: 'no IPv4 address on any interface but loopback', fix: 'connect this host to the LAN (give an interface an IPv4 address)' }]
      : [{ check, status: 'fail', message: `${wanted} is not an address of this host`, fix: 'give --interface one of this host\'s addresses (ip -4 addr)' }];
  }
  const findings: Finding[] = [];
  for (const r of candidates) {
    const what = `${r.name} ${r.address}`;
    if ((r.flags & IFF_UP) === 0) {
      findings.push({ check, status: 'fail', message: `${what} is down`, fix: `ip link set dev ${r.name} up` });
    } else if ((r.flags & IFF_MULTICAST) === 0) {
      findings.push({
        check,
        status: 'fail',
        message: `${what} is up but has no MULTICAST flag: it can neither send queries to a group nor join one`,
        fix: `ip link set dev ${r.name} multicast on`,
      });
    } else findings.push({ check, status: 'ok', message: `${what} is up with MULTICAST` });
  }
  // One usable interface is enough when none was named: the others only warn.
  if (wanted === undefined && findings.some((f) => f.status === 'ok')) {
    return findings.map((f) => (f.status === 'fail' ? { ...f, status: 'warn' as const } : f));
  }
  return findings;
}

function linkFlags(name: string): number {
  try {
    return Number.parseInt(readFileSync(`/sys/class/net/${name}/flags`, 'utf8').trim(), 16);
  } catch {
    return IFF_UP | IFF_MULTICAST;
  }
}

// ---- Route

/** A route for the groups: one whose destination/mask covers them, or a default route. */
function route(groups: readonly string[]): Finding {
  const check = 'route';
  let rows: Array<{ iface: string; dest: number; mask: number }>;
  try {
    rows = readFileSync('/proc/net/route', 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => line.trim().split(/\s+/))
      .map((f) => ({ iface: f[0] ?? '', dest: hexAddress(f[1] ?? ''), mask: hexAddress(f[7] ?? '') }));
  } catch {
    return { check, status: 'skip', message: '/proc/net/route is not readable' };
  }
  const missing = groups.filter((g) => !rows.some((r) => (((ipv4ToNumber(g) ?? 0) & r.mask) >>> 0) === r.dest));
  if (missing.length === 0) {
    const covering = rows.find((r) => (((ipv4ToNumber(groups[0] ?? '224.0.0.112') ?? 0) & r.mask) >>> 0) === r.dest);
    const how = covering?.mask === 0 ? 'the default route' : 'a multicast route';
    return { check, status: 'ok', message: `${groups.join(', ')} reachable through ${how} (${covering?.iface ?? '?'})` };
  }
  const iface = rows.find((r) => r.iface !== 'lo')?.iface ?? 'eth0';
  return {
    check,
    status: 'fail',
    message: `no route for ${missing.join(', ')} (224.0.0.0/4) and no default route: a query without --interface fails with "network unreachable"`,
    fix: `ip route add 224.0.0.0/4 dev ${iface}   (or give marco, marcod and polod --interface)`,
  };
}

/** /proc/net's little-endian hex IPv4 address as a number (host order of the dotted quad). */
function hexAddress(hex: string): number {
  const n = Number.parseInt(hex, 16);
  if (!Number.isFinite(n)) return 0;
  return (((n & 0xff) << 24) | (((n >>> 8) & 0xff) << 16) | (((n >>> 16) & 0xff) << 8) | ((n >>> 24) & 0xff)) >>> 0;
}


function dotted(n: number): string {
  return [24, 16, 8, 0].map((shift) => (n >>> shift) & 0xff).join('.');
}

// ---- Groups joined

function joined(groups: readonly string[], polodRunning: boolean): Finding[] {
  const check = 'groups';
  let text: string;
  try {
    text = readFileSync('/proc/net/igmp', 'utf8');
  } catch {
    return [{ check, status: 'skip', message: '/proc/net/igmp is not readable' }];
  }
  const memberships = new Map<string, string[]>();
  let device = '';
  for (const line of text.split('\n').slice(1)) {
    const head = /^\d+\s+(\S+)\s*:/.exec(line);
    if (head?.[1] !== undefined) {
      device = head[1];
      continue;
    }
    const group = /^\s+([0-9A-Fa-f]{8})\s/.exec(line)?.[1];
    if (group === undefined) continue;
    const address = dotted(hexAddress(group));
    memberships.set(address, [...(memberships.get(address) ?? []), device]);
  }
  return groups.map((g): Finding => {
    const devices = memberships.get(g);
    if (devices !== undefined) return { check, status: 'ok', message: `${g} joined on ${devices.join(', ')}` };
    if (!polodRunning) return { check, status: 'skip', message: `${g} not joined (polod is not running here)` };
    return {
      check,
      status: 'fail',
      message: `polod runs but ${g} is joined on no interface: queries to it go unanswered`,
      fix: "look for 'could not join the group' in polod's log; give polod --interface ADDR (and --group if it serves others)",
    };
  });
}

// ---- Firewall

async function firewall(port: number): Promise<Finding[]> {
  const check = 'firewall';
  const nft = await run('nft', ['list', 'ruleset']);
  const ipt = await run('iptables-save', []);
  const findings: Finding[] = [];
  if (nft.ok) findings.push(...nftFindings(nft.stdout, port));
  if (ipt.ok) findings.push(...iptablesFindings(ipt.stdout, port));
  if (findings.length > 0) return findings;
  const read = [nft, ipt].filter((r) => r.ok).map((r) => r.tool);
  if (read.length > 0) return [{ check, status: 'ok', message: `no rule of ${read.join(' or ')} drops UDP ${port}` }];
  const why = [nft, ipt].map((r) => `${r.tool}: ${r.why}`).join('; ');
  return [{ check, status: 'skip', message: `firewall rules not readable (${why})` }];
}

/** Rules mentioning the port and dropping or rejecting: `udp dport 1337 drop`, `dport { 53, 1337 } reject`. */
function nftFindings(ruleset: string, port: number): Finding[] {
  const findings: Finding[] = [];
  const accepts = ruleset.split('\n').some((l) => /\budp\b/.test(l) && mentionsPort(l, port) && /\baccept\b/.test(l));
  let chain = '';
  for (const raw of ruleset.split('\n')) {
    const line = raw.trim();
    const c = /^chain (\S+)/.exec(line);
    if (c?.[1] !== undefined) chain = c[1];
    if (/\budp\b/.test(line) && mentionsPort(line, port) && /\b(drop|reject)\b/.test(line)) {
      findings.push({
        check: 'firewall',
        status: 'fail',
        message: `nft chain ${chain}: "${line}" drops MarcoPolo's UDP ${port}`,
        fix: `nft -a list chain ... ${chain} to find its handle, then nft delete rule ... handle N (or accept UDP ${port} before it)`,
      });
    }
    if (/hook input/.test(line) && /policy drop/.test(line) && !accepts) {
      findings.push({
        check: 'firewall',
        status: 'warn',
        message: `nft chain ${chain} drops what it does not accept, and no rule accepts UDP ${port}`,
        fix: `nft add rule <family> <table> ${chain} udp dport ${port} accept`,
      });
    }
  }
  return findings;
}

function iptablesFindings(rules: string, port: number): Finding[] {
  const findings: Finding[] = [];
  const accepts = rules.split('\n').some((l) => / -p udp /.test(l) && mentionsPort(l, port) && /-j ACCEPT/.test(l));
  for (const line of rules.split('\n')) {
    if (/ -p udp /.test(line) && mentionsPort(line, port) && /-j (DROP|REJECT)/.test(line)) {
      findings.push({
        check: 'firewall',
        status: 'fail',
        message: `iptables: "${line.trim()}" drops MarcoPolo's UDP ${port}`,
        fix: `iptables ${line.trim().replace(/^-A /, '-D ')}`,
      });
    }
    if (/^:INPUT DROP/.test(line) && !accepts) {
      findings.push({
        check: 'firewall',
        status: 'warn',
        message: `iptables INPUT policy is DROP and no rule accepts UDP ${port}`,
        fix: `iptables -I INPUT -p udp --dport ${port} -j ACCEPT`,
      });
    }
  }
  return findings;
}

function mentionsPort(line: string, port: number): boolean {
  return new RegExp(`(dport|--dport|--dports)\\s+(\\{[^}]*\\b${port}\\b[^}]*\\}|([\\d,:]*,)?${port}(\\b|,))`).test(line);
}

// ---- Daemons

/**
 * Pids of processes whose command is one of `names` (node running a script of that name too),
 * in this network namespace only: a daemon in a container or another namespace does not serve
 * this host's network.
 */
function processes(names: readonly string[]): number[] {
  const pids: number[] = [];
  let entries: string[];
  let ownNet: string;
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
    ownNet = readlinkSync('/proc/self/ns/net');
  } catch {
    return [];
  }
  for (const entry of entries) {
    try {
      if (readlinkSync(`/proc/${entry}/ns/net`) !== ownNet) continue;
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      const script = path.basename(argv[0] ?? '') === 'node' ? argv[1] : argv[0];
      if (script !== undefined && names.includes(path.basename(script))) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

async function polod(pids: readonly number[], groups: readonly string[], port: number, iface: string | undefined, timeout: number): Promise<Finding> {
  const check = 'polod';
  if (pids.length === 0) {
    return { check, status: 'fail', message: 'polod is not running on this host', fix: 'systemctl start polod (or run polod; polod --check shows what it would serve)' };
  }
  const local = new Set(Object.values(os.networkInterfaces()).flatMap((l) => l ?? []).map((a) => a.address));
  const marco = new Marco();
  // Every group at once: each query runs to its deadline.
  const answers = await Promise.all(
    groups.map(async (group) => {
      try {
        const nodes = await marco.marco({ group, port, timeout, ...(iface !== undefined && { interface: iface }) });
        return nodes.some((n) => local.has(n.address));
      } catch {
        return false; // counted as not answered; the interfaces and route checks say why
      }
    }),
  );
  const answered = groups.filter((_, i) => answers[i] === true);
  if (answered.length === groups.length) return { check, status: 'ok', message: `running (pid ${pids.join(', ')}), answers in ${answered.join(', ')}` };
  const silent = groups.filter((g) => !answered.includes(g));
  return {
    check,
    status: 'fail',
    message: `running (pid ${pids.join(', ')}) but did not answer a Marco query in ${silent.join(', ')} within ${timeout} ms`,
    fix: 'check the groups it serves (polod --check) and its --interface; see the interfaces, route and firewall lines above',
  };
}

async function marcod(pids: readonly number[], timeout: number): Promise<Finding> {
  const check = 'marcod';
  if (pids.length === 0) {
    return { check, status: 'warn', message: 'marcod is not running (only programs using the bindings need it)', fix: 'systemctl start marcod' };
  }
  const { MarcodClient } = await import('../client/marcodClient.js');
  try {
    // marcod asks the network for 100 ms, then answers; the client waits for the reply.
    await new MarcodClient({ timeout: Math.max(200, timeout) }).marco({ timeout: 100 });
    return { check, status: 'ok', message: `running (pid ${pids.join(', ')}), answers on 127.0.1.1:1338` };
  } catch (err) {
    return {
      check,
      status: 'fail',
      message: `running (pid ${pids.join(', ')}) but no answer on 127.0.1.1:1338 (${err instanceof Error ? err.message : String(err)})`,
      fix: "check marcod's --bind and --port (marco.cfg marcoport) and its log",
    };
  }
}

async function publishApi(flags: Flags, polodRunning: boolean, timeout: number): Promise<Finding[]> {
  const check = 'publish API';
  const socketPath = flags.socket ?? polodSocketPath(flags.stateDir);
  const { PoloClient } = await import('../client/poloClient.js');
  const client = new PoloClient({ socketPath, timeout: Math.max(1, timeout) });
  const findings: Finding[] = [];
  try {
    const services = await client.list();
    findings.push({ check, status: 'ok', message: `${socketPath} answers (${services.length} services offered)` });
  } catch (err) {
    findings.push({
      check,
      status: polodRunning ? 'fail' : 'skip',
      message: `${socketPath}: ${err instanceof Error ? oneLine(err.message) : String(err)}`,
      ...(polodRunning && { fix: 'give --state-dir or --socket as polod was started with; check that this user may open the socket' }),
    });
  } finally {
    await client.close();
  }
  const tlsPort = flags.tlsPort ?? DEFAULT_TLS_PORT;
  const reachable = await tcpConnects('127.0.0.1', tlsPort, Math.max(1, timeout));
  findings.push(
    reachable
      ? { check, status: 'ok', message: `TLS port 127.0.0.1:${tlsPort} accepts connections` }
      : {
          check,
          status: polodRunning ? 'fail' : 'skip',
          message: `TLS port 127.0.0.1:${tlsPort} refuses connections`,
          ...(polodRunning && { fix: "give --tls-port as polod's --binding-port / polo_binding_port" }),
        },
  );
  return findings;
}

// ---- Token file

function tokenFile(given: string | undefined): Finding {
  const check = 'token';
  const file = given ?? currentUserTokenFile();
  let st;
  try {
    st = statSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { check, status: 'ok', message: `${file} does not exist yet: polo asks polod for it on first use` };
    return { check, status: 'fail', message: `${file} cannot be read (${code ?? String(err)})`, fix: `ls -l ${file}; it must be this user's` };
  }
  const uid = process.getuid?.();
  if (!st.isFile()) return { check, status: 'fail', message: `${file} is not a regular file`, fix: `remove it; polo token asks polod for a new one` };
  if (uid !== undefined && st.uid !== uid) {
    return { check, status: 'fail', message: `${file} belongs to uid ${st.uid}, not to this user (uid ${uid})`, fix: `rm ${file}; polo token` };
  }
  if ((st.mode & 0o077) !== 0) {
    return {
      check,
      status: 'fail',
      message: `${file} has mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}: others may read this user's token and publish as them`,
      fix: `chmod 600 ${file}`,
    };
  }
  try {
    readFileSync(file);
  } catch (err) {
    return { check, status: 'fail', message: `${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, fix: `rm ${file}; polo token` };
  }
  return { check, status: 'ok', message: `${file} is this user's, mode 0600` };
}

// ---- Running tools

function run(tool: string, args: readonly string[]): Promise<{ tool: string; ok: boolean; stdout: string; why: string }> {
  return new Promise((resolve) => {
    execFile(tool, args, { timeout: 3000, encoding: 'utf8', maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err === null) return resolve({ tool, ok: true, stdout, why: '' });
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'not installed' : stderr.trim().split('\n')[0] || err.message;
      resolve({ tool, ok: false, stdout: '', why: oneLine(why) });
    });
  });
}
