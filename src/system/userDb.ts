/**
 * Unix users and groups, as polod needs them to authenticate binding callers.
 *
 * Node has no getpwnam(), so lookups run `getent` (NSS-aware: /etc/passwd, LDAP, sssd...) with
 * execFile, never a shell, and only with validated names or numeric ids. Requests come from
 * local clients at datagram rate, so answers (including "no such user") are cached for a while
 * in a bounded cache, concurrent lookups of one key share one process, and the number of
 * getent processes running or waiting at once is capped.
 */
import { execFile } from 'node:child_process';
import { IoError } from '../errors.js';

/** A user account, as getpwnam()/getpwuid() describe it. */
export interface UserInfo {
  readonly name: string;
  readonly uid: number;
  /** Primary group id. */
  readonly gid: number;
  /** Home folder. */
  readonly home: string;
  /** Login shell. */
  readonly shell: string;
}

/** What polod asks about users; `UserDb` answers from the system, `fakeUserDirectory` in tests. */
export interface UserDirectory {
  /** The user called `name`, or null if there is none (or the name is not a valid user name). */
  lookupName(name: string): Promise<UserInfo | null>;
  /** The user with this uid, or null if there is none (or `uid` is not a valid uid). */
  lookupUid(uid: number): Promise<UserInfo | null>;
  /** Names of the user's primary and supplementary groups, primary first. */
  groupsOf(user: UserInfo): Promise<string[]>;
  /** Whether the user may publish root services: uid 0, or a member of the superuser group. */
  isSuperuser(user: UserInfo): Promise<boolean>;
}

/** The Unix group whose members may publish root services (as in the reference). */
export const DEFAULT_SUPERUSER_GROUP = 'marcopolo';

const USER_NAME_RE = /^[a-z_][a-z0-9_.-]*[$]?$/;
/** Longest user name accepted (useradd's limit). */
export const MAX_USER_NAME_LENGTH = 32;
/** Highest valid uid or gid: (uid_t)-1 means "none" to the kernel. */
export const MAX_ID = 0xfffffffe;

/**
 * Whether `name` is a valid user or group name: `^[a-z_][a-z0-9_.-]*[$]?$`, 1-32 characters.
 * Nothing else is ever handed to getent: no option-like or numeric strings, no wildcards.
 */
export function isValidUserName(name: unknown): name is string {
  return typeof name === 'string' && name.length <= MAX_USER_NAME_LENGTH && USER_NAME_RE.test(name);
}

/** Whether `id` is a valid uid or gid (an integer in 0..4294967294). */
export function isValidId(id: unknown): id is number {
  return typeof id === 'number' && Number.isInteger(id) && id >= 0 && id <= MAX_ID;
}

/** What one getent run printed and how it exited (0 found, 2 some key not found). */
export interface GetentResult {
  code: number;
  stdout: string;
}

/** Runs `getent <database> -- <keys...>`; an injectable seam for tests. */
export type GetentRunner = (database: 'passwd' | 'group' | 'initgroups', keys: readonly string[]) => Promise<GetentResult>;

/** Options of `execGetent`. */
export interface ExecGetentOptions {
  /** The getent executable (default: `getent` from PATH). */
  command?: string;
  /** Kill getent after this long (a hung LDAP server must not hang polod); default 5000 ms. */
  timeoutMs?: number;
}

/**
 * The real getent runner: execFile (no shell), C locale, bounded output and run time.
 * Resolves with the exit code (0 found, 2 not found, others failures); rejects with IoError if
 * getent cannot be run, is killed, or prints too much.
 */
export function execGetent(options: ExecGetentOptions = {}): GetentRunner {
  const command = options.command ?? 'getent';
  const timeout = options.timeoutMs ?? 5000;
  return (database, keys) =>
    new Promise((resolve, reject) => {
      execFile(
        command,
        [database, '--', ...keys],
        {
          timeout,
          maxBuffer: 8 * 1024 * 1024,
          encoding: 'utf8',
          env: { ...process.env, LC_ALL: 'C' },
        },
        (err, stdout) => {
          if (err === null) return resolve({ code: 0, stdout });
          // A non-zero exit shows up as a numeric code; anything else means getent did not run
          // to completion (ENOENT, timeout kill, output overflow).
          if (typeof err.code === 'number' && err.killed !== true) return resolve({ code: err.code, stdout });
          reject(new IoError(`getent ${database} failed: ${err.message}`, { cause: err }));
        },
      );
    });
}

/** Options of `UserDb`. */
export interface UserDbOptions {
  /** Group whose members are superusers (default `marcopolo`). */
  superuserGroup?: string;
  /** How long answers, found or not, are reused (default 30 000 ms). */
  ttlMs?: number;
  /** Most cached answers (default 1024); the least recently used go first. */
  maxEntries?: number;
  /** Clock for the cache, in ms (default Date.now). */
  now?: () => number;
  /** How lookups run getent (default `execGetent()`). */
  getent?: GetentRunner;
  /** Most getent processes at once (default 4). */
  maxConcurrent?: number;
  /** Most lookups waiting for a slot (default 256); beyond that lookups fail at once. */
  maxQueued?: number;
}

/** A string-keyed cache with a size bound (least recently used evicted) and a time to live. */
class TtlCache<V> {
  readonly #entries = new Map<string, { value: V; expires: number }>();
  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number,
  ) {}

  get(key: string): { value: V } | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    this.#entries.delete(key);
    if (entry.expires <= this.now()) return undefined;
    this.#entries.set(key, entry); // Map order is recency order.
    return { value: entry.value };
  }

  set(key: string, value: V): void {
    this.#entries.delete(key);
    this.#entries.set(key, { value, expires: this.now() + this.ttlMs });
    while (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) break;
      this.#entries.delete(oldest.value);
    }
  }

  get size(): number {
    return this.#entries.size;
  }
}

/** Caps how many tasks run at once and how many may wait. */
class Limiter {
  #active = 0;
  readonly #waiting: (() => void)[] = [];
  constructor(
    private readonly maxActive: number,
    private readonly maxWaiting: number,
  ) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#active < this.maxActive) {
      this.#active++;
    } else {
      if (this.#waiting.length >= this.maxWaiting) {
        throw new IoError('too many user lookups in progress; try again later');
      }
      // The finishing task hands its slot over (#active unchanged), so a newcomer arriving
      // before this waiter resumes cannot take it too.
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
    try {
      return await task();
    } finally {
      const next = this.#waiting.shift();
      if (next !== undefined) next();
      else this.#active--;
    }
  }
}

/** Parses one `name:pw:uid:gid:gecos:home:shell` line. */
function parsePasswd(line: string): UserInfo | undefined {
  const f = line.split(':');
  if (f.length !== 7) return undefined;
  const [name, , uidText, gidText, , home, shell] = f as [string, string, string, string, string, string, string];
  const uid = /^[0-9]{1,10}$/.test(uidText) ? Number(uidText) : NaN;
  const gid = /^[0-9]{1,10}$/.test(gidText) ? Number(gidText) : NaN;
  if (!isValidId(uid) || !isValidId(gid) || name === '') return undefined;
  // Frozen: the same object is handed to every caller that hits the cache.
  return Object.freeze({ name, uid, gid, home, shell });
}

/** Parses one `name:pw:gid:member,member` line. */
function parseGroup(line: string): { name: string; gid: number; members: string[] } | undefined {
  const f = line.split(':');
  if (f.length !== 4) return undefined;
  const [name, , gidText, members] = f as [string, string, string, string];
  const gid = /^[0-9]{1,10}$/.test(gidText) ? Number(gidText) : NaN;
  if (!isValidId(gid) || name === '') return undefined;
  return { name, gid, members: members === '' ? [] : members.split(',') };
}

function lines(stdout: string): string[] {
  return stdout.split('\n').filter((l) => l.trim() !== '');
}

/**
 * The system's users and groups through getent, cached (see the module comment).
 * Cached answers can be up to `ttlMs` old: a user added to the superuser group is recognised
 * within 30 s by default.
 */
export class UserDb implements UserDirectory {
  readonly #superuserGroup: string;
  readonly #getent: GetentRunner;
  readonly #cache: TtlCache<unknown>;
  readonly #inFlight = new Map<string, Promise<unknown>>();
  readonly #limiter: Limiter;

  constructor(options: UserDbOptions = {}) {
    this.#superuserGroup = options.superuserGroup ?? DEFAULT_SUPERUSER_GROUP;
    this.#getent = options.getent ?? execGetent();
    this.#cache = new TtlCache(options.ttlMs ?? 30_000, options.maxEntries ?? 1024, options.now ?? Date.now);
    this.#limiter = new Limiter(options.maxConcurrent ?? 4, options.maxQueued ?? 256);
  }

  /** Number of cached answers (for tests and metrics). */
  get cacheSize(): number {
    return this.#cache.size;
  }

  /**
   * The cached answer for `key`, or the answer of the lookup already running for it, or a new
   * lookup. Failures (getent missing, timed out, overloaded) are not cached: the next request
   * tries again.
   */
  #cached<T>(key: string, load: () => Promise<T>): Promise<T> {
    const hit = this.#cache.get(key);
    if (hit !== undefined) return Promise.resolve(hit.value as T);
    const running = this.#inFlight.get(key);
    if (running !== undefined) return running as Promise<T>;
    const p = this.#limiter
      .run(load)
      .then((value) => {
        this.#cache.set(key, value);
        return value;
      })
      .finally(() => this.#inFlight.delete(key));
    this.#inFlight.set(key, p);
    return p;
  }

  async #passwd(key: string, matches: (u: UserInfo) => boolean): Promise<UserInfo | null> {
    const { code, stdout } = await this.#getent('passwd', [key]);
    if (code === 2) return null;
    if (code !== 0) throw new IoError(`getent passwd ${key} exited with code ${code}`);
    for (const line of lines(stdout)) {
      const user = parsePasswd(line);
      if (user !== undefined && matches(user)) return user;
    }
    return null;
  }

  /** {@inheritDoc UserDirectory.lookupName} */
  lookupName(name: string): Promise<UserInfo | null> {
    if (!isValidUserName(name)) return Promise.resolve(null);
    return this.#cached(`name:${name}`, () => this.#passwd(name, (u) => u.name === name));
  }

  /** {@inheritDoc UserDirectory.lookupUid} */
  lookupUid(uid: number): Promise<UserInfo | null> {
    if (!isValidId(uid)) return Promise.resolve(null);
    return this.#cached(`uid:${uid}`, () => this.#passwd(String(uid), (u) => u.uid === uid));
  }

  /**
   * {@inheritDoc UserDirectory.groupsOf}
   * Groups without a name (a gid missing from the group database) are left out. A user whose
   * name is not valid gets only its primary group, if that has a name.
   */
  groupsOf(user: UserInfo): Promise<string[]> {
    if (!isValidId(user.gid)) return Promise.resolve([]);
    return this.#cached(`groups:${user.name}:${user.gid}`, () => this.#loadGroups(user)).then((g) => [...g]);
  }

  async #loadGroups(user: UserInfo): Promise<string[]> {
    const gids = new Set<number>([user.gid]);
    const names = new Map<number, string>();
    if (isValidUserName(user.name)) {
      // getgrouplist() through NSS; lists supplementary groups only (getent passes no base gid).
      const init = await this.#getent('initgroups', [user.name]);
      if (init.code === 0) {
        const fields = (lines(init.stdout)[0] ?? '').trim().split(/\s+/).slice(1);
        for (const f of fields) {
          const gid = /^[0-9]{1,10}$/.test(f) ? Number(f) : NaN;
          if (isValidId(gid)) gids.add(gid);
        }
      } else if (init.code !== 2) {
        // No initgroups database (musl's getent): scan the group database's member lists.
        const all = await this.#getent('group', []);
        if (all.code !== 0) throw new IoError(`getent group exited with code ${all.code}`);
        for (const line of lines(all.stdout)) {
          const g = parseGroup(line);
          if (g === undefined) continue;
          if (g.gid === user.gid || g.members.includes(user.name)) {
            gids.add(g.gid);
            names.set(g.gid, g.name);
          }
        }
      }
    }
    const unnamed = [...gids].filter((gid) => !names.has(gid));
    if (unnamed.length > 0) {
      // One process for all of them; exit code 2 just means some gid has no name.
      const res = await this.#getent('group', unnamed.map(String));
      if (res.code !== 0 && res.code !== 2) throw new IoError(`getent group exited with code ${res.code}`);
      for (const line of lines(res.stdout)) {
        const g = parseGroup(line);
        if (g !== undefined && gids.has(g.gid) && !names.has(g.gid)) names.set(g.gid, g.name);
      }
    }
    const result: string[] = [];
    for (const gid of gids) {
      const name = names.get(gid);
      if (name !== undefined && !result.includes(name)) result.push(name);
    }
    return result;
  }

  /** {@inheritDoc UserDirectory.isSuperuser} */
  async isSuperuser(user: UserInfo): Promise<boolean> {
    if (user.uid === 0) return true;
    return (await this.groupsOf(user)).includes(this.#superuserGroup);
  }
}

/** A user of `fakeUserDirectory`: an account plus the names of all its groups. */
export interface FakeUser extends UserInfo {
  /** Names of the user's groups, primary included (default: none). */
  readonly groups?: readonly string[];
}

/**
 * An in-memory UserDirectory for component tests: no processes, no cache, same rules
 * (invalid names and ids are not found; uid 0 or the superuser group makes a superuser).
 */
export function fakeUserDirectory(
  users: readonly FakeUser[],
  options: { superuserGroup?: string } = {},
): UserDirectory {
  const superuserGroup = options.superuserGroup ?? DEFAULT_SUPERUSER_GROUP;
  const strip = (u: FakeUser): UserInfo => ({ name: u.name, uid: u.uid, gid: u.gid, home: u.home, shell: u.shell });
  const byName = (name: string): FakeUser | undefined => users.find((u) => u.name === name);
  const groups = (user: UserInfo): string[] => [...(byName(user.name)?.groups ?? [])];
  return {
    lookupName: async (name) => {
      const u = isValidUserName(name) ? byName(name) : undefined;
      return u === undefined ? null : strip(u);
    },
    lookupUid: async (uid) => {
      const u = isValidId(uid) ? users.find((x) => x.uid === uid) : undefined;
      return u === undefined ? null : strip(u);
    },
    groupsOf: async (user) => groups(user),
    isSuperuser: async (user) => user.uid === 0 || groups(user).includes(superuserGroup),
  };
}
