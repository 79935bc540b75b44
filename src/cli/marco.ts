#!/usr/bin/env node
/**
 * `marco`: ask the local network who is there, who offers a service, and what a node offers.
 * A thin shell over the discovery library: parse flags, run one query, print a table or JSON,
 * return a documented exit code (see EXIT_CODES_HELP).
 *
 * Start-up is most of a query's run time, so this file loads only what a query needs: flags are
 * parsed by src/cli/args.ts (not commander), and `marco doctor` and `marco dashboard` are imported when asked for. The
 * installed command is this file bundled into one CommonJS file (scripts/bundle-marco.mjs).
 */
import type { AuthPolicy, GridKey } from '../auth/gridAuth.js';
import { authFlagSpecs, WATCH_AUTH_FLAGS } from './authFlags.js';
import { Marco, type WatchOptions } from '../discovery/marco.js';
import type { HostLookup } from '../discovery/nodeAddress.js';
import { MAX_TIMEOUT_MS, type QueryOptions } from '../discovery/options.js';
import type { NodeResult, QueryStats, QueryStream, ServicesResult } from '../discovery/results.js';
import { AbortedError } from '../errors.js';
import type { Json, JsonObject } from '../protocol/json.js';
import { DEFAULT_GROUP, DEFAULT_TIMEOUT_MS, POLO_PORT } from '../protocol/limits.js';
import type { Transport } from '../transport/transport.js';
import { REGISTRY_FLAGS, registryOptions, type RegistryFlags } from './registryFlags.js';
import { commandHelp, commandUsage, parseCommand, programHelp, type CommandSpec, type FlagSpec } from './args.js';
import {
  displayValue,
  exitCodeFor,
  ExitCode,
  FlagError,
  formatTable,
  oneLine,
  packageVersion,
  parseIPv4,
  parseNodeAddress,
  parseKeyValue,
  parseMulticastGroup,
  parseNonNegativeInt,
  parsePort,
  runIfMain,
  terminalSafe,
  type CliIo,
} from './common.js';

/** Collaborators `main` may be given instead of the real ones (tests use a memory network). */
export interface MarcoCliDeps {
  readonly transport?: Transport;
  readonly lookup?: HostLookup;
  /**
   * Aborted on Ctrl-C: the query ends and what was found so far is printed (exit 0), or
   * "interrupted" (exit 1). The command installs its SIGINT handler itself when run as a program.
   */
  readonly interrupt?: AbortSignal;
}

/** The exit codes, as printed at the end of every `--help`. */
export const EXIT_CODES_HELP = `
--timeout 0 means no deadline: the query runs until --max-nodes nodes answered or Ctrl-C.
Ctrl-C ends a query early and prints what was found so far.

Exit codes:
  ${ExitCode.OK}  found something (a node answered; for services, the node answered)
  ${ExitCode.NOT_FOUND}  nobody answered (or every answer was left out by --param or --exclude)
  ${ExitCode.USAGE}  usage error or invalid value (one line naming it, then the usage, on stderr)
  ${ExitCode.RUNTIME}  runtime error (socket or network failure)`;

/** Flags as the parser hands them over (already checked by the flag parsers). */
interface Flags extends RegistryFlags {
  group?: string;
  timeout?: number;
  maxNodes?: number;
  exclude?: string[];
  param?: Array<[string, Json]>;
  interface?: string;
  port?: number;
  retries?: number;
  json?: boolean;
  key?: GridKey[];
  auth?: AuthPolicy;
  service?: string;
}

const COMMON_FLAGS: readonly FlagSpec[] = [
  {
    name: 'timeout',
    value: '<ms>',
    description: `deadline of the whole command in ms, 0 = none (default: ${DEFAULT_TIMEOUT_MS})`,
    parse: parseNonNegativeInt,
  },
  {
    name: 'retries',
    value: '<n>',
    description: 'resend the query up to N times while nobody answered (default: 0)',
    parse: parseNonNegativeInt,
  },
  { name: 'interface', value: '<addr>', description: 'local IPv4 address to send the query from', parse: parseIPv4 },
  { name: 'port', value: '<n>', description: `polod port (default: ${POLO_PORT})`, parse: parsePort },
  ...authFlagSpecs(
    'grid key file: queries signed, replies verified (repeatable: the first signs, each verifies)',
    'required (default with --key): unsigned replies dropped; preferred: kept and marked unverified; sealed: as required (sealed params are opened either way); off',
  ),
  ...REGISTRY_FLAGS,
  { name: 'json', description: 'print one JSON document instead of a table' },
];

const GROUP_FLAGS: readonly FlagSpec[] = [
  { name: 'group', value: '<addr>', description: `multicast group to query (default: ${DEFAULT_GROUP})`, parse: parseMulticastGroup },
  {
    name: 'max-nodes',
    value: '<n>',
    description: 'stop as soon as N nodes were found (default: 0 = no limit)',
    parse: parseNonNegativeInt,
  },
  {
    name: 'exclude',
    value: '<addr>',
    description: 'ignore replies from this address (repeatable)',
    parse: parseNodeAddress,
    repeatable: true,
  },
  {
    name: 'param',
    value: '<key=value>',
    description:
      'keep only nodes whose params have KEY equal to VALUE; VALUE is JSON when it parses as JSON, else a string (repeatable)',
    parse: parseKeyValue,
    repeatable: true,
  },
  ...COMMON_FLAGS,
];

const COMMANDS: readonly CommandSpec[] = [
  {
    name: 'discover',
    description: 'list the nodes of a group (Marco query) with their node params',
    args: [],
    flags: GROUP_FLAGS,
  },
  {
    name: 'request-for',
    description: 'list the nodes offering SERVICE in a group, with the service params',
    args: [{ name: 'SERVICE', description: 'service id, e.g. web or alice:printer' }],
    flags: GROUP_FLAGS,
  },
  {
    name: 'services',
    description: 'list the services NODE offers (Services query, sent by unicast)',
    args: [{ name: 'NODE', description: 'IPv4 address or host name of the node' }],
    flags: [
      {
        name: 'group',
        value: '<addr>',
        description: 'list the services of this group only (default: the node decides)',
        parse: parseMulticastGroup,
      },
      ...COMMON_FLAGS,
    ],
  },
  {
    name: 'watch',
    description: 'stream the events (up, down, update) of the nodes of a group, or of the providers of one service, until Ctrl-C',
    args: [],
    flags: [
      { name: 'group', value: '<addr>', description: `multicast group to watch (default: ${DEFAULT_GROUP})`, parse: parseMulticastGroup },
      { name: 'service', value: '<id>', description: 'watch the nodes offering this service instead of the nodes', parse: parseServiceId },
      { name: 'interface', value: '<addr>', description: 'local IPv4 address to join the group on and send from', parse: parseIPv4 },
      { name: 'port', value: '<n>', description: `polod port (default: ${POLO_PORT})`, parse: parsePort },
      ...REGISTRY_FLAGS,
      ...WATCH_AUTH_FLAGS,
      { name: 'json', description: 'one JSON object per event and line: {"event","address","params","reason","time"} (and "verified" with --key)' },
    ],
  },
  {
    name: 'doctor',
    description: 'check what makes discovery fail on this host (interfaces, routes, groups, firewall, daemons)',
    args: [],
    flags: [], // parsed by src/cli/doctor.ts, which documents its own flags
  },
  {
    name: 'dashboard',
    description: 'serve a live web page of the grids, their nodes and services (--listen 127.0.0.1:PORT)',
    args: [],
    flags: [], // parsed by src/cli/dashboard.ts, which documents its own flags
  },
];

const DESCRIPTION = 'Find MarcoPolo nodes and services on the local network (UDP multicast + JSON).';

/**
 * Runs `marco` with `argv` (the arguments after the command name) and returns its exit code.
 * Never calls process.exit and writes only to `io`, so tests call it directly.
 */
export async function main(argv: readonly string[], io: CliIo, deps: MarcoCliDeps = {}): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) return usageError('missing command', undefined, io);
  if (first === '--help' || first === '-h') {
    io.stdout.write(programHelp('marco', DESCRIPTION, COMMANDS, EXIT_CODES_HELP));
    return ExitCode.OK;
  }
  if (first === '--version' || first === '-V') {
    io.stdout.write(`${packageVersion()}\n`);
    return ExitCode.OK;
  }
  if (first === 'help') {
    const spec = rest[0] === undefined ? undefined : COMMANDS.find((c) => c.name === rest[0]);
    if (spec?.name === 'doctor') return (await import('./doctor.js')).main(['--help'], io);
    if (spec?.name === 'dashboard') return (await import('./dashboard.js')).main(['--help'], io);
    io.stdout.write(spec === undefined ? programHelp('marco', DESCRIPTION, COMMANDS, EXIT_CODES_HELP) : commandHelp('marco', spec, EXIT_CODES_HELP));
    return ExitCode.OK;
  }
  const spec = COMMANDS.find((c) => c.name === first);
  if (spec === undefined) {
    const what = first.startsWith('-') ? `unknown option '${first}'` : `unknown command '${first}'`;
    return usageError(what, undefined, io);
  }
  if (spec.name === 'doctor') return (await import('./doctor.js')).main(rest, io);
  if (spec.name === 'dashboard') return (await import('./dashboard.js')).main(rest, io, deps);
  try {
    const parsed = parseCommand(spec, rest);
    if (parsed.help) {
      io.stdout.write(commandHelp('marco', spec, EXIT_CODES_HELP));
      return ExitCode.OK;
    }
    return await run(spec.name, parsed.args[0] ?? '', parsed.flags as Flags, io, deps);
  } catch (err) {
    const code = exitCodeFor(err);
    if (code === ExitCode.USAGE) return usageError(err instanceof Error ? err.message : String(err), spec, io);
    io.stderr.write(`marco: ${oneLine(err instanceof Error ? err.message : String(err))}\n`);
    return code;
  }
}

/** Runs `marco` as a program: Ctrl-C (or SIGTERM) ends the query and prints what was found. */
async function programMain(argv: readonly string[], io: CliIo): Promise<number> {
  const interrupt = new AbortController();
  process.on('SIGINT', () => {
    // A second Ctrl-C means "now": the usual exit status of a command killed by SIGINT.
    if (interrupt.signal.aborted) process.exit(130);
    interrupt.abort();
  });
  process.on('SIGTERM', () => interrupt.abort());
  return main(argv, io, { interrupt: interrupt.signal });
}

function usageError(message: string, spec: CommandSpec | undefined, io: CliIo): number {
  const usage =
    spec === undefined
      ? COMMANDS.map((c) => commandUsage('marco', c)).join('\n       ')
      : commandUsage('marco', spec);
  const helpCommand = spec === undefined ? 'marco' : `marco ${spec.name}`;
  io.stderr.write(`marco: ${oneLine(message)}\nUsage: ${usage}\nRun '${helpCommand} --help' for the options and exit codes.\n`);
  return ExitCode.USAGE;
}

async function run(command: string, target: string, flags: Flags, io: CliIo, deps: MarcoCliDeps): Promise<number> {
  const marco = new Marco({
    ...registryOptions(flags, io, 'marco'),
    ...(deps.transport === undefined ? {} : { transport: deps.transport }),
    ...(deps.lookup === undefined ? {} : { lookup: deps.lookup }),
  });
  if (command === 'watch') return watch(marco, flags, io, deps.interrupt);
  const options = queryOptions(flags);
  if (command === 'services') {
    let result: ServicesResult | undefined;
    try {
      result = await marco.services(target, { ...options, ...(deps.interrupt && { signal: deps.interrupt }) });
    } catch (err) {
      if (!(err instanceof AbortedError)) throw err;
      result = undefined;
    }
    return printServices(target, result, flags, io, deps.interrupt?.aborted === true);
  }
  const stream = command === 'discover' ? marco.discover(options) : marco.requestForStream(target, options);
  const nodes = await drain(stream, deps.interrupt);
  return printNodes(nodes, stream.stats, flags, io, deps.interrupt?.aborted === true);
}

/** Every node of a live query until it ends (deadline, --max-nodes) or `interrupt` fires. */
async function drain(stream: QueryStream, interrupt: AbortSignal | undefined): Promise<NodeResult[]> {
  const nodes: NodeResult[] = [];
  const stop = (): void => void stream.close();
  interrupt?.addEventListener('abort', stop, { once: true });
  try {
    if (interrupt?.aborted === true) await stream.close();
    for await (const node of stream) nodes.push(node);
  } finally {
    interrupt?.removeEventListener('abort', stop);
  }
  return nodes;
}

function queryOptions(flags: Flags): QueryOptions {
  const options: QueryOptions = {};
  if (flags.group !== undefined) options.group = flags.group;
  // One meaning of 0 in every command (polo's --timeout too): no deadline.
  if (flags.timeout !== undefined) options.timeout = flags.timeout === 0 ? MAX_TIMEOUT_MS : flags.timeout;
  if (flags.maxNodes !== undefined) options.maxNodes = flags.maxNodes;
  if (flags.exclude !== undefined) options.exclude = flags.exclude;
  if (flags.param !== undefined) options.params = Object.fromEntries(flags.param);
  if (flags.interface !== undefined) options.interface = flags.interface;
  if (flags.port !== undefined) options.port = flags.port;
  if (flags.retries !== undefined) options.retries = flags.retries;
  if (flags.key !== undefined) options.keys = flags.key;
  if (flags.auth !== undefined) options.auth = flags.auth;
  return options;
}

/** "within 1000 ms", or "before Ctrl-C" when the query was interrupted or had no deadline. */
function when(flags: Flags, interrupted: boolean): string {
  if (interrupted) return 'before Ctrl-C';
  return `within ${flags.timeout ?? DEFAULT_TIMEOUT_MS} ms`;
}

function printNodes(nodes: readonly NodeResult[], stats: Readonly<QueryStats>, flags: Flags, io: CliIo, interrupted: boolean): number {
  if (flags.json === true) {
    io.stdout.write(`${JSON.stringify(nodes.map((n) => ({ address: n.address, params: n.params, ...(n.verified !== undefined && { verified: n.verified }) })))}\n`);
  } else if (nodes.length > 0) {
    io.stdout.write(formatTable([['ADDRESS', 'PARAMS'], ...nodes.map((n) => [n.address, formatParams(n.params)])]));
  }
  if (nodes.length === 0) io.stderr.write(`marco: ${nobodyMatched(stats, when(flags, interrupted))}\n`);
  return nodes.length > 0 ? ExitCode.OK : ExitCode.NOT_FOUND;
}

/**
 * Why nothing was found, told apart: silence, answers all left out by --param or --exclude, or
 * only answers that were not MarcoPolo replies.
 */
function nobodyMatched(stats: Readonly<QueryStats>, window: string): string {
  const leftOut = stats.filtered + stats.excluded;
  if (leftOut > 0) {
    const why = [
      stats.filtered > 0 ? `${stats.filtered} by --param` : '',
      stats.excluded > 0 ? `${stats.excluded} by --exclude` : '',
    ].filter(Boolean);
    return `${leftOut} ${leftOut === 1 ? 'answer' : 'answers'} ${window}, none matched (left out: ${why.join(', ')})`;
  }
  if (stats.malformed > 0) {
    return `no valid answer ${window} (${stats.malformed} malformed ${stats.malformed === 1 ? 'reply' : 'replies'} skipped)`;
  }
  return `no node answered ${window}`;
}

function printServices(node: string, result: ServicesResult | undefined, flags: Flags, io: CliIo, interrupted: boolean): number {
  if (flags.json === true) {
    const doc =
      result === undefined
        ? null
        : {
            address: result.address,
            services: result.services.map((s) => ({ id: s.id, params: s.params })),
            ...(result.truncated === true ? { truncated: true } : {}),
            ...(result.verified !== undefined && { verified: result.verified }),
          };
    io.stdout.write(`${JSON.stringify(doc)}\n`);
  }
  if (result === undefined) {
    io.stderr.write(`marco: no answer from ${terminalSafe(node)} ${when(flags, interrupted)}\n`);
  } else if (flags.json !== true) {
    if (result.services.length === 0) io.stderr.write(`marco: ${result.address} offers no services\n`);
    else {
      io.stdout.write(
        formatTable([['ID', 'PARAMS'], ...result.services.map((s) => [displayValue(s.id), formatParams(s.params)])]),
      );
    }
    if (result.truncated === true) {
      io.stderr.write(`marco: ${result.address} cut its list to fit one datagram; some services are missing\n`);
    }
  }
  return result === undefined ? ExitCode.NOT_FOUND : ExitCode.OK;
}

/** `marco watch`: prints each event as it comes (one JSON line with --json), until interrupted. */
async function watch(marco: Marco, flags: Flags, io: CliIo, interrupt: AbortSignal | undefined): Promise<number> {
  const options: WatchOptions = interrupt === undefined ? {} : { signal: interrupt };
  if (flags.group !== undefined) options.group = flags.group;
  if (flags.interface !== undefined) options.interface = flags.interface;
  if (flags.port !== undefined) options.port = flags.port;
  if (flags.service !== undefined) options.service = flags.service;
  if (flags.key !== undefined) options.keys = flags.key;
  if (flags.auth !== undefined) options.auth = flags.auth;
  for await (const e of marco.watch(options)) {
    if (flags.json === true) {
      const verified = e.verified === undefined ? {} : { verified: e.verified };
      io.stdout.write(`${JSON.stringify({ event: e.event, address: e.address, params: e.params, reason: e.reason ?? null, time: e.time, ...verified })}\n`);
    } else {
      const reason = e.reason === undefined ? '' : ` (${e.reason})`;
      const unverified = e.verified === false ? ' [unverified]' : '';
      io.stdout.write(`${e.time} ${e.event.padEnd(6)} ${e.address} ${formatParams(e.params)}${reason}${unverified}\n`);
    }
  }
  return ExitCode.OK;
}

/** A non-empty service id, for --service. */
function parseServiceId(value: string): string {
  if (value.length === 0) throw new FlagError('expected a non-empty service id.');
  return value;
}

/** Params as compact `key=value` pairs, values shown as displayValue does; `-` when empty. */
function formatParams(params: JsonObject): string {
  const pairs = Object.entries(params).map(([key, value]) => `${displayValue(key)}=${displayValue(value)}`);
  return pairs.length > 0 ? pairs.join(' ') : '-';
}

// Not awaited at the top level: the command also ships as one CommonJS file
// (scripts/bundle-marco.mjs), which has no top-level await.
void runIfMain(import.meta.url, programMain, { exitAtOnce: true });
