#!/usr/bin/env -S node --max-semi-space-size=1
/**
 * `polod`: the Polo daemon. Reads polo.cfg (flags win), serves every configured group, reloads
 * the service files on SIGUSR1 or SIGHUP, and stops cleanly on SIGTERM or SIGINT.
 *
 * The installed command runs with V8's young generation capped at 1 MB per semi-space (the line
 * above): polod allocates little per query, and the default 8 MB semi-spaces were a third of
 * its private memory (RssAnon) with a few services. See BENCHMARKS.md, "polod memory".
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError as FlagError } from 'commander';
import { ConfigError } from '../errors.js';
import { DEFAULT_POLO_CONFIG_FILE, loadPoloConfig, type PoloConfig, type PoloOverrides } from '../config/poloConfig.js';
import { checkPolod, formatCheckReport } from '../daemon/check.js';
import { runPolod } from '../daemon/polod.js';
import type { Logger } from '../util/log.js';
import type { JsonObject } from '../protocol/json.js';
import { parseLogLevel } from '../util/log.js';
import {
  ExitCode,
  oneLine,
  packageVersion,
  runIfMain,
  parseIPv4,
  parseMulticastGroup,
  parsePort,
  prepareProgram,
  repeatable,
  runProgram,
  type CliIo,
} from './common.js';
import { addRegistryAccessOptions, logFormatOption, logLevelOption, serveDaemon } from './daemonCommand.js';
import { pickAccessFlags, type RegistryAccessFlags } from '../config/registryConfig.js';
import type { LogFormat } from '../util/log.js';

interface PolodFlags extends RegistryAccessFlags {
  config?: string;
  servicesDir?: string;
  group?: string[];
  port?: number;
  bindingPort?: number;
  interface?: string[];
  interfacePollMs?: number;
  params?: JsonObject;
  hostname?: string;
  logLevel?: string;
  metrics?: string;
  logFormat?: LogFormat;
  stateDir?: string;
  unicastScope?: string;
  key?: string[];
  auth?: string;
  maxServicesPerUser?: number;
  maxServiceBytesPerUser?: number;
  check?: boolean;
  registry?: string;
  registryLease?: string;
  registryAddress?: string;
}

const EXIT_CODES = `
--check reads the configuration and every service file (the services folder and each user's
~/.polo), prints what would be served in each group and every problem (naming the file), and
exits without binding any socket or writing any file: 0 when there is no problem, 2 otherwise.

Exit codes:
  0  stopped by SIGTERM or SIGINT (--check: no problem found)
  2  usage, or a bad value in a flag or the configuration file (one line names it); an explicit
     --services-dir that does not exist (--check: any problem found)
  3  runtime failure (a socket could not be bound, the publish API port 127.0.0.1:1390 is in use, …)

Signals: SIGUSR1 or SIGHUP re-read the service files (services published at run time are kept).`;

/** Runs polod with `argv` (the arguments after the command name); resolves when it stops. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  let exit: number = ExitCode.OK;
  const program = addRegistryAccessOptions(prepareProgram(new Command('polod'), io)
    .version(packageVersion())
    .description('Answer MarcoPolo discovery queries for the services this node offers.')
    .option('--config <file>', 'configuration file (default /etc/marcopolo/polo/polo.cfg, if present)')
    .option('--services-dir <dir>', 'folder of service files')
    .option('--group <addr>', 'multicast group to serve (repeatable)', repeatable(parseMulticastGroup))
    .option('--port <n>', 'UDP port of every group (default 1337)', parsePort)
    .option('--binding-port <n>', 'TCP port of the TLS publish API on 127.0.0.1 (default 1390)', parsePort)
    .option('--interface <addr>', 'local IPv4 address to join and send on (repeatable; default: every multicast interface, followed)', repeatable(parseIPv4))
    .option('--interface-poll-ms <n>', 'how often the interface list is read when serving every interface (default 2000)', parseCount)
    .option('--params <json>', 'node params of the Polo reply, a JSON object', parseParams)
    .option('--hostname <name>', 'the hostname in the node params')
    .option('--registry <urls>', 'etcd client URLs of the grid registry, comma-separated (http://192.0.2.5:2379,…): grids across subnets')
    .option('--registry-lease <seconds>', 'lease of the registry entries: a dead node leaves within it (2-10, default 10)')
    .option('--registry-address <addr>', 'IPv4 address registered for this node (default: the first --interface, else the first non-loopback address)'))
    .option('--metrics <addr:port>', 'serve Prometheus metrics on http://ADDR:PORT/metrics (e.g. 127.0.0.1:9464; default off)')
    .addOption(logLevelOption())
    .addOption(logFormatOption())
    .option(
      '--state-dir <dir>',
      "folder for polod's own files (services/, secret, certs/, polod.sock), for unprivileged runs",
    )
    .option('--key <file>', 'grid key file (repeatable: the first signs, every one verifies); GROUP=FILE for one group', repeatable((v: string) => v))
    .option('--auth <policy>', 'required (default with a key), preferred (unsigned peers answered, results marked), sealed (required, and params sent encrypted) or off')
    .option('--unicast-scope <scope>', "answer unicast queries from 'on-link' sources only (default) or from 'any'")
    .option('--max-services-per-user <n>', 'most services one user may offer (default 256; root has no quota)', parseCount)
    .option('--max-service-bytes-per-user <n>', "most bytes of one user's services, ids and params (default 1048576)", parseCount)
    .option('--check', 'validate the configuration and every service file, print what would be served, and exit')
    .addHelpText('after', EXIT_CODES)
    .action(async (flags: PolodFlags) => {
      exit = flags.check === true ? await check(flags, io) : await serve(flags, io);
    });
  const failed = await runProgram(program, argv, io);
  return failed ?? exit;
}

function serve(flags: PolodFlags, io: CliIo): Promise<number> {
  const load = (warn: (message: string) => void): PoloConfig => {
    const config = loadConfig(flags, warn);
    prepareStateDir(config);
    return config;
  };
  const run = async (config: PoloConfig, logger: Logger): Promise<void> => {
    try {
      await runPolod(config, logger);
    } catch (err) {
      throw withStateDirHint(err, config);
    }
  };
  return serveDaemon('polod', io, load, run, flags.logFormat);
}

/** The configuration, with the checks only the command line can make (folders must exist). */
function loadConfig(flags: PolodFlags, warn: (message: string) => void): PoloConfig {
  const config = loadPoloConfig({ ...(flags.config !== undefined && { file: flags.config }), overrides: overrides(flags), warn });
  // A folder named on the command line that is not there is a typo, not an empty folder: polod
  // would serve nothing, with one warning nobody reads.
  if (flags.servicesDir !== undefined) {
    if (!isFolder(config.servicesDir)) throw new ConfigError(`--services-dir ${config.servicesDir}: no such folder`);
  }
  return config;
}

function isFolder(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/**
 * `--state-dir` makes polod's own folder and, unless the services folder was chosen elsewhere,
 * its `services/`: a fresh state folder is a normal start, not a warning.
 */
function prepareStateDir(config: PoloConfig): void {
  if (config.stateDir === undefined) return;
  try {
    mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
    if (config.servicesDir === path.join(config.stateDir, 'services')) mkdirSync(config.servicesDir, { recursive: true, mode: 0o755 });
  } catch (err) {
    throw new ConfigError(`--state-dir ${config.stateDir}: cannot create it (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}

/**
 * A permission error on polod's system paths (/etc/marcopolo, /run/marcopolo) when not run as
 * root: the usual cause is a first try without sudo, and --state-dir is the way to run so.
 */
function withStateDirHint(err: unknown, config: PoloConfig): unknown {
  if (!(err instanceof Error) || config.stateDir !== undefined) return err;
  if (!/\b(EACCES|EPERM)\b|permission denied/i.test(err.message)) return err;
  return new Error(
    `${err.message}; polod keeps its files under /etc/marcopolo and /run/marcopolo: run it as root, ` +
      'or give --state-dir DIR (a folder you own) to run it unprivileged',
    { cause: err },
  );
}

/** `polod --check`: the report on stdout; exit 0 without problems, 2 with. */
async function check(flags: PolodFlags, io: CliIo): Promise<number> {
  const warnings: string[] = [];
  let config: PoloConfig;
  try {
    config = loadConfig(flags, (w) => void warnings.push(w));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.stderr.write(`polod: ${oneLine(err.message)}\n`);
    return ExitCode.USAGE;
  }
  const file = path.resolve(flags.config ?? DEFAULT_POLO_CONFIG_FILE);
  const source = flags.config !== undefined || existsSync(file) ? file : `built-in defaults (no ${file})`;
  const report = await checkPolod(config, warnings);
  io.stdout.write(formatCheckReport(config, source, report));
  return report.problems.length === 0 ? ExitCode.OK : ExitCode.USAGE;
}

function overrides(flags: PolodFlags): PoloOverrides {
  const level = flags.logLevel === undefined ? undefined : parseLogLevel(flags.logLevel);
  return {
    ...(flags.group && { groups: flags.group }),
    ...(flags.port !== undefined && { port: flags.port }),
    ...(flags.bindingPort !== undefined && { bindingPort: flags.bindingPort }),
    ...(flags.interface && { interfaces: flags.interface }),
    ...(flags.interfacePollMs !== undefined && { interfacePollMs: flags.interfacePollMs }),
    ...(flags.params && { params: flags.params }),
    ...(flags.hostname !== undefined && { hostname: flags.hostname }),
    ...(flags.servicesDir !== undefined && { servicesDir: flags.servicesDir }),
    ...(level !== undefined && { logLevel: level }),
    ...(flags.metrics !== undefined && { metrics: flags.metrics }),
    ...(flags.registry !== undefined && { registry: flags.registry }),
    ...(flags.registryLease !== undefined && { registryLease: flags.registryLease }),
    ...(flags.registryAddress !== undefined && { registryAddress: flags.registryAddress }),
    ...pickAccessFlags(flags),
    ...(flags.stateDir !== undefined && { stateDir: flags.stateDir }),
    ...(flags.unicastScope !== undefined && { unicastScope: flags.unicastScope as 'on-link' | 'any' }),
    ...(flags.key && { keys: flags.key }),
    ...(flags.auth !== undefined && { auth: flags.auth as 'required' | 'preferred' | 'sealed' | 'off' }),
    ...(flags.maxServicesPerUser !== undefined && { maxServicesPerUser: flags.maxServicesPerUser }),
    ...(flags.maxServiceBytesPerUser !== undefined && { maxServiceBytesPerUser: flags.maxServiceBytesPerUser }),
  };
}

function parseCount(value: string): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n > 2 ** 31 - 1) throw new FlagError('expected an integer from 0 to 2147483647.');
  return n;
}

function parseParams(value: string): JsonObject {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new FlagError('expected a JSON object, e.g. {"hostname":"node1"}.');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new FlagError('expected a JSON object, e.g. {"hostname":"node1"}.');
  }
  return parsed as JsonObject;
}


await runIfMain(import.meta.url, main);
