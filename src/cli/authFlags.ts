/** The grid-authentication flags of marco and marcod (`--key FILE`, `--auth POLICY`). */
import { parseAuthPolicy, readGridKeyFile, type AuthPolicy, type GridKey } from '../auth/gridAuth.js';
import type { FlagSpec } from './args.js';
import { FlagError } from './common.js';

/** `--key FILE`: the file is read now, so a bad one is a usage error naming it. */
export function parseKeyFile(file: string): GridKey {
  try {
    return readGridKeyFile(file);
  } catch (err) {
    throw new FlagError((err as Error).message);
  }
}

/** `--auth required|preferred|sealed|off`. */
export function parseAuth(value: string): AuthPolicy {
  try {
    return parseAuthPolicy(value, '--auth');
  } catch (err) {
    throw new FlagError((err as Error).message);
  }
}

/**
 * `--key FILE` (repeatable) and `--auth POLICY`, described for the command that takes them: one
 * spec for marco's queries (src/cli/marco.ts) and the live view's commands (WATCH_AUTH_FLAGS).
 */
export function authFlagSpecs(keyDescription: string, authDescription: string): readonly FlagSpec[] {
  return [
    { name: 'key', value: '<file>', description: keyDescription, parse: parseKeyFile, repeatable: true },
    { name: 'auth', value: '<policy>', description: authDescription, parse: parseAuth },
  ];
}

/** `--key` and `--auth` of the commands that follow the live view (`marco watch`, `marco dashboard`). */
export const WATCH_AUTH_FLAGS: readonly FlagSpec[] = authFlagSpecs(
  'grid key file: announcements and replies verified, queries signed (repeatable: the first signs, each verifies)',
  'required (default with --key): unsigned, forged or replayed announcements dropped; preferred: kept and marked unverified; sealed: as required; off',
);
