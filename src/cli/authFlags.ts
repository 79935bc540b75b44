/** The grid-authentication flags of marco and marcod (`--key FILE`, `--auth POLICY`). */
import { parseAuthPolicy, readGridKeyFile, type AuthPolicy, type GridKey } from '../auth/gridAuth.js';
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
