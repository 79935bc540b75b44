/**
 * marcod's (and the marco client's) configuration: built-in defaults (the reference's), then
 * `[marco]` of marco.cfg, then the command-line flags. Validated here, once; every error is one
 * line naming the file (or flag), the key and the value.
 */
import path from 'node:path';
import type { LevelWithSilent } from 'pino';
import { parseRegistryEndpoints, readRegistryAccess, takeRegistryAccessKey, type RegistryAccessChoices, type RegistryAccessFlags, type RegistryTls, type RegistryUser } from './registryConfig.js';
import { ConfigError } from '../errors.js';
import { DEFAULT_GROUP, DEFAULT_TIMEOUT_MS, MAX_DATAGRAM, POLO_PORT } from '../protocol/limits.js';
import { parseAuthPolicy, readGridKeyFile, type AuthPolicy, type GridKey } from '../auth/gridAuth.js';
import { readIniFile, type IniSection } from './iniFile.js';
import { keyFileSpecs } from './authConfig.js';
import { parseMetricsAddress, type MetricsAddress } from '../metrics/address.js';
import {
  checkPort,
  checkTimeoutMs,
  parseGroup,
  parseInteger,
  parseIPv4,
  parseLevel,
  parsePort,
  parseTimeoutMs,
} from './values.js';

/** Where marcod looks for its config when no `--config` is given (the reference's path). */
export const DEFAULT_MARCO_CONFIG_FILE = '/etc/marcopolo/marco/marco.cfg';
/** marcod's local API port (the reference's `marcoport`). */
export const MARCO_PORT = 1338;
/** Largest UDP payload over IPv4: the upper bound of `frame_size`. */
const MAX_UDP_PAYLOAD = 65507;

/** Everything marcod and the marco client need, validated. */
export interface MarcoConfig {
  /** Address marcod's local API binds to (`binding_iface`, `--bind`). */
  bindAddress: string;
  /** marcod's local API port (`marcoport`, marcod's `--port`). */
  marcoPort: number;
  /** Group queried when a request names none (`multicast_addr`, `--group`). */
  group: string;
  /** Port the polods listen on (`poloport` or its alias `port`, marcod's `--polo-port`). */
  poloPort: number;
  /** Collection window of a query when the request gives none, ms (`timeout`, `--timeout`). */
  timeoutMs: number;
  /** Receive buffer the reference used (`frame_size`); replies beyond it are dropped. */
  frameSize: number;
  /** Local IPv4 addresses to send queries from; empty = the system's default route. */
  interfaces: string[];
  /** pino level (`logging_level`, `--log-level`). */
  logLevel: LevelWithSilent;
  /** Where marcod serves Prometheus metrics (`metrics`, `--metrics`); none when undefined. */
  metrics?: MetricsAddress;
  /** etcd endpoints of the grid registry (`registry`, `--registry`); none when undefined. */
  registry?: string[];
  /** etcd user of the registry (`registry_user` + `registry_password_file`, or the flags). */
  registryUser?: RegistryUser;
  /** TLS files for https endpoints (`registry_cacert`, `registry_cert`, `registry_key`, or the flags). */
  registryTls?: RegistryTls;
  /** Grid keys (`key_files`, `--key`): the first signs, each verifies (docs/protocol.md §2.4). */
  keys: GridKey[];
  /** `auth`, `--auth`; undefined: `required` with keys. */
  auth?: AuthPolicy;
}

/** Command-line values, already typed; they win over the file. */
export interface MarcoOverrides extends RegistryAccessFlags {
  /** `--bind`: the local API address (0.0.0.0 allowed: the admin's choice to expose it). */
  readonly bind?: string;
  /** marcod's `--port`: the local API port. */
  readonly marcoPort?: number;
  /** marcod's `--polo-port`: the Polo port queries go to (the file's `poloport`/`port`). */
  readonly port?: number;
  /** `--group`. */
  readonly group?: string;
  /** `--timeout`, ms. */
  readonly timeoutMs?: number;
  /** `--log-level`. */
  readonly logLevel?: LevelWithSilent;
  /** `--interface` (repeatable). An empty list counts as not given. */
  readonly interfaces?: readonly string[];
  /** marcod's `--metrics HOST:PORT`. */
  readonly metrics?: string;
  /** `--registry URL[,URL…]`. */
  readonly registry?: string;
  /** `--key` (repeatable, already read): replaces the file's key_files. An empty list counts as not given. */
  readonly keys?: readonly GridKey[];
  /** `--auth`. */
  readonly auth?: AuthPolicy;
}

/** Arguments of {@link loadMarcoConfig}. */
export interface LoadMarcoConfigOptions {
  /** `--config`: when given, the file must exist. */
  readonly file?: string;
  /** Flag values. */
  readonly overrides?: MarcoOverrides;
  /** Receives non-fatal remarks (unknown keys, a file without `[marco]`). */
  readonly warn: (message: string) => void;
  /** The file read when `file` is not given (tests point it elsewhere). */
  readonly defaultFile?: string;
}

/** Keys the reference read that have no effect here, accepted silently. */
const IGNORED_KEYS: ReadonlySet<string> = new Set(['debug', 'logging_dir', 'logging_file', 'logging_format']);

/** The built-in configuration, used when no config file exists. */
export function defaultMarcoConfig(): MarcoConfig {
  return {
    // 127.0.1.1 is where every binding sends its requests, but only Linux has it as loopback.
    bindAddress: process.platform === 'linux' ? '127.0.1.1' : '127.0.0.1',
    marcoPort: MARCO_PORT,
    group: DEFAULT_GROUP,
    poloPort: POLO_PORT,
    timeoutMs: DEFAULT_TIMEOUT_MS,
    frameSize: MAX_DATAGRAM,
    interfaces: [],
    logLevel: 'info',
    keys: [],
  };
}

/**
 * Builds marcod's configuration: defaults, then `[marco]` of the config file, then the flags.
 * A missing default file means built-in defaults; a missing `--config` file is an error.
 * Throws ConfigError (one line naming file or flag, key and value) on the first bad value.
 */
export function loadMarcoConfig(options: LoadMarcoConfigOptions): MarcoConfig {
  const file = path.resolve(options.file ?? options.defaultFile ?? DEFAULT_MARCO_CONFIG_FILE);
  const read = readIniFile(file);
  if (!read.found && options.file !== undefined) throw new ConfigError(`${file}: no such config file`);
  const config = defaultMarcoConfig();
  const access: RegistryAccessChoices = {};
  const choices: FileChoices = {};
  if (read.found) {
    const section = read.sections.get('marco');
    if (section) applySection(config, section, file, options.warn, access, choices);
    else options.warn(`${file}: no [marco] section, using built-in defaults`);
  }
  const o = options.overrides ?? {};
  // --key replaces the file's list: the files key_files names are not even read.
  if (choices.keyFiles !== undefined && !(o.keys !== undefined && o.keys.length > 0)) config.keys = readKeyFiles(choices.keyFiles);
  applyOverrides(config, o);
  if (config.auth !== undefined && config.auth !== 'off' && config.keys.length === 0) {
    const where = o.auth !== undefined ? '--auth' : `${file}: [marco] auth`;
    throw new ConfigError(`${where}: '${config.auth}' needs a grid key (key_files in [marco], or --key FILE)`);
  }
  const { user, tls } = readRegistryAccess(access, o);
  if (user !== undefined) config.registryUser = user;
  if (tls !== undefined) config.registryTls = tls;
  return config;
}

/** What `[marco]` gave that is applied after it, once the flags are known (as poloConfig.ts does). */
interface FileChoices {
  /** key_files: the files, resolved against the config file's folder, and where they were given. */
  keyFiles?: { readonly files: readonly string[]; readonly where: string };
}

function applySection(
  config: MarcoConfig,
  section: IniSection,
  file: string,
  warn: (m: string) => void,
  access: RegistryAccessChoices,
  choices: FileChoices,
): void {
  const where = (key: string) => `${file}: [marco] ${key}`;
  for (const [key, value] of section) {
    switch (key) {
      case 'marcoport':
        config.marcoPort = parsePort(value, where(key));
        break;
      case 'binding_iface':
        config.bindAddress = parseIPv4(value, where(key), { allowAny: true });
        break;
      case 'multicast_addr':
        config.group = parseGroup(value, where(key));
        break;
      case 'poloport':
      case 'port':
        config.poloPort = parsePort(value, where(key));
        break;
      case 'timeout':
        config.timeoutMs = parseTimeoutMs(value, where(key));
        break;
      case 'frame_size':
        config.frameSize = parseInteger(value, where(key), 64, MAX_UDP_PAYLOAD);
        break;
      case 'logging_level':
        config.logLevel = parseLevel(value, where(key));
        break;
      case 'metrics':
        config.metrics = parseMetricsAddress(value, where(key));
        break;
      case 'registry':
        config.registry = parseRegistryEndpoints(value, where(key));
        break;
      case 'key_files':
        choices.keyFiles = { files: keyFiles(value, path.dirname(file), where(key)), where: where(key) };
        break;
      case 'auth':
        config.auth = parseAuthPolicy(value, where(key));
        break;
      default:
        if (!takeRegistryAccessKey(access, key, value, where(key), path.dirname(file)) && !IGNORED_KEYS.has(key)) warn(`${file}: unknown key '${key}' in [marco], ignored`);
    }
  }
  // The reference read both names for one setting; two different values mean a mistake.
  const polo = section.get('poloport');
  const alias = section.get('port');
  if (polo !== undefined && alias !== undefined && parsePort(polo, where('poloport')) !== parsePort(alias, where('port'))) {
    throw new ConfigError(`${file}: [marco] poloport '${polo}' and port '${alias}' disagree (they name the same setting)`);
  }
}

function applyOverrides(config: MarcoConfig, o: MarcoOverrides): void {
  if (o.bind !== undefined) config.bindAddress = parseIPv4(o.bind, '--bind', { allowAny: true });
  if (o.marcoPort !== undefined) config.marcoPort = checkPort(o.marcoPort, '--port');
  if (o.port !== undefined) config.poloPort = checkPort(o.port, '--polo-port');
  if (o.group !== undefined) config.group = parseGroup(o.group, '--group');
  if (o.timeoutMs !== undefined) config.timeoutMs = checkTimeoutMs(o.timeoutMs, '--timeout');
  if (o.logLevel !== undefined) config.logLevel = parseLevel(o.logLevel, '--log-level');
  if (o.metrics !== undefined) config.metrics = parseMetricsAddress(o.metrics, '--metrics');
  if (o.registry !== undefined) config.registry = parseRegistryEndpoints(o.registry, '--registry');
  if (o.keys !== undefined && o.keys.length > 0) config.keys = [...o.keys];
  if (o.auth !== undefined) config.auth = o.auth;
  if (o.interfaces !== undefined && o.interfaces.length > 0) {
    config.interfaces = [...new Set(o.interfaces.map((a) => parseIPv4(a, '--interface')))];
  }
}

/**
 * `key_files = FILE FILE …` (spaces or commas; relative to the config file's folder, as polod's:
 * authConfig.ts keyFileSpecs). marcod's keys are those of every group it asks; `GROUP=FILE`
 * (polod's per-group keys) is refused rather than applied to every group.
 */
function keyFiles(value: string, base: string, where: string): string[] {
  const specs = keyFileSpecs(value, base);
  if (specs.length === 0) throw new ConfigError(`${where}: expected one or more key files`);
  return specs.map((s) => {
    if (s.group !== undefined) throw new ConfigError(`${where}: '${s.written}': per-group keys (GROUP=FILE) are polod's; marcod's keys serve every group`);
    return s.file;
  });
}

/** Reads the key files key_files named; errors name the file and where it was given. */
function readKeyFiles(choice: NonNullable<FileChoices['keyFiles']>): GridKey[] {
  return choice.files.map((f) => {
    try {
      return readGridKeyFile(f);
    } catch (err) {
      throw new ConfigError(`${choice.where}: ${(err as Error).message}`);
    }
  });
}
