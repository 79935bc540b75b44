#!/usr/bin/env node
/**
 * `marco`: ask the local network who is there, who offers a service, and what a node offers.
 * A thin shell over the discovery library: parse flags, run one query, print a table or JSON,
 * return a documented exit code (see EXIT_CODES_HELP).
 */
import { Command, InvalidArgumentError as FlagError } from 'commander';
import { parseAuthPolicy, readGridKeyFile, type AuthPolicy, type GridKey } from '../auth/gridAuth.js';
import { Marco, type WatchOptions } from '../discovery/marco.js';
import type { HostLookup } from '../discovery/nodeAddress.js';
import type { QueryOptions } from '../discovery/options.js';
import type { NodeResult, ServicesResult } from '../discovery/results.js';
import type { Json, JsonObject } from '../protocol/json.js';
import { DEFAULT_GROUP, DEFAULT_TIMEOUT_MS, POLO_PORT } from '../protocol/limits.js';
import type { Transport } from '../transport/transport.js';
import {
  displayValue,
  ExitCode,
  formatTable,
  runIfMain,
  parseIPv4,
  parseKeyValue,
  parseMulticastGroup,
  parseNonNegativeInt,
  parsePort,
  prepareProgram,
  repeatable,
  runProgram,
  shortUsage,
  terminalSafe,
  type CliIo,
} from './common.js';

/** Collaborators `main` may be given instead of the real ones (tests use a memory network). */
export interface MarcoCliDeps {
  readonly transport?: Transport;
  readonly lookup?: HostLookup;
  /** Ends `marco watch` (default: SIGINT or SIGTERM). */
  readonly signal?: AbortSignal;
}

const WATCH_HELP = `
Runs until Ctrl-C (SIGINT) or SIGTERM, then exits 0. The first events (up) are the current state.
Exit codes: ${ExitCode.OK} stopped, ${ExitCode.USAGE} usage or invalid value, ${ExitCode.RUNTIME} socket failure.`;

/** The exit codes, as printed at the end of every `--help`. */
export const EXIT_CODES_HELP = `
Exit codes:
  ${ExitCode.OK}  found something (a node answered; for services, the node answered)
  ${ExitCode.NOT_FOUND}  nobody answered before the deadline
  ${ExitCode.USAGE}  usage error or invalid value (one line naming it, then the usage, on stderr)
  ${ExitCode.RUNTIME}  runtime error (socket or network failure)`;

/** Flags as commander hands them over (already parsed and checked by the flag parsers). */
interface Flags {
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

/**
 * Runs `marco` with `argv` (the arguments after the command name) and returns its exit code.
 * Never calls process.exit and writes only to `io`, so tests call it directly.
 */
export async function main(argv: readonly string[], io: CliIo, deps: MarcoCliDeps = {}): Promise<number> {
  let exitCode: number = ExitCode.RUNTIME;
  const client = (): Marco =>
    new Marco({
      ...(deps.transport === undefined ? {} : { transport: deps.transport }),
      ...(deps.lookup === undefined ? {} : { lookup: deps.lookup }),
    });

  const program = prepareProgram(new Command('marco'), io)
    .description('Find MarcoPolo nodes and services on the local network (UDP multicast + JSON).')
    .addHelpText('after', EXIT_CODES_HELP);

  groupFlags(program.command('discover'))
    .description('list the nodes of a group (Marco query) with their node params')
    .addHelpText('after', EXIT_CODES_HELP)
    .action(async (flags: Flags) => {
      exitCode = printNodes(await client().marco(queryOptions(flags)), flags, io);
    });

  groupFlags(program.command('request-for'))
    .description('list the nodes offering SERVICE in a group, with the service params')
    .argument('<SERVICE>', 'service id, e.g. web or alice:printer')
    .addHelpText('after', EXIT_CODES_HELP)
    .action(async (service: string, flags: Flags) => {
      exitCode = printNodes(await client().requestFor(service, queryOptions(flags)), flags, io);
    });

  commonFlags(
    program
      .command('services')
      .option('--group <addr>', 'list the services of this group only (default: the node decides)', parseMulticastGroup),
  )
    .description('list the services NODE offers (Services query, sent by unicast)')
    .argument('<NODE>', 'IPv4 address or host name of the node')
    .addHelpText('after', EXIT_CODES_HELP)
    .action(async (node: string, flags: Flags) => {
      exitCode = printServices(node, await client().services(node, queryOptions(flags)), flags, io);
    });

  program
    .command('watch')
    .description('stream the events (up, down, update) of the nodes of a group, or of the providers of one service')
    .option('--group <addr>', `multicast group to watch (default: ${DEFAULT_GROUP})`, parseMulticastGroup)
    .option('--service <id>', 'watch the nodes offering this service instead of the nodes')
    .option('--interface <addr>', 'local IPv4 address to join the group on and send from', parseIPv4)
    .option('--port <n>', `polod port (default: ${POLO_PORT})`, parsePort)
    .option('--json', 'one JSON object per event and line: {"event","address","params","reason","time"}')
    .addHelpText('after', WATCH_HELP)
    .action(async (flags: Flags) => {
      exitCode = await watch(client(), flags, io, deps.signal ?? stopSignal());
    });

  if (argv.length === 0) {
    io.stderr.write(`marco: missing command\n${shortUsage(program)}`);
    return ExitCode.USAGE;
  }
  return (await runProgram(program, argv, io)) ?? exitCode;
}

/** Flags of every subcommand. */
function commonFlags(cmd: Command): Command {
  return cmd
    .option('--timeout <ms>', `deadline of the whole query in ms (default: ${DEFAULT_TIMEOUT_MS})`, parseNonNegativeInt)
    .option('--retries <n>', 'resend the query up to N times while nobody answered (default: 0)', parseNonNegativeInt)
    .option('--interface <addr>', 'local IPv4 address to send the query from', parseIPv4)
    .option('--port <n>', `polod port (default: ${POLO_PORT})`, parsePort)
    .option('--key <file>', 'grid key file: queries signed, replies verified (repeatable: the first signs, each verifies)', repeatable(parseKeyFile))
    .option('--auth <policy>', 'required (default with --key): unsigned replies dropped; preferred: kept and marked unverified; off', parseAuth)
    .option('--json', 'print one JSON document instead of a table');
}

/** `--key FILE`: the file is read now, so a bad one is a usage error naming it. */
function parseKeyFile(file: string): GridKey {
  try {
    return readGridKeyFile(file);
  } catch (err) {
    throw new FlagError((err as Error).message);
  }
}

function parseAuth(value: string): AuthPolicy {
  try {
    return parseAuthPolicy(value, '--auth');
  } catch (err) {
    throw new FlagError((err as Error).message);
  }
}

/** Flags of the multicast queries (discover, request-for). */
function groupFlags(cmd: Command): Command {
  const withGroupFlags = cmd
    .option('--group <addr>', `multicast group to query (default: ${DEFAULT_GROUP})`, parseMulticastGroup)
    .option('--max-nodes <n>', 'stop as soon as N nodes were found (default: 0 = no limit)', parseNonNegativeInt)
    .option('--exclude <addr>', 'ignore replies from this IPv4 address (repeatable)', repeatable(parseIPv4))
    .option(
      '--param <key=value>',
      'keep only nodes whose params have KEY equal to VALUE; VALUE is JSON when it parses as JSON, else a string (repeatable)',
      repeatable(parseKeyValue),
    );
  return commonFlags(withGroupFlags);
}

function queryOptions(flags: Flags): QueryOptions {
  const options: QueryOptions = {};
  if (flags.group !== undefined) options.group = flags.group;
  if (flags.timeout !== undefined) options.timeout = flags.timeout;
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

function printNodes(nodes: readonly NodeResult[], flags: Flags, io: CliIo): number {
  if (flags.json === true) {
    io.stdout.write(`${JSON.stringify(nodes.map((n) => ({ address: n.address, params: n.params, ...(n.verified !== undefined && { verified: n.verified }) })))}\n`);
  } else if (nodes.length > 0) {
    io.stdout.write(formatTable([['ADDRESS', 'PARAMS'], ...nodes.map((n) => [n.address, formatParams(n.params)])]));
  } else {
    io.stderr.write(`marco: no node answered within ${flags.timeout ?? DEFAULT_TIMEOUT_MS} ms\n`);
  }
  return nodes.length > 0 ? ExitCode.OK : ExitCode.NOT_FOUND;
}

function printServices(node: string, result: ServicesResult | undefined, flags: Flags, io: CliIo): number {
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
  } else if (result === undefined) {
    io.stderr.write(`marco: no answer from ${terminalSafe(node)} within ${flags.timeout ?? DEFAULT_TIMEOUT_MS} ms\n`);
  } else if (result.services.length === 0) {
    io.stderr.write(`marco: ${result.address} offers no services\n`);
  } else {
    io.stdout.write(
      formatTable([['ID', 'PARAMS'], ...result.services.map((s) => [displayValue(s.id), formatParams(s.params)])]),
    );
  }
  if (result?.truncated === true && flags.json !== true) {
    io.stderr.write(`marco: ${result.address} cut its list to fit one datagram; some services are missing\n`);
  }
  return result === undefined ? ExitCode.NOT_FOUND : ExitCode.OK;
}

/** An AbortSignal fired by the first SIGINT or SIGTERM (the handlers are removed then). */
function stopSignal(): AbortSignal {
  const controller = new AbortController();
  const stop = (): void => {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    controller.abort();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  return controller.signal;
}

/** `marco watch`: prints each event as it comes (one JSON line with --json), until the signal. */
async function watch(marco: Marco, flags: Flags, io: CliIo, signal: AbortSignal): Promise<number> {
  const options: WatchOptions = { signal };
  if (flags.group !== undefined) options.group = flags.group;
  if (flags.interface !== undefined) options.interface = flags.interface;
  if (flags.port !== undefined) options.port = flags.port;
  if (flags.service !== undefined) options.service = flags.service;
  for await (const e of marco.watch(options)) {
    if (flags.json === true) {
      io.stdout.write(`${JSON.stringify({ event: e.event, address: e.address, params: e.params, reason: e.reason ?? null, time: e.time })}\n`);
    } else {
      const reason = e.reason === undefined ? '' : ` (${e.reason})`;
      io.stdout.write(`${e.time} ${e.event.padEnd(6)} ${e.address} ${formatParams(e.params)}${reason}\n`);
    }
  }
  return ExitCode.OK;
}

/** Params as compact `key=value` pairs, values shown as displayValue does; `-` when empty. */
function formatParams(params: JsonObject): string {
  const pairs = Object.entries(params).map(([key, value]) => `${displayValue(key)}=${displayValue(value)}`);
  return pairs.length > 0 ? pairs.join(' ') : '-';
}

await runIfMain(import.meta.url, main);
