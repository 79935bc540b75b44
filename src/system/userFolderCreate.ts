/**
 * Creating a folder in a user's home *as that user*. polod runs as root; a folder it made itself
 * would be root's until it chowned it, and a user racing it (renaming `~/.polo` away and back
 * while polod works) could keep that root-owned folder, with whatever polod then wrote into it,
 * in their home where they cannot remove it. A folder the kernel creates for the user's own uid is
 * theirs from the first instant, whatever they swap around it, and can only be made where the
 * user could make it themselves. So the one `mkdir` polod does in a home runs in a child process
 * with the user's uid and gid (and no supplementary groups: Node drops them when it sets the ids).
 */
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import type { UserInfo } from './userDb.js';

/** Where `mkdir` is looked for: the child gets no other environment. */
const SAFE_PATH = '/usr/bin:/bin';

/**
 * Creates the folder `dirPath` (a path in `user`'s home) with `mode`, as `user` when polod runs
 * as root, else as polod itself. Resolves either way: whether a folder is there, and is one polod
 * may use, is for the caller to check by opening it (it may have existed, or the user may have
 * put something else there meanwhile).
 */
export async function createFolderAsUser(user: UserInfo, dirPath: string, mode: number): Promise<void> {
  const euid = process.geteuid?.();
  if (euid !== 0 || user.uid === 0) {
    await mkdir(dirPath, { mode }).catch(() => undefined);
    return;
  }
  await new Promise<void>((resolve) => {
    execFile(
      'mkdir',
      ['-m', mode.toString(8), '--', dirPath],
      { uid: user.uid, gid: user.gid, cwd: '/', env: { PATH: SAFE_PATH, LC_ALL: 'C' }, timeout: 10_000 },
      () => resolve(),
    );
  });
}
