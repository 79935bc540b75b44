#!/usr/bin/env node
/**
 * `marcod`: the Marco daemon, a local resolver. Bindings in any language send it one UDP
 * request (127.0.1.1:1338 by default) and get one reply with the nodes it found on the network
 * (docs/protocol.md §4). Reads marco.cfg (flags win) and stops cleanly on SIGTERM or SIGINT.
 */
import { Command, InvalidArgumentError as FlagError } from 'commander';
import type { AuthPolicy, GridKey } from '../auth/gridAuth.js';
import { parseAuth, parseKeyFile } from './authFlags.js';
import { MAX_IN_FLIGHT, MAX_IN_FLIGHT_PER_CLIENT } from '../marcod/limits.js';
import { loadMarcoConfig, type MarcoConfig, type MarcoOverrides } from '../config/marcoConfig.js';
import { runMarcod } from '../daemon/marcod.js';
import { parseLogLevel } from '../util/log.js';
import {
  ExitCode,
  packageVersion,
  runIfMain,
  parseIPv4,
  parseMulticastGroup,
  parseNonNegativeInt,
  parsePort,
  prepareProgram,
  repeatable,
  runProgram,
  type CliIo,
} from './common.js';
import { addRegistryAccessOptions, logFormatOption, logLevelOption, serveDaemon } from './daemonCommand.js';
import { pickAccessFlags, type RegistryAccessFlags } from '../config/registryConfig.js';
import type { LogFormat } from '../util/log.js';

interface MarcodFlags extends RegistryAccessFlags {
  config?: string;
  bind?: string;
  port?: number;
  poloPort?: number;
  group?: string;
  interface?: string[];
  timeout?: number;
  frameSize?: number;
  maxRequests?: number;
  maxRequestsPerClient?: number;
  logLevel?: string;
  metrics?: string;
  registry?: string;
  key?: GridKey[];
  auth?: AuthPolicy;
  watchSocket?: string;
  logFormat?: LogFormat;
}

/** Smallest and largest `--frame-size` (the largest UDP payload over IPv4). */
const FRAME_SIZE_RANGE = [64, 65507] as const;

const EXIT_CODES = `
Requests and replies: see docs/protocol.md §4. Every request gets exactly one reply datagram:
  [{"Address": ..., "Params": {...}}, ...] for Marco and Request-For ([] when nobody answered),
  [{"id": ..., "params": {...}}, ...] for Services, {"Error": true} for a missing or unknown
  Command, and {"Error": "<reason>"} for anything else that went wrong (a bad value, "busy").
  Replies longer than the frame size keep the first nodes that fit; the rest are dropped and
  a warning is logged.

Exit codes:
  0  stopped by SIGTERM or SIGINT
  2  usage, or a bad value in a flag or the configuration file (one line names it)
  3  runtime failure (the API or --metrics address cannot be bound: in use, or not an address of this host)`;

/** Runs marcod with `argv` (the arguments after the command name); resolves when it stops. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  let exit: number = ExitCode.OK;
  const program = addRegistryAccessOptions(prepareProgram(new Command('marcod'), io)
    .version(packageVersion())
    .description('Resolve MarcoPolo discovery requests from local applications (the Marco daemon).')
    .option('--config <file>', 'configuration file (default /etc/marcopolo/marco/marco.cfg, if present)')
    .option('--bind <addr>', 'address of the local API (default 127.0.1.1; 0.0.0.0 exposes it to the network)', parseIPv4)
    .option('--port <n>', 'port of the local API (default 1338)', parsePort)
    .option('--polo-port <n>', 'port the polods listen on (default 1337)', parsePort)
    .option('--group <addr>', 'group of requests that name none (default 224.0.0.112)', parseMulticastGroup)
    .option('--interface <addr>', 'local IPv4 address to query from (repeatable: one query per address)', repeatable(parseIPv4))
    .option('--timeout <ms>', 'deadline of requests that give none, in ms (default 1000)', parseNonNegativeInt)
    .option('--frame-size <bytes>', 'largest reply datagram (default 4096; 2048 suits the reference C++ binding)', parseFrameSize)
    .option('--key <file>', 'grid key file: queries signed, replies verified (repeatable: the first signs)', repeatable(parseKeyFile))
    .option('--auth <policy>', 'required (default with --key), preferred, sealed (as required) or off', parseAuth)
    .option('--watch-socket <path>', 'also stream watch events on this Unix socket (one JSON request line, then one JSON event per line)')
    .option('--registry <urls>', 'etcd client URLs of the grid registry, comma-separated: answers include other subnets'))
    .option('--metrics <addr:port>', 'serve Prometheus metrics on http://ADDR:PORT/metrics (e.g. 127.0.0.1:9464; default off)')
    .option('--max-requests <n>', `requests served at once; more get {"Error": "busy"} (default ${MAX_IN_FLIGHT})`, parseMaxRequests)
    .option(
      '--max-requests-per-client <n>',
      `requests of one client (one uid) served at once; more get {"Error": "busy"} (default ${MAX_IN_FLIGHT_PER_CLIENT})`,
      parseMaxRequests,
    )
    .addOption(logLevelOption())
    .addOption(logFormatOption())
    .addHelpText('after', EXIT_CODES)
    .action(async (flags: MarcodFlags) => {
      exit = await serve(flags, io);
    });
  const failed = await runProgram(program, argv, io);
  return failed ?? exit;
}

function serve(flags: MarcodFlags, io: CliIo): Promise<number> {
  const load = (warn: (message: string) => void): MarcoConfig => {
    const config = loadMarcoConfig({ ...(flags.config !== undefined && { file: flags.config }), overrides: overrides(flags), warn });
    return flags.frameSize === undefined ? config : { ...config, frameSize: flags.frameSize };
  };
  const deps = {
    ...(flags.maxRequests !== undefined && { maxInFlight: flags.maxRequests }),
    ...(flags.maxRequestsPerClient !== undefined && { maxInFlightPerClient: flags.maxRequestsPerClient }),
    ...(flags.watchSocket !== undefined && { watchSocket: flags.watchSocket }),
  };
  return serveDaemon('marcod', io, load, (config, logger) => runMarcod(config, logger, deps), flags.logFormat);
}

function overrides(flags: MarcodFlags): MarcoOverrides {
  const level = flags.logLevel === undefined ? undefined : parseLogLevel(flags.logLevel);
  return {
    ...(flags.bind !== undefined && { bind: flags.bind }),
    ...(flags.port !== undefined && { marcoPort: flags.port }),
    ...(flags.poloPort !== undefined && { port: flags.poloPort }),
    ...(flags.group !== undefined && { group: flags.group }),
    ...(flags.interface && { interfaces: flags.interface }),
    ...(flags.timeout !== undefined && { timeoutMs: flags.timeout }),
    ...(level !== undefined && { logLevel: level }),
    ...(flags.metrics !== undefined && { metrics: flags.metrics }),
    ...(flags.registry !== undefined && { registry: flags.registry }),
    ...pickAccessFlags(flags),
    ...(flags.key !== undefined && { keys: flags.key }),
    ...(flags.auth !== undefined && { auth: flags.auth }),
  };
}

function parseFrameSize(value: string): number {
  const [min, max] = FRAME_SIZE_RANGE;
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && n <= max)) throw new FlagError(`expected a size in bytes from ${min} to ${max}.`);
  return n;
}

function parseMaxRequests(value: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= 65536)) throw new FlagError('expected a number of requests from 1 to 65536.');
  return n;
}


await runIfMain(import.meta.url, main);
