#!/usr/bin/env node
/**
 * `polod`: the Polo daemon. Reads polo.cfg (flags win), serves every configured group, reloads
 * the service files on SIGUSR1 or SIGHUP, and stops cleanly on SIGTERM or SIGINT.
 */
import { Command, InvalidArgumentError as FlagError } from 'commander';
import { loadPoloConfig, type PoloOverrides } from '../config/poloConfig.js';
import { runPolod } from '../daemon/polod.js';
import type { JsonObject } from '../protocol/json.js';
import { parseLogLevel } from '../util/log.js';
import {
  ExitCode,
  runIfMain,
  parseIPv4,
  parseMulticastGroup,
  parsePort,
  prepareProgram,
  repeatable,
  runProgram,
  type CliIo,
} from './common.js';
import { logLevelOption, serveDaemon } from './daemonCommand.js';

interface PolodFlags {
  config?: string;
  servicesDir?: string;
  group?: string[];
  port?: number;
  bindingPort?: number;
  interface?: string[];
  params?: JsonObject;
  hostname?: string;
  logLevel?: string;
  stateDir?: string;
  unicastScope?: string;
  key?: string[];
  auth?: string;
  maxServicesPerUser?: number;
  maxServiceBytesPerUser?: number;
}

const EXIT_CODES = `
Exit codes:
  0  stopped by SIGTERM or SIGINT
  2  usage, or a bad value in a flag or the configuration file (one line names it)
  3  runtime failure (a socket could not be bound, the publish API port 127.0.0.1:1390 is in use, …)

Signals: SIGUSR1 or SIGHUP re-read the service files (services published at run time are kept).`;

/** Runs polod with `argv` (the arguments after the command name); resolves when it stops. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  let exit: number = ExitCode.OK;
  const program = prepareProgram(new Command('polod'), io)
    .description('Answer MarcoPolo discovery queries for the services this node offers.')
    .option('--config <file>', 'configuration file (default /etc/marcopolo/polo/polo.cfg, if present)')
    .option('--services-dir <dir>', 'folder of service files')
    .option('--group <addr>', 'multicast group to serve (repeatable)', repeatable(parseMulticastGroup))
    .option('--port <n>', 'UDP port of every group (default 1337)', parsePort)
    .option('--binding-port <n>', 'TCP port of the TLS publish API on 127.0.0.1 (default 1390)', parsePort)
    .option('--interface <addr>', 'local IPv4 address to join and send on (repeatable)', repeatable(parseIPv4))
    .option('--params <json>', 'node params of the Polo reply, a JSON object', parseParams)
    .option('--hostname <name>', 'the hostname in the node params')
    .addOption(logLevelOption())
    .option(
      '--state-dir <dir>',
      "folder for polod's own files (services/, secret, certs/, polod.sock), for unprivileged runs",
    )
    .option('--key <file>', 'grid key file (repeatable: the first signs, every one verifies); GROUP=FILE for one group', repeatable((v: string) => v))
    .option('--auth <policy>', 'required (default with a key), preferred (unsigned peers answered, results marked) or off')
    .option('--unicast-scope <scope>', "answer unicast queries from 'on-link' sources only (default) or from 'any'")
    .option('--max-services-per-user <n>', 'most services one user may offer (default 256; root has no quota)', parseCount)
    .option('--max-service-bytes-per-user <n>', "most bytes of one user's services, ids and params (default 1048576)", parseCount)
    .addHelpText('after', EXIT_CODES)
    .action(async (flags: PolodFlags) => {
      exit = await serve(flags, io);
    });
  const failed = await runProgram(program, argv, io);
  return failed ?? exit;
}

function serve(flags: PolodFlags, io: CliIo): Promise<number> {
  return serveDaemon(
    'polod',
    io,
    (warn) => loadPoloConfig({ ...(flags.config !== undefined && { file: flags.config }), overrides: overrides(flags), warn }),
    runPolod,
  );
}

function overrides(flags: PolodFlags): PoloOverrides {
  const level = flags.logLevel === undefined ? undefined : parseLogLevel(flags.logLevel);
  return {
    ...(flags.group && { groups: flags.group }),
    ...(flags.port !== undefined && { port: flags.port }),
    ...(flags.bindingPort !== undefined && { bindingPort: flags.bindingPort }),
    ...(flags.interface && { interfaces: flags.interface }),
    ...(flags.params && { params: flags.params }),
    ...(flags.hostname !== undefined && { hostname: flags.hostname }),
    ...(flags.servicesDir !== undefined && { servicesDir: flags.servicesDir }),
    ...(level !== undefined && { logLevel: level }),
    ...(flags.stateDir !== undefined && { stateDir: flags.stateDir }),
    ...(flags.unicastScope !== undefined && { unicastScope: flags.unicastScope as 'on-link' | 'any' }),
    ...(flags.key && { keys: flags.key }),
    ...(flags.auth !== undefined && { auth: flags.auth as 'required' | 'preferred' | 'off' }),
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
