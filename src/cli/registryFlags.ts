/**
 * The grid-registry flags of `marco` and `marco dashboard` (`--registry URL[,URL…]`,
 * `--registry-user`, `--registry-password-file`; docs/operations.md, "Grids across subnets"), and
 * the Marco options they make.
 */
import { parseRegistryEndpoints, readRegistryUser, type RegistryUser } from '../config/registryConfig.js';
import type { MarcoOptions } from '../discovery/marco.js';
import { ConfigError } from '../errors.js';
import type { FlagSpec } from './args.js';
import { FlagError, oneLine, type CliIo } from './common.js';

export interface RegistryFlags {
  registry?: string[];
  registryUser?: string;
  registryPasswordFile?: string;
}

export const REGISTRY_FLAGS: readonly FlagSpec[] = [
  {
    name: 'registry',
    value: '<urls>',
    description: 'etcd client URLs of the grid registry, comma-separated: nodes of other subnets are included',
    parse: parseRegistryFlag,
  },
  { name: 'registry-user', value: '<name>', description: 'etcd user of the registry (with --registry-password-file)' },
  { name: 'registry-password-file', value: '<file>', description: "file whose first line is the etcd user's password" },
];

/** `--registry URL[,URL…]`: etcd endpoints, checked as in the config files. */
function parseRegistryFlag(value: string): string[] {
  try {
    return parseRegistryEndpoints(value, '--registry');
  } catch (err) {
    throw new FlagError(`expected etcd URLs http://HOST:PORT[,…] (${(err as Error).message}).`);
  }
}

/** `--registry-user` with `--registry-password-file`: both or neither, the file readable. */
function registryUserOf(flags: RegistryFlags): RegistryUser | undefined {
  try {
    const user = readRegistryUser(
      flags.registryUser === undefined ? undefined : { value: flags.registryUser, where: '--registry-user' },
      flags.registryPasswordFile === undefined ? undefined : { value: flags.registryPasswordFile, where: '--registry-password-file' },
    );
    if (user !== undefined && flags.registry === undefined) throw new FlagError('--registry-user needs --registry');
    return user;
  } catch (err) {
    if (err instanceof ConfigError) throw new FlagError(err.message);
    throw err;
  }
}

/**
 * The Marco options of the flags. A registry that cannot be read is one warning line on stderr
 * (`command: warning: registry … not read (…): LAN answers only`), once per command: what is
 * shown is then the LAN's alone. Throws FlagError for a bad user or password file.
 */
export function registryOptions(flags: RegistryFlags, io: CliIo, command: string): Pick<MarcoOptions, 'registry' | 'registryUser' | 'onRegistryError'> {
  const registryUser = registryUserOf(flags);
  const registry = flags.registry;
  if (registry === undefined) return {};
  let warned = false;
  return {
    registry,
    ...(registryUser !== undefined && { registryUser }),
    onRegistryError: (err) => {
      if (warned) return;
      warned = true;
      io.stderr.write(`${command}: warning: registry ${registry.join(',')} not read (${oneLine(err.message)}): LAN answers only\n`);
    },
  };
}
