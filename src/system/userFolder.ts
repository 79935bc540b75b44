/**
 * Opening a user's `~/.polo` (their service files and token file) as root. The user controls
 * everything under their home, so the folder is reached one pinned level at a time (see
 * `openPinnedDir`): a `~/.polo` swapped for a symlink to `/etc` is refused, never followed, and a
 * missing one is created by the user (src/system/userFolderCreate.ts), never owned by root.
 * The one home of these rules for the publish store and the token file.
 */
import path from 'node:path';
import { IoError, MarcoPoloError, UnsafeFileError } from '../errors.js';
import type { UserInfo } from './userDb.js';
import { createFolderAsUser } from './userFolderCreate.js';
import { isErrno, sweepTemporaryFiles } from '../util/atomicFile.js';
import { openPinnedDir, segmentProblem, type PinnedDir } from '../util/safePath.js';

/**
 * Mode of a `.polo` folder polod creates. 0700 rather than the reference's 0755: it holds the
 * token and the user's own service files, nobody else needs to list or read it (polod reads
 * it as root), and a closed folder also hides the token file's existence and size.
 */
const USER_DIR_MODE = 0o700;

/**
 * Opens the user's home, pinned. Its last component may be a symlink (the administrator's
 * choice: the home's parent belongs to root), but the home must belong to the user: polod
 * refuses to create `.polo` folders in system folders such as `/bin` (the home of `bin`), which
 * anybody could otherwise trigger by requesting tokens for every system account.
 */
async function openUserHome(user: UserInfo): Promise<PinnedDir> {
  let home: PinnedDir;
  try {
    home = await openPinnedDir(user.home, { followSymlink: true });
  } catch (err) {
    if (err instanceof MarcoPoloError) throw err;
    throw new IoError(`cannot open home folder ${user.home} of ${user.name}: ${(err as Error).message}`, { cause: err });
  }
  if (home.stat.uid !== user.uid) {
    await home.close();
    throw new UnsafeFileError(
      user.home,
      `home folder ${user.home} of ${user.name} is owned by uid ${home.stat.uid}, not by the user (uid ${user.uid})`,
    );
  }
  return home;
}

/** The user folders swept of temporary files by this process. */
const swept = new Set<string>();

/**
 * Runs `fn` with `~user/<dirName>` open and pinned. The home must belong to the user; the folder
 * must be a real folder owned by the user or root and not writable by group or others. With
 * `create`, a missing folder is made (0700, by the user); without, a missing one gives undefined.
 * Temporary files of interrupted writes in it are removed first.
 * @throws UnsafeFileError or IoError naming the path.
 */
export async function withUserDir<T>(
  user: UserInfo,
  dirName: string,
  create: boolean,
  fn: (dir: PinnedDir) => Promise<T>,
): Promise<T | undefined> {
  const problem = segmentProblem(dirName);
  if (problem !== undefined) {
    // A nested polo_user_dir (`a/b`) would need every level pinned.
    throw new IoError(`the user folder name ${JSON.stringify(dirName)} cannot be used: ${problem}`);
  }
  const shown = path.join(user.home, dirName);
  const home = await openUserHome(user);
  try {
    const open = (): Promise<PinnedDir> => openPinnedDir(home.child(dirName));
    let dir: PinnedDir;
    try {
      dir = await open().catch(async (err: unknown) => {
        if (!create || !isErrno(err, 'ENOENT')) throw err;
        // Missing: made as the user (never root-owned, even for an instant), see
        // createFolderAsUser, then opened and checked like one that was there.
        await createFolderAsUser(user, shown, USER_DIR_MODE);
        return open();
      });
    } catch (err) {
      if (!create && isErrno(err, 'ENOENT')) return undefined;
      if (err instanceof UnsafeFileError) throw new UnsafeFileError(shown, `${shown} is a symlink or not a folder; refused`, { cause: err });
      if (err instanceof MarcoPoloError) throw err;
      throw new IoError(`cannot open ${shown}: ${(err as Error).message}`, { cause: err });
    }
    try {
      const st = dir.stat;
      if (st.uid !== user.uid && st.uid !== 0) {
        throw new UnsafeFileError(shown, `${shown} is owned by uid ${st.uid}, neither ${user.name} (uid ${user.uid}) nor root`);
      }
      if ((st.mode & 0o022) !== 0) {
        const mode = `0${(st.mode & 0o7777).toString(8).padStart(3, '0')}`;
        throw new UnsafeFileError(shown, `${shown} has mode ${mode}: others could replace the files in it (chmod go-w it)`);
      }
      // Temporary files of writes interrupted here before (polod killed mid-write): once per
      // folder and process, as this process's own failed writes remove theirs.
      if (!swept.has(shown)) {
        await sweepTemporaryFiles(dir.path);
        swept.add(shown);
      }
      return await fn(dir);
    } finally {
      await dir.close();
    }
  } finally {
    await home.close();
  }
}
