/**
 * polod's configuration: built-in defaults (the reference's), then `[polo]` of polo.cfg, then
 * the command-line flags. Everything is validated here, once; every error is one line naming
 * the file (or flag), the key and the value.
 */
import { hostname as osHostname } from 'node:os';
import path from 'node:path';
import type { LevelWithSilent } from 'pino';
import { ConfigError, FrameTooLargeError } from '../errors.js';
import { encodeReply } from '../protocol/codec.js';
import { isJsonObject, type JsonObject } from '../protocol/json.js';
import { DEFAULT_GROUPS, MAX_DATAGRAM, POLO_PORT, POLO_TTL } from '../protocol/limits.js';
import { DEFAULT_QUOTA } from '../publish/quota.js';
import { DEFAULT_INTERFACE_POLL_MS } from '../transport/interfaces.js';
import { DEFAULT_SERVER_LIMITS } from '../publish/server.js';
import { readIniFile, type IniSection } from './iniFile.js';
import type { GuardSettings, UnicastScope } from '../responder/guard.js';
import { applyGuardKey, DEFAULT_GUARD_SETTINGS, parseUnicastScope } from './guardConfig.js';
import { keyFileSpecs, parseAuthPolicy, readKeySpecs, type AuthSettings } from './authConfig.js';
import type { AuthPolicy } from '../auth/gridAuth.js';
import {
  checkPort,
  parseGroup,
  parseGroupList,
  parseInteger,
  parseIPv4,
  parseJsonObject,
  parseLevel,
  parseNonEmpty,
  parsePort,
  parseRegExp,
  showValue,
  valueError,
} from './values.js';
import { DEFAULT_USER_DIR, DEFAULT_USER_PATTERN } from '../registry/userId.js';
import { DEFAULT_SUPERUSER_GROUP } from '../system/userDb.js';
import { parseMetricsAddress, type MetricsAddress } from '../metrics/address.js';
import {
  DEFAULT_LEASE_SECONDS,
  firstAccessFlag,
  parseLeaseSeconds,
  parseRegistryAddress,
  parseRegistryEndpoints,
  readRegistryAccess,
  takeRegistryAccessKey,
  type RegistryAccessChoices,
  type RegistryAccessFlags,
  type RegistrySettings,
} from './registryConfig.js';

// The validators, re-exported so the CLIs can check flag values with the same rules and messages.
export {
  checkPort,
  parseGroup,
  parseGroupList,
  parseInteger,
  parseIPv4,
  parseJsonObject,
  parseLevel,
  parsePort,
  parseRegExp,
  parseTimeoutMs,
} from './values.js';

/** Bounds of interface_poll_ms: faster is wasted work, slower misses the ~5 s promise by far. */
const MIN_INTERFACE_POLL_MS = 100;
const MAX_INTERFACE_POLL_MS = 60_000;

/** Largest per-user quota accepted (services or bytes). */
const MAX_QUOTA = 2 ** 31 - 1;

/** Where polod looks for its config when no `--config` is given (the reference's path). */
export const DEFAULT_POLO_CONFIG_FILE = '/etc/marcopolo/polo/polo.cfg';
/** The reference's default verify_regexp: what makes an id a user service `user:service`. */
export const DEFAULT_VERIFY_REGEXP = DEFAULT_USER_PATTERN;

/** Everything polod needs to start, validated. */
export interface PoloConfig {
  /** Multicast groups served (`multicast_addrs`, `--group`). */
  groups: string[];
  /** UDP port of every group (`port`, `--port`). */
  port: number;
  /**
   * Local IPv4 addresses to join the groups on (`interfaces`, `--interface`); empty = every
   * up, multicast-capable, non-loopback interface, followed as interfaces come and go.
   */
  interfaces: string[];
  /** How often the interface list is read when following every interface, in ms (`interface_poll_ms`). */
  interfacePollMs: number;
  /** Node params sent in every Polo reply (`polo_params`, `--params`, `--hostname`). */
  nodeParams: JsonObject;
  /** Root service files (`services_dir`, `--services-dir`). */
  servicesDir: string;
  /** Per-user service folder, relative to each user's home (`polo_user_dir`). */
  userDir: string;
  /** What makes an id a user service `user:service` (`verify_regexp`). */
  verifyRegexp: RegExp;
  /** Group whose members may publish root services, besides root (`superuser_group`). */
  superuserGroup: string;
  /** Multicast TTL of polod's socket, in hops (`hops`). */
  ttl: number;
  /** Group-join retries; negative = retry forever (`retries`). */
  joinRetries: number;
  /** pino level (`logging_level`, `--log-level`). */
  logLevel: LevelWithSilent;
  /** TCP port of the Polo binding API on 127.0.0.1 (`polo_binding_port`). */
  bindingPort: number;
  /** Where the token secret lives (`secret_file`). */
  secretFile: string;
  /** Folder for polod's own files when not run from /etc (`--state-dir`). */
  stateDir?: string;
  /** Abuse limits (`unicast_scope`, `reply_*`, … ; `--unicast-scope`): src/config/guardConfig.ts. */
  guard: GuardSettings;
  /** Grid keys and policy (`key_files`, `auth`; `--key`, `--auth`); undefined = no keys. */
  auth?: AuthSettings;
  /** Most services one user may have offered (`max_services_per_user`, `--max-services-per-user`). */
  maxServicesPerUser: number;
  /** Most bytes of one user's services (`max_service_bytes_per_user`, `--max-service-bytes-per-user`). */
  maxServiceBytesPerUser: number;
  /** Publish API connections at once (`publish_max_connections`). */
  publishMaxConnections: number;
  /** Publish API connections of one identified user (`publish_max_connections_per_user`). */
  publishMaxConnectionsPerUser: number;
  /** Idle publish API connections are closed after this many ms (`publish_idle_timeout`, in seconds). */
  publishIdleTimeoutMs: number;
  /** Where to serve Prometheus metrics (`metrics`, `--metrics`); none when undefined. */
  metrics?: MetricsAddress;
  /** The grid registry (`registry`, `registry_lease`, `registry_address`; `--registry…`); none when undefined. */
  registry?: RegistrySettings;
}

/** Command-line values, already typed (see the re-exported validators); they win over the file. */
export interface PoloOverrides extends RegistryAccessFlags {
  /** `--group` (repeatable): replaces the file's list. An empty list counts as not given. */
  readonly groups?: readonly string[];
  /** `--port`. */
  readonly port?: number;
  /** `--metrics HOST:PORT`, checked here so a bad value names the flag. */
  readonly metrics?: string;
  /** `--binding-port`: TCP port of the TLS publish API on 127.0.0.1. */
  readonly bindingPort?: number;
  /** `--interface` (repeatable). An empty list counts as not given. */
  readonly interfaces?: readonly string[];
  /** `--interface-poll-ms`. */
  readonly interfacePollMs?: number;
  /** `--params`: replaces the file's polo_params. */
  readonly params?: JsonObject;
  /** `--hostname`: sets `hostname` in the node params, after `--params`. */
  readonly hostname?: string;
  /** `--services-dir` (relative to the working directory). */
  readonly servicesDir?: string;
  /** `--log-level`. */
  readonly logLevel?: LevelWithSilent;
  /** `--state-dir`: default home of the services folder and the secret file. */
  readonly stateDir?: string;
  /** `--unicast-scope`. */
  readonly unicastScope?: UnicastScope;
  /** `--key FILE` or `--key GROUP=FILE` (repeatable): replaces the file's key_files. */
  readonly keys?: readonly string[];
  /** `--auth`. */
  readonly auth?: AuthPolicy;
  /** `--max-services-per-user`. */
  readonly maxServicesPerUser?: number;
  /** `--max-service-bytes-per-user`. */
  readonly maxServiceBytesPerUser?: number;
  /** `--registry URL[,URL…]`: etcd endpoints of the grid registry. */
  readonly registry?: string;
  /** `--registry-lease SECONDS`. */
  readonly registryLease?: string;
  /** `--registry-address ADDR`. */
  readonly registryAddress?: string;
}

/** Arguments of {@link loadPoloConfig}. */
export interface LoadPoloConfigOptions {
  /** `--config`: when given, the file must exist. */
  readonly file?: string;
  /** Flag values. */
  readonly overrides?: PoloOverrides;
  /** Receives non-fatal remarks (unknown keys, a file without `[polo]`). */
  readonly warn: (message: string) => void;
  /** The file read when `file` is not given (tests point it elsewhere). */
  readonly defaultFile?: string;
}

/**
 * Keys the reference read that have no effect here; accepted silently so its shipped files load
 * without noise. `multicast_addr_fallback` was only the (buggy) group of join retries.
 */
const IGNORED_KEYS: ReadonlySet<string> = new Set([
  'multicast_addr_fallback',
  'frame_size',
  'debug',
  'logging_dir',
  'logging_file',
  'logging_format',
  'group_name',
  'secret_rename',
  'conf_dir',
]);

/** The built-in configuration, used when no config file exists. */
export function defaultPoloConfig(): PoloConfig {
  return {
    groups: [...DEFAULT_GROUPS],
    port: POLO_PORT,
    interfaces: [],
    interfacePollMs: DEFAULT_INTERFACE_POLL_MS,
    nodeParams: { hostname: osHostname() },
    servicesDir: '/etc/marcopolo/polo/services',
    userDir: DEFAULT_USER_DIR,
    verifyRegexp: new RegExp(DEFAULT_VERIFY_REGEXP),
    superuserGroup: DEFAULT_SUPERUSER_GROUP,
    ttl: POLO_TTL,
    joinRetries: -10,
    // The reference defaulted to DEBUG, which logs every datagram: too chatty for a daemon.
    logLevel: 'info',
    bindingPort: 1390,
    secretFile: '/etc/marcopolo/polo/secret',
    guard: DEFAULT_GUARD_SETTINGS,
    maxServicesPerUser: DEFAULT_QUOTA.maxServices,
    maxServiceBytesPerUser: DEFAULT_QUOTA.maxBytes,
    publishMaxConnections: DEFAULT_SERVER_LIMITS.maxConnections,
    publishMaxConnectionsPerUser: DEFAULT_SERVER_LIMITS.maxConnectionsPerUser,
    publishIdleTimeoutMs: DEFAULT_SERVER_LIMITS.idleTimeoutMs,
  };
}

/**
 * Builds polod's configuration: defaults, then `[polo]` of the config file, then the flags.
 * A missing default file means built-in defaults; a missing `--config` file is an error.
 * Throws ConfigError (one line naming file or flag, key and value) on the first bad value.
 */
export function loadPoloConfig(options: LoadPoloConfigOptions): PoloConfig {
  const file = path.resolve(options.file ?? options.defaultFile ?? DEFAULT_POLO_CONFIG_FILE);
  const read = readIniFile(file);
  if (!read.found && options.file !== undefined) throw new ConfigError(`${file}: no such config file`);
  const config = defaultPoloConfig();
  let fromFile: FileChoices = { servicesDir: false, secretFile: false, paramsWhere: undefined, keys: undefined, auth: undefined, registryAccess: {} };
  if (read.found) {
    const section = read.sections.get('polo');
    if (section) fromFile = applySection(config, section, file, options.warn);
    else options.warn(`${file}: no [polo] section, using built-in defaults`);
  }
  applyOverrides(config, options.overrides ?? {}, fromFile);
  return config;
}

/** Which settings the file gave explicitly (they win over `--state-dir`'s defaults). */
interface FileChoices {
  servicesDir: boolean;
  secretFile: boolean;
  /** Where polo_params came from, for the reply-size error. */
  paramsWhere: string | undefined;
  /** key_files (paths resolved against the file's folder) and where they were given. */
  keys: { specs: string[]; where: string } | undefined;
  auth: { policy: AuthPolicy; where: string } | undefined;
  /** registry, registry_lease and registry_address, applied with the flags (applyRegistry). */
  registryEndpoints?: string[];
  registryLease?: number;
  registryAddress?: string;
  /** registry_user, registry_password_file and the TLS files. */
  registryAccess: RegistryAccessChoices;
}

function applySection(config: PoloConfig, section: IniSection, file: string, warn: (m: string) => void): FileChoices {
  // The reference made services_dir relative to its conf dir; ours is the file's folder.
  const base = path.dirname(file);
  const choices: FileChoices = { servicesDir: false, secretFile: false, paramsWhere: undefined, keys: undefined, auth: undefined, registryAccess: {} };
  for (const [key, value] of section) {
    const where = `${file}: [polo] ${key}`;
    switch (key) {
      case 'multicast_addrs':
        config.groups = parseGroupList(value, where);
        break;
      case 'port':
        config.port = parsePort(value, where);
        break;
      case 'interfaces':
        config.interfaces = unique(
          value
            .split(/[\s,]+/)
            .filter((a) => a !== '')
            .map((a) => parseIPv4(a, where)),
        );
        break;
      case 'interface_poll_ms':
        config.interfacePollMs = parseInteger(value, where, MIN_INTERFACE_POLL_MS, MAX_INTERFACE_POLL_MS);
        break;
      case 'polo_params':
        config.nodeParams = parseFileParams(value, where);
        choices.paramsWhere = where;
        break;
      case 'services_dir':
        config.servicesDir = path.resolve(base, parseNonEmpty(value, where));
        choices.servicesDir = true;
        break;
      case 'polo_user_dir':
        config.userDir = parseUserDir(value, where);
        break;
      case 'verify_regexp':
        config.verifyRegexp = parseRegExp(value, where);
        break;
      case 'superuser_group':
        config.superuserGroup = parseGroupName(value, where);
        break;
      case 'hops':
        config.ttl = parseInteger(value, where, 0, 255);
        break;
      case 'retries':
        config.joinRetries = parseInteger(value, where, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
        break;
      case 'logging_level':
        config.logLevel = parseLevel(value, where);
        break;
      case 'polo_binding_port':
        config.bindingPort = parsePort(value, where);
        break;
      case 'key_files':
        choices.keys = { where, specs: keyFileSpecs(value, base).map((k) => k.spec) };
        break;
      case 'auth':
        choices.auth = { where, policy: parseAuthPolicy(value, where) };
        break;
      case 'secret_file':
        config.secretFile = path.resolve(base, parseNonEmpty(value, where));
        choices.secretFile = true;
        break;
      case 'max_services_per_user':
        config.maxServicesPerUser = parseInteger(value, where, 0, MAX_QUOTA);
        break;
      case 'max_service_bytes_per_user':
        config.maxServiceBytesPerUser = parseInteger(value, where, 0, MAX_QUOTA);
        break;
      case 'publish_max_connections':
        config.publishMaxConnections = parseInteger(value, where, 1, 65536);
        break;
      case 'publish_max_connections_per_user':
        config.publishMaxConnectionsPerUser = parseInteger(value, where, 1, 65536);
        break;
      case 'metrics':
        config.metrics = parseMetricsAddress(value, where);
        break;
      case 'registry':
        choices.registryEndpoints = parseRegistryEndpoints(value, where);
        break;
      case 'registry_lease':
        choices.registryLease = parseLeaseSeconds(value, where);
        break;
      case 'registry_address':
        choices.registryAddress = parseRegistryAddress(value, where);
        break;
      case 'publish_idle_timeout':
        config.publishIdleTimeoutMs = parseInteger(value, where, 1, 86_400) * 1000;
        break;
      default: {
        const guard = applyGuardKey(config.guard, key, value, where);
        if (guard) config.guard = guard;
        else if (!takeRegistryAccessKey(choices.registryAccess, key, value, where, base) && !IGNORED_KEYS.has(key)) {
          warn(`${file}: unknown key '${key}' in [polo], ignored`);
        }
      }
    }
  }
  return choices;
}

function applyOverrides(config: PoloConfig, o: PoloOverrides, fromFile: FileChoices): void {
  let paramsWhere = fromFile.paramsWhere ?? 'node params';
  if (o.groups !== undefined && o.groups.length > 0) {
    config.groups = unique(o.groups.map((g) => parseGroup(g, '--group')));
  }
  if (o.port !== undefined) config.port = checkPort(o.port, '--port');
  if (o.metrics !== undefined) config.metrics = parseMetricsAddress(o.metrics, '--metrics');
  if (o.bindingPort !== undefined) config.bindingPort = checkPort(o.bindingPort, '--binding-port');
  applyRegistry(config, o, fromFile);
  if (o.interfaces !== undefined && o.interfaces.length > 0) {
    config.interfaces = unique(o.interfaces.map((a) => parseIPv4(a, '--interface')));
  }
  if (o.interfacePollMs !== undefined) {
    config.interfacePollMs = parseInteger(String(o.interfacePollMs), '--interface-poll-ms', MIN_INTERFACE_POLL_MS, MAX_INTERFACE_POLL_MS);
  }
  if (o.params !== undefined) {
    // Typed already, but a library caller may hand over anything: check the shape once more.
    if (!isJsonObject(o.params)) throw valueError('--params', String(o.params), 'is not a JSON object');
    config.nodeParams = o.params;
    paramsWhere = '--params';
  }
  if (o.hostname !== undefined) {
    config.nodeParams = { ...config.nodeParams, hostname: parseNonEmpty(o.hostname, '--hostname') };
    paramsWhere = `${paramsWhere} with --hostname`;
  }
  if (o.logLevel !== undefined) config.logLevel = parseLevel(o.logLevel, '--log-level');
  if (o.stateDir !== undefined) {
    const stateDir = path.resolve(parseNonEmpty(o.stateDir, '--state-dir'));
    config.stateDir = stateDir;
    if (!fromFile.servicesDir) config.servicesDir = path.join(stateDir, 'services');
    if (!fromFile.secretFile) config.secretFile = path.join(stateDir, 'secret');
  }
  if (o.unicastScope !== undefined) {
    config.guard = { ...config.guard, unicastScope: parseUnicastScope(o.unicastScope, '--unicast-scope') };
  }
  if (o.maxServicesPerUser !== undefined) {
    config.maxServicesPerUser = parseInteger(String(o.maxServicesPerUser), '--max-services-per-user', 0, MAX_QUOTA);
  }
  if (o.maxServiceBytesPerUser !== undefined) {
    config.maxServiceBytesPerUser = parseInteger(String(o.maxServiceBytesPerUser), '--max-service-bytes-per-user', 0, MAX_QUOTA);
  }
  if (o.servicesDir !== undefined) config.servicesDir = path.resolve(parseNonEmpty(o.servicesDir, '--services-dir'));
  applyAuth(config, o, fromFile);
  checkPoloReplySize(config.nodeParams, paramsWhere);
}

/** Reads the key files (flags replace the file's list) and sets the policy. */
function applyAuth(config: PoloConfig, o: PoloOverrides, fromFile: FileChoices): void {
  const policy = o.auth !== undefined ? parseAuthPolicy(o.auth, '--auth') : fromFile.auth?.policy;
  const flagged = o.keys !== undefined && o.keys.length > 0;
  const specs = flagged ? { specs: [...(o.keys ?? [])], where: '--key' } : fromFile.keys;
  if (specs === undefined || specs.specs.length === 0) return;
  config.auth = readKeySpecs(specs.specs, specs.where, policy);
}

/** The registry: endpoints from the file or `--registry`, then the lease and address (flag over file). */
function applyRegistry(config: PoloConfig, o: PoloOverrides, fromFile: FileChoices): void {
  const endpoints = o.registry !== undefined ? parseRegistryEndpoints(o.registry, '--registry') : fromFile.registryEndpoints;
  const lease = o.registryLease !== undefined ? parseLeaseSeconds(o.registryLease, '--registry-lease') : fromFile.registryLease;
  const address = o.registryAddress !== undefined ? parseRegistryAddress(o.registryAddress, '--registry-address') : fromFile.registryAddress;
  const flagged = o.registryLease !== undefined ? '--registry-lease' : o.registryAddress !== undefined ? '--registry-address' : firstAccessFlag(o);
  if (endpoints === undefined) {
    if (flagged !== undefined) throw new ConfigError(`${flagged} needs --registry (or registry in the config file)`);
    return;
  }
  const access = readRegistryAccess(fromFile.registryAccess, o);
  config.registry = { endpoints, leaseSeconds: lease ?? DEFAULT_LEASE_SECONDS, ...(address !== undefined && { address }), ...access };
}

/** polo_params from the file, with a hint when `ini` cut the value at a `#` or `;`. */
function parseFileParams(value: string, where: string): JsonObject {
  try {
    return parseJsonObject(value, where);
  } catch (err) {
    if (err instanceof ConfigError && !value.trimEnd().endsWith('}') && value.trimStart().startsWith('{')) {
      throw new ConfigError(
        `${err.message}; note that ';' and '#' start a comment in the config file: write them as '\\;' and '\\#'`,
      );
    }
    throw err;
  }
}

/**
 * A Polo reply that does not fit one datagram could never be sent (the codec refuses it), so
 * node params that large are refused at startup rather than at the first Marco query.
 */
function checkPoloReplySize(params: JsonObject, where: string): void {
  try {
    encodeReply({ command: 'Polo', params });
  } catch (err) {
    if (!(err instanceof FrameTooLargeError)) throw err;
    throw new ConfigError(
      `${where}: ${showValue(JSON.stringify(params))} makes a ${err.size}-byte Polo reply, ` +
        `over the ${MAX_DATAGRAM}-byte datagram limit`,
    );
  }
}

/**
 * polo_user_dir is joined to every user's home; an absolute path or `..` would point every user
 * at the same folder, or outside their home.
 */
function parseUserDir(value: string, where: string): string {
  const dir = parseNonEmpty(value, where).trim();
  if (path.isAbsolute(dir) || dir.split(/[\\/]+/).includes('..')) {
    throw valueError(where, value, "is not a folder inside the user's home (write a relative path such as .polo)");
  }
  return path.normalize(dir);
}

/** A Unix group name as useradd and groupadd take it (what `getent group` is asked for). */
function parseGroupName(value: string, where: string): string {
  const name = value.trim();
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(name)) throw valueError(where, value, 'is not a group name (lowercase letters, digits, _ and -; at most 32)');
  return name;
}

function unique(items: string[]): string[] {
  return [...new Set(items)];
}
