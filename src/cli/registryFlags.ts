/**
 * The grid-registry flags of `marco` and `marco dashboard` (`--registry URL[,URL…]`,
 * `--registry-user`, `--registry-password-file`, `--registry-cacert`, `--registry-cert`,
 * `--registry-key`; docs/operations.md, "Grids across subnets"), and the Marco options they make.
 */
import {
  ACCESS_SETTINGS,
  accessFlagName,
  firstAccessFlag,
  parseRegistryEndpoints,
  readRegistryAccess,
  type RegistryAccess,
  type RegistryAccessFlags,
} from '../config/registryConfig.js';
import type { MarcoOptions } from '../discovery/marco.js';
import { ConfigError } from '../errors.js';
import type { FlagSpec } from './args.js';
import { FlagError, oneLine, type CliIo } from './common.js';

export interface RegistryFlags extends RegistryAccessFlags {
  registry?: string[];
}

/** What each access flag is for, in the help. */
const ACCESS_HELP: Readonly<Record<(typeof ACCESS_SETTINGS)[number]['field'], string>> = {
  user: 'etcd user of the registry (etcd authentication; with --registry-password-file)',
  passwordFile: "file whose first line is the etcd user's password",
  cacert: "CA certificate (PEM) that signed etcd's certificate, for https endpoints",
  cert: 'client certificate (PEM) for etcd, with --registry-key',
  key: "the client certificate's private key (PEM)",
};

/** The flags of access to etcd, the same on every command (polod and marcod add them to their own parsers). */
export const REGISTRY_ACCESS_FLAGS: readonly FlagSpec[] = ACCESS_SETTINGS.map((setting) => ({
  name: accessFlagName(setting).slice(2),
  value: setting.field === 'user' ? '<name>' : '<file>',
  description: ACCESS_HELP[setting.field],
}));

export const REGISTRY_FLAGS: readonly FlagSpec[] = [
  {
    name: 'registry',
    value: '<urls>',
    description: 'etcd client URLs of the grid registry, comma-separated: nodes of other subnets are included',
    parse: parseRegistryFlag,
  },
  ...REGISTRY_ACCESS_FLAGS,
];

/** `--registry URL[,URL…]`: etcd endpoints, checked as in the config files. */
function parseRegistryFlag(value: string): string[] {
  try {
    return parseRegistryEndpoints(value, '--registry');
  } catch (err) {
    throw new FlagError(`expected etcd URLs http://HOST:PORT[,…] (${(err as Error).message}).`);
  }
}

/**
 * `--registry-user` with `--registry-password-file` (both or neither, the file readable), and the
 * TLS files (each readable and what it should be; a certificate with its key).
 */
function registryAccessOf(flags: RegistryFlags): RegistryAccess {
  try {
    const access = readRegistryAccess({}, flags);
    const flagged = firstAccessFlag(flags);
    if (flagged !== undefined && flags.registry === undefined) throw new FlagError(`${flagged} needs --registry`);
    return access;
  } catch (err) {
    if (err instanceof ConfigError) throw new FlagError(err.message);
    throw err;
  }
}

/**
 * The Marco options of the flags. A registry that cannot be read is one warning line on stderr
 * (`command: warning: registry … not read (…): LAN answers only`), once per command: what is
 * shown is then the LAN's alone. Throws FlagError for a bad user, password or TLS file.
 */
export function registryOptions(flags: RegistryFlags, io: CliIo, command: string): Pick<MarcoOptions, 'registry' | 'registryUser' | 'registryTls' | 'onRegistryError'> {
  const { user, tls } = registryAccessOf(flags);
  const registry = flags.registry;
  if (registry === undefined) return {};
  let warned = false;
  return {
    registry,
    ...(user !== undefined && { registryUser: user }),
    ...(tls !== undefined && { registryTls: tls }),
    onRegistryError: (err) => {
      if (warned) return;
      warned = true;
      io.stderr.write(`${command}: warning: registry ${registry.join(',')} not read (${oneLine(err.message)}): LAN answers only\n`);
    },
  };
}
