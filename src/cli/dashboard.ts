/**
 * `marco dashboard`: serves a local web page showing the grids, their nodes and each node's
 * services, updated live as they come and go (src/dashboard/), until Ctrl-C.
 *
 * Loaded by src/cli/marco.ts only when asked for, so `marco`'s queries do not pay for it.
 */
import { Marco } from '../discovery/marco.js';
import type { HostLookup } from '../discovery/nodeAddress.js';
import { DEFAULT_GROUP, POLO_PORT } from '../protocol/limits.js';
import type { Transport } from '../transport/transport.js';
import { isIPv4 } from '../util/ipv4.js';
import { startLive } from '../dashboard/live.js';
import { serveDashboard } from '../dashboard/server.js';
import type { AuthPolicy, GridKey } from '../auth/gridAuth.js';
import { commandHelp, parseCommand, type CommandSpec } from './args.js';
import { WATCH_AUTH_FLAGS } from './authFlags.js';
import { REGISTRY_FLAGS, registryOptions, type RegistryFlags } from './registryFlags.js';
import { ExitCode, exitCodeFor, FlagError, oneLine, parseIPv4, parseMulticastGroup, parsePort, type CliIo } from './common.js';

/** What marco.ts hands over: its test doubles, and the Ctrl-C signal. */
export interface DashboardDeps {
  readonly transport?: Transport;
  readonly lookup?: HostLookup;
  /** Aborted on Ctrl-C or SIGTERM: the dashboard stops and the command exits 0. */
  readonly interrupt?: AbortSignal;
  /** Called with the page's URL once it is served (tests). */
  readonly onListening?: (url: string) => void;
}

interface Listen {
  readonly host: string;
  readonly port: number;
}

interface Flags extends RegistryFlags {
  listen?: Listen;
  group?: string[];
  interface?: string;
  port?: number;
  key?: GridKey[];
  auth?: AuthPolicy;
}

const SPEC: CommandSpec = {
  name: 'dashboard',
  description:
    'Serve a web page showing the grids, their nodes and each node’s services, updated live as they come and go, ' +
    'and the recent events. Runs until Ctrl-C.',
  args: [],
  flags: [
    {
      name: 'listen',
      value: '<addr:port>',
      description: 'where to serve the page, e.g. 127.0.0.1:8080 (required; port 0 picks a free one)',
      parse: parseListen,
    },
    {
      name: 'group',
      value: '<addr>',
      description: `multicast group to show (repeatable; default: ${DEFAULT_GROUP})`,
      parse: parseMulticastGroup,
      repeatable: true,
    },
    { name: 'interface', value: '<addr>', description: 'local IPv4 address to join the groups on and send from', parse: parseIPv4 },
    { name: 'port', value: '<n>', description: `polod port (default: ${POLO_PORT})`, parse: parsePort },
    ...WATCH_AUTH_FLAGS,
    ...REGISTRY_FLAGS,
  ],
};

const EPILOGUE = `
The page (GET /) updates itself from GET /events (Server-Sent Events); GET /state is the same
data as one JSON document. It loads nothing from the internet. Nodes whose announcements carry
no service list (reference nodes) are asked for their services by unicast, every 5 s.

Exit codes:
  0  stopped by Ctrl-C
  2  usage error or invalid value, or --listen cannot be used (one line on stderr)
  3  runtime error (socket or network failure)
`;

/** Runs `marco dashboard` with the arguments after its name; returns the exit code. */
export async function main(argv: readonly string[], io: CliIo, deps: DashboardDeps = {}): Promise<number> {
  let flags: Flags;
  try {
    const parsed = parseCommand(SPEC, argv);
    if (parsed.help) {
      io.stdout.write(commandHelp('marco', SPEC, EPILOGUE));
      return ExitCode.OK;
    }
    flags = parsed.flags as Flags;
    if (flags.listen === undefined) throw new FlagError("missing option '--listen <addr:port>', e.g. --listen 127.0.0.1:8080");
  } catch (err) {
    return fail(io, ExitCode.USAGE, err);
  }
  const listen = flags.listen;

  let live;
  try {
    const marco = new Marco({
      ...registryOptions(flags, io, 'marco dashboard'),
      ...(flags.key !== undefined && { keys: flags.key }),
      ...(flags.auth !== undefined && { auth: flags.auth }),
      ...(deps.transport === undefined ? {} : { transport: deps.transport }),
      ...(deps.lookup === undefined ? {} : { lookup: deps.lookup }),
    });
    live = startLive({ marco, groups: flags.group ?? [DEFAULT_GROUP], port: flags.port, iface: flags.interface });
  } catch (err) {
    return fail(io, exitCodeFor(err), err);
  }
  try {
    await live.ready();
  } catch (err) {
    await live.close();
    return fail(io, ExitCode.RUNTIME, err);
  }
  let server;
  try {
    server = await serveDashboard(live.state, listen.host, listen.port);
  } catch (err) {
    await live.close();
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'EADDRINUSE' ? 'the port is in use' : code === 'EADDRNOTAVAIL' ? 'not an address of this host' : code === 'EACCES' ? 'permission denied' : undefined;
    if (why === undefined) return fail(io, ExitCode.RUNTIME, err);
    return fail(io, ExitCode.USAGE, new Error(`cannot listen on ${listen.host}:${listen.port}: ${why}`));
  }
  const url = `http://${server.address}:${server.port}/`;
  io.stdout.write(`marco dashboard: serving ${url} (Ctrl-C to stop)\n`);
  deps.onListening?.(url);
  const interrupt = deps.interrupt;
  if (interrupt !== undefined && !interrupt.aborted) {
    await new Promise<void>((resolve) => interrupt.addEventListener('abort', () => resolve(), { once: true }));
  } else if (interrupt === undefined) {
    await new Promise<never>(() => undefined);
  }
  await server.close();
  await live.close();
  return ExitCode.OK;
}

function fail(io: CliIo, code: number, err: unknown): number {
  const message = oneLine(err instanceof Error ? err.message : String(err));
  io.stderr.write(`marco: ${message}${code === ExitCode.USAGE ? " (see 'marco dashboard --help')" : ''}\n`);
  return code;
}

/** `ADDRESS:PORT`, the address an IPv4 literal or localhost; port 0 picks a free port. */
export function parseListen(value: string): Listen {
  const colon = value.lastIndexOf(':');
  const host = colon < 0 ? '' : value.slice(0, colon);
  const portText = colon < 0 ? '' : value.slice(colon + 1);
  if (!(host === 'localhost' || isIPv4(host)) || !/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
    throw new FlagError('expected ADDRESS:PORT with an IPv4 address (or localhost) and a port 0-65535, e.g. 127.0.0.1:8080.');
  }
  return { host: host === 'localhost' ? '127.0.0.1' : host, port: Number(portText) };
}
