/**
 * What the daemon commands (polod, marcod) share after their flags are parsed: load the
 * configuration (a bad value is one line and exit 2), make the logger, pass on the warnings,
 * run until stopped (a start failure is one line and exit 3).
 */
import { InvalidArgumentError as FlagError, Option } from 'commander';
import type { LevelWithSilent } from 'pino';
import { ConfigError } from '../errors.js';
import { createLogger, LOG_FORMATS, LOG_LEVELS, parseLogLevel, type LogFormat, type Logger } from '../util/log.js';
import { ExitCode, oneLine, type CliIo } from './common.js';
import { REGISTRY_ACCESS_FLAGS } from './registryFlags.js';

/** Adds the flags of access to etcd (src/cli/registryFlags.ts), as marco has them, to a daemon's command. */
export function addRegistryAccessOptions<C extends { addOption(option: Option): C }>(command: C): C {
  for (const f of REGISTRY_ACCESS_FLAGS) command.addOption(new Option(`--${f.name} ${f.value}`, f.description));
  return command;
}

/** `--log-level LEVEL`, checked when parsed; the value is mapped by parseLogLevel. */
export function logLevelOption(): Option {
  return new Option('--log-level <level>', 'fatal, error, warn, info, debug or trace').argParser((value: string) => {
    if (parseLogLevel(value) === undefined) throw new FlagError(`expected one of ${LOG_LEVELS.join(', ')}.`);
    return value;
  });
}

/** `--log-format FORMAT`: json, text, or auto (text on a terminal or under journald). */
export function logFormatOption(): Option {
  return new Option(
    '--log-format <format>',
    'json (one object per line), text (a line per event), or auto: text on a terminal or under journald, else json',
  )
    .choices(LOG_FORMATS)
    .default('auto');
}

/**
 * Loads the configuration with `load` (which reports non-fatal remarks through `warn`), then
 * runs the daemon with `run` until it stops. Returns the command's exit code.
 */
export async function serveDaemon<C extends { logLevel: LevelWithSilent }>(
  name: string,
  io: CliIo,
  load: (warn: (message: string) => void) => C,
  run: (config: C, logger: Logger) => Promise<void>,
  logFormat: LogFormat = 'auto',
): Promise<number> {
  const warnings: string[] = [];
  let config: C;
  try {
    config = load((w) => void warnings.push(w));
  } catch (err) {
    // A bad configuration value: one line naming the file, key and value, exit 2.
    if (err instanceof ConfigError) {
      io.stderr.write(`${name}: ${oneLine(err.message)}\n`);
      return ExitCode.USAGE;
    }
    throw err;
  }
  const logger = createLogger({ level: config.logLevel, name, format: logFormat });
  for (const warning of warnings) logger.warn(warning);
  try {
    await run(config, logger);
    return ExitCode.OK;
  } catch (err) {
    io.stderr.write(`${name}: ${oneLine(err instanceof Error ? err.message : String(err))}\n`);
    return ExitCode.RUNTIME;
  }
}
