/**
 * Grid keys and the auth policy of a daemon, from `--key FILE` / `--key GROUP=FILE` (repeatable)
 * and `--auth`, or `key_files` and `auth` in the config file (docs/operations.md,
 * "Authenticated grids"). Key files are read here, once; errors name the file.
 */
import path from 'node:path';
import { parseAuthPolicy, readGridKeyFile, type AuthPolicy, type GridKey } from '../auth/gridAuth.js';
import { parseGroup } from './values.js';

/** A daemon's keys: for all its groups, and for single groups. */
export interface AuthSettings {
  /** `required` by default when a key is given. */
  readonly policy: AuthPolicy;
  /** Keys of every group (the first signs). */
  readonly keys: readonly GridKey[];
  /** Keys of one group, which replace `keys` for it. */
  readonly groupKeys: ReadonlyMap<string, readonly GridKey[]>;
}

const GROUP_SPEC = /^(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|[0-9a-fA-F]*:[0-9a-fA-F:]*)=(.+)$/;

/** A key spec split: `GROUP=FILE` gives both, a bare `FILE` no group (the group is not checked here). */
export function splitKeySpec(spec: string): { readonly group?: string; readonly file: string } {
  const m = GROUP_SPEC.exec(spec);
  return m ? { group: m[1] as string, file: m[2] as string } : { file: spec };
}

/** One entry of `key_files`: as written, and split with its file resolved. */
export interface KeyFileSpec {
  /** The entry as written in the config file. */
  readonly written: string;
  /** `GROUP=FILE`'s group, unchecked (see {@link splitKeySpec}); undefined for a bare `FILE`. */
  readonly group?: string;
  /** The key file, resolved against the config file's folder. */
  readonly file: string;
  /** `GROUP=FILE` or `FILE` with the file resolved: a spec for {@link readKeySpecs}. */
  readonly spec: string;
}

/**
 * `key_files = SPEC SPEC …` of a config file (polod's polo.cfg, marcod's marco.cfg): specs split
 * on spaces and commas, each `FILE` or `GROUP=FILE` with FILE relative to `base` (the config
 * file's folder). Nothing is read here: a `--key` flag replaces the whole list, files unread.
 */
export function keyFileSpecs(value: string, base: string): KeyFileSpec[] {
  return value
    .split(/[\s,]+/)
    .filter((s) => s !== '')
    .map((written) => {
      const { group, file: named } = splitKeySpec(written);
      const file = path.resolve(base, named);
      return group === undefined ? { written, file, spec: file } : { written, group, file, spec: `${group}=${file}` };
    });
}

/** Reads `FILE` and `GROUP=FILE` specs (in order: the first key of each list signs). */
export function readKeySpecs(specs: readonly string[], where: string, policy?: AuthPolicy): AuthSettings {
  const keys: GridKey[] = [];
  const groupKeys = new Map<string, GridKey[]>();
  for (const spec of specs) {
    const { group: named, file } = splitKeySpec(spec);
    if (named !== undefined) {
      const group = parseGroup(named, where);
      const list = groupKeys.get(group) ?? [];
      list.push(readGridKeyFile(file));
      groupKeys.set(group, list);
    } else {
      keys.push(readGridKeyFile(file));
    }
  }
  return { policy: policy ?? 'required', keys, groupKeys };
}

/** The keys of `group`: its own when it has some, else the daemon's. */
export function keysOfGroup(auth: AuthSettings, group: string): readonly GridKey[] {
  const own = auth.groupKeys.get(group);
  return own !== undefined && own.length > 0 ? own : auth.keys;
}

/** Every key of the daemon, each once, the all-groups keys first (the unicast port's). */
export function allKeys(auth: AuthSettings): GridKey[] {
  const out: GridKey[] = [];
  for (const key of [...auth.keys, ...[...auth.groupKeys.values()].flat()]) if (!out.some((k) => k.id === key.id)) out.push(key);
  return out;
}

export { parseAuthPolicy };
