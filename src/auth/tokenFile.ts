/**
 * The per-user token file `~user/.polo/token` (docs/protocol.md §5).
 *
 * polod runs as root and writes into a home folder the user controls, so everything here
 * assumes the user is hostile: they may plant symlinks (`~/.polo -> /etc`), FIFOs or hard links,
 * and swap things while polod works. Hence: every folder is opened once and pinned (see
 * `openPinnedDir`) with O_NOFOLLOW, ownership is changed only through file descriptors, files
 * are created O_EXCL|O_NOFOLLOW and renamed into place (which replaces a planted symlink rather
 * than writing through it), and existing files are opened O_NOFOLLOW|O_NONBLOCK. The folder
 * itself is opened by src/system/userFolder.ts, as for the user's service files.
 */
import { sameText } from './token.js';
import { constants as fsc } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { InvalidArgumentError, IoError } from '../errors.js';
import type { UserInfo } from '../system/userDb.js';
import { withUserDir } from '../system/userFolder.js';
import { isErrno, writeFileAtomic } from '../util/atomicFile.js';
import { resolveInside, segmentProblem, type PinnedDir } from '../util/safePath.js';
import { DEFAULT_USER_DIR } from '../registry/userId.js';

/** The folder in a user's home that holds the token and the user's service files. */
export { DEFAULT_USER_DIR };
/** Name of the token file inside that folder. */
export const TOKEN_FILE_NAME = 'token';

/**
 * The home polod writes this process's token into: the user database's, which os.userInfo()
 * reads for the effective uid (else $HOME). $HOME can point elsewhere (sudo -E, test harnesses),
 * and then Request-token would write a file the client never reads.
 */
export function currentUserHome(): string {
  try {
    const home = os.userInfo().homedir;
    if (home !== '') return home;
  } catch {
    // No user database entry for this uid (some containers).
  }
  return os.homedir();
}

/** Where the token of the user running this process is (`~/.polo/token`). */
export function currentUserTokenFile(userDirName: string = DEFAULT_USER_DIR): string {
  return path.join(currentUserHome(), userDirName, TOKEN_FILE_NAME);
}
/** Largest token file read; real tokens are under 60 bytes. */
const MAX_TOKEN_FILE_BYTES = 4096;

function checkDirName(userDirName: string): void {
  const problem = segmentProblem(userDirName);
  if (problem !== undefined) {
    throw new InvalidArgumentError(`invalid user folder name ${JSON.stringify(String(userDirName))}: ${problem}`);
  }
}

/** What an existing token file holds and whether its metadata is right. */
interface ExistingToken {
  content: string;
  /** Owned by the user, no group/other bits, one link: nothing to repair. */
  sound: boolean;
}

/**
 * Reads the token file in `dir` without following a symlink or blocking on a FIFO. Undefined if
 * there is no readable regular file of sane size (such an entry is simply replaced).
 */
async function readExisting(dir: PinnedDir, user: UserInfo): Promise<ExistingToken | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(dir.child(TOKEN_FILE_NAME), fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK | fsc.O_NOCTTY);
  } catch {
    return undefined; // ENOENT, ELOOP (a symlink), ...: write a fresh file.
  }
  try {
    const st = await handle.stat();
    if (!st.isFile() || st.size > MAX_TOKEN_FILE_BYTES) return undefined;
    const content = await handle.readFile('utf8');
    return { content, sound: st.uid === user.uid && (st.mode & 0o077) === 0 && st.nlink === 1 };
  } finally {
    await handle.close();
  }
}

/**
 * Makes sure `~user/<userDirName>/token` holds `token`: the folder is created if missing (mode
 * 0700, owned by the user), the file is written atomically with mode 0600, owned by uid:gid.
 * Returns 'existed' if the file already held this token, and 'created' if it was missing or
 * held anything else (e.g. a reference AES token, or a token under an old secret), which is
 * replaced. Because tokens are deterministic, holding the freshly issued token is the same as
 * verifying for this uid. A right token with wrong owner or mode is rewritten ('existed').
 * Symlinks planted by the user are never followed, written through or chowned.
 * @throws InvalidArgumentError for a bad folder name or token; UnsafeFileError if the home or
 * folder is a symlink, not owned as required, or writable by others; IoError on other failures.
 */
export async function writeTokenFile(
  user: UserInfo,
  token: string,
  userDirName: string = DEFAULT_USER_DIR,
): Promise<'created' | 'existed'> {
  checkDirName(userDirName);
  if (typeof token !== 'string' || token === '' || token.length > MAX_TOKEN_FILE_BYTES) {
    throw new InvalidArgumentError('token must be a non-empty string');
  }
  const outcome = await withUserDir(user, userDirName, true, async (dir) => {
    const existing = await readExisting(dir, user);
    const same = existing !== undefined && sameText(existing.content.trim(), token.trim());
    if (same && existing.sound) return 'existed' as const;
    // Written without a newline, like the reference: bindings send the content verbatim.
    await writeFileAtomic(dir.child(TOKEN_FILE_NAME), token, { mode: 0o600, uid: user.uid, gid: user.gid });
    return same ? ('existed' as const) : ('created' as const);
  });
  // withUserDir creates the folder, so it always runs the function.
  if (outcome === undefined) throw new IoError(`cannot open ${path.join(user.home, userDirName)}`);
  return outcome;
}

/**
 * Client side: the content of `<home>/<userDirName>/token`, verbatim (bindings send it as it
 * is; it is opaque to them), or null if there is no token file yet (send `Request-token`).
 * @throws InvalidArgumentError for a bad folder name; IoError if the file exists but cannot be
 * read, is not a regular file, or is too large to be a token.
 */
export async function readTokenFile(home: string, userDirName: string = DEFAULT_USER_DIR): Promise<string | null> {
  checkDirName(userDirName);
  const file = resolveInside(path.join(home, userDirName), TOKEN_FILE_NAME);
  let handle: FileHandle;
  try {
    handle = await open(file, fsc.O_RDONLY | fsc.O_NONBLOCK | fsc.O_NOCTTY);
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return null;
    throw new IoError(`cannot read token file ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new IoError(`token file ${file} is not a regular file`);
    if (st.size > MAX_TOKEN_FILE_BYTES) throw new IoError(`token file ${file} is too large (${st.size} bytes)`);
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}
