/**
 * Real Unix users for integration tests: created with a home, removed (home included) even when
 * a test failed. Names carry the caller's prefix and a per-run suffix, so two runs never share
 * or delete each other's users; word characters only, as the default verify_regexp wants.
 */
import { spawnSync } from 'node:child_process';
import { waitFor } from './wait.js';

/** A user made by {@link createUsers}. */
export interface TestUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

/** The per-run suffix of user names. */
export const RUN_TAG = String(process.pid % 100000);

/**
 * Runs an administration command (useradd, userdel, groupadd, …); retries while another process
 * holds the passwd lock. Returns its exit status; throws on failure unless `mayFail`.
 */
export async function admin(args: string[], mayFail = false): Promise<number | null> {
  const [cmd, ...rest] = args as [string, ...string[]];
  let status: number | null = null;
  let stderr = '';
  await waitFor(
    () => {
      const r = spawnSync(cmd, rest, { encoding: 'utf8' });
      status = r.status;
      stderr = r.stderr;
      // useradd/userdel exit 1 (10 for userdel) when /etc/passwd is locked by a concurrent run.
      return r.status === 0 || !/lock/i.test(r.stderr);
    },
    { what: `${args.join(' ')} to get the passwd lock`, timeoutMs: 15_000 },
  );
  if (status !== 0 && !mayFail) throw new Error(`${args.join(' ')} failed (${String(status)}): ${stderr}`);
  return status;
}

/** True when `name` is in the system's user (or group) database. */
export function exists(name: string, db: 'passwd' | 'group' = 'passwd'): boolean {
  return spawnSync('getent', [db, name]).status === 0;
}
const idOf = (flag: '-u' | '-g', name: string): number => Number(spawnSync('id', [flag, name], { encoding: 'utf8' }).stdout.trim());

/** The names {@link createUsers} gives: `<prefix><letter><RUN_TAG>` (a, b, …). */
export function userNames(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}${String.fromCharCode(97 + i)}${RUN_TAG}`);
}

/** Creates the users `names` with homes under /home (remove them with removeUsers, even on failure). */
export async function createUsers(names: readonly string[]): Promise<TestUser[]> {
  const users: TestUser[] = [];
  for (const name of names) {
    if (exists(name)) await admin(['userdel', '-r', name], true);
    const home = `/home/${name}`;
    await admin(['useradd', '-m', '-d', home, '-s', '/bin/sh', name]);
    users.push({ name, uid: idOf('-u', name), gid: idOf('-g', name), home });
  }
  return users;
}

/** Removes the users and their homes; never throws. */
export async function removeUsers(names: readonly string[]): Promise<void> {
  for (const name of names) if (exists(name)) await admin(['userdel', '-r', name], true);
}

/** Creates the group `name` afresh (remove it with removeGroup, even on failure). */
export async function createGroup(name: string): Promise<void> {
  await removeGroup(name);
  await admin(['groupadd', name]);
}

/** Removes the group `name` if it exists (after the users whose primary group it is); never throws. */
export async function removeGroup(name: string): Promise<void> {
  if (exists(name, 'group')) await admin(['groupdel', name], true);
}

/** Prefix of an argv that runs it as `user` (no supplementary groups), inside any namespace. */
export function asUser(user: TestUser): string[] {
  return ['setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--'];
}
