/**
 * Opening a user's `~/.polo` to write or delete their service files. polod runs as root and the
 * user controls everything under their home, so the folder is reached one pinned level at a time
 * (see `openPinnedDir`): a `~/.polo` swapped for a symlink to `/etc` is refused, never followed.
 * Same rules as the token file (src/auth/tokenFile.ts), which shares the folder.
 */
import path from 'node:path';
import { IoError, MarcoPoloError, UnsafeFileError } from '../errors.js';
import type { UserInfo } from '../system/userDb.js';
import { createFolderAsUser } from '../system/userFolderCreate.js';
import { isErrno, sweepTemporaryFiles } from '../util/atomicFile.js';
import { openPinnedDir, segmentProblem, type PinnedDir } from '../util/safePath.js';

/** Mode of a `.polo` folder polod creates (as the token file's code does). */
const USER_DIR_MODE = 0o700;

/**
 * Runs `fn` with `~user/<dirName>` open and pinned. The home must belong to the user (its last
 * component may be a symlink: that is the administrator's choice); the folder must be a real
 * folder owned by the user or root and not writable by group or others. With `create`, a
 * missing folder is made (0700, by the user); without, a missing one gives undefined. Temporary
 * files of interrupted writes in it are removed first.
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
    // A nested polo_user_dir (`a/b`) would need every level pinned; the token file refuses it too.
    throw new IoError(`the user folder name ${JSON.stringify(dirName)} cannot be used: ${problem}`);
  }
  const shown = path.join(user.home, dirName);
  let home: PinnedDir;
  try {
    home = await openPinnedDir(user.home, { followSymlink: true });
  } catch (err) {
    if (err instanceof MarcoPoloError) throw err;
    throw new IoError(`cannot open home folder ${user.home} of ${user.name}: ${(err as Error).message}`, { cause: err });
  }
  try {
    if (home.stat.uid !== user.uid) {
      throw new UnsafeFileError(user.home, `home folder ${user.home} of ${user.name} is not owned by the user`);
    }
    // Made as the user (never root-owned, even for an instant), see createFolderAsUser.
    if (create) await createFolderAsUser(user, path.join(user.home, dirName), USER_DIR_MODE);
    let dir: PinnedDir;
    try {
      dir = await openPinnedDir(home.child(dirName));
    } catch (err) {
      if (!create && isErrno(err, 'ENOENT')) return undefined;
      if (err instanceof MarcoPoloError) throw err;
      throw new IoError(`cannot open ${shown}: ${(err as Error).message}`, { cause: err });
    }
    try {
      const st = dir.stat;
      if (st.uid !== user.uid && st.uid !== 0) {
        throw new UnsafeFileError(shown, `${shown} is owned by uid ${st.uid}, neither ${user.name} nor root`);
      }
      if ((st.mode & 0o022) !== 0) {
        throw new UnsafeFileError(shown, `${shown} is writable by group or others (chmod go-w it)`);
      }
      // Temporary files of writes interrupted here before (polod killed mid-write).
      await sweepTemporaryFiles(dir.path);
      return await fn(dir);
    } finally {
      await dir.close();
    }
  } finally {
    await home.close();
  }
}
