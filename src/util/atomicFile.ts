/**
 * Crash-safe file replacement. A file is written under a temporary name in its own folder,
 * flushed, given its final owner and mode, and only then renamed (or hard-linked) into place, so
 * the final name always holds either the old complete file or the new complete file: never a
 * half-written secret, token or service file, and never one briefly readable with the wrong mode.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { link, open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError, IoError } from '../errors.js';

/** Options of `writeFileAtomic`. */
export interface WriteFileAtomicOptions {
  /** Permission bits of the file (e.g. 0o600), applied exactly, whatever the umask. */
  mode: number;
  /** Owner to give the file before it appears under its name (needs root). */
  uid?: number;
  /** Group to give the file before it appears under its name (needs root). */
  gid?: number;
  /**
   * Only create: fail with EEXIST (see `isErrno`) if `path` already exists, rather than replace
   * it. Uses link() instead of rename(), which is equally atomic but never clobbers.
   */
  exclusive?: boolean;
}

/** Whether `err`, or the error it wraps (`cause`), is a system error with that errno code. */
export function isErrno(err: unknown, code: string): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if ((e as NodeJS.ErrnoException).code === code) return true;
  }
  return false;
}

/** The temporary name for `base`: hidden, recognisable, unique, and short enough for NAME_MAX. */
function tempName(base: string): string {
  let prefix = base;
  while (Buffer.byteLength(prefix, 'utf8') > 200) prefix = prefix.slice(0, -1);
  return `.${prefix}.${randomBytes(6).toString('hex')}.tmp`;
}

/** Exactly the names `tempName` makes: `.<base>.<12 hex>.tmp`. */
const TEMP_NAME = /^\..+\.[0-9a-f]{12}\.tmp$/;

/** Temporary names of writes in progress in this process, which a sweep must not remove. */
const inProgress = new Set<string>();

/**
 * Removes the temporary files that interrupted writes (a process killed between create and
 * rename) left in the folder `dir`, except those of writes still in progress in this process.
 * They are never loaded (hidden, `.tmp`); this only tidies up. `dir` may be a pinned path
 * (`/proc/self/fd/N`). Returns how many were removed; never throws.
 */
export async function sweepTemporaryFiles(dir: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    if (!TEMP_NAME.test(name) || inProgress.has(name)) continue;
    try {
      // unlink never follows a symlink: whatever is under the name goes, nothing else.
      await unlink(path.join(dir, name));
      removed++;
    } catch {
      // Gone already, or a folder: harmless either way.
    }
  }
  return removed;
}

function checkId(value: number | undefined, what: string): void {
  if (value !== undefined && !(Number.isInteger(value) && value >= 0 && value < 0xffffffff)) {
    throw new InvalidArgumentError(`${what} must be an integer between 0 and 4294967294, got ${value}`);
  }
}

/**
 * Flushes a folder's entries, so a rename or link in it survives a power cut. Some file
 * systems cannot fsync a folder (EINVAL); the rename is then as durable as they allow.
 */
export async function syncDir(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
    await handle.sync();
  } catch (err) {
    if (!isErrno(err, 'EINVAL') && !isErrno(err, 'ENOTSUP')) throw err;
  } finally {
    await handle?.close();
  }
}

/**
 * Atomically writes `data` to `filePath`: a temporary file `.<base>.<random>.tmp` is created in
 * the same folder (O_EXCL|O_NOFOLLOW, so nothing planted there is followed), written, chowned,
 * chmodded and fsynced, then renamed over `filePath` (replacing a symlink there, never writing
 * through it), and the folder is fsynced. On failure the temporary file is removed.
 * @throws InvalidArgumentError for a bad mode, uid or gid; IoError (with the system error as
 * `cause`) if the file cannot be written.
 */
export async function writeFileAtomic(
  filePath: string,
  data: string | Uint8Array,
  options: WriteFileAtomicOptions,
): Promise<void> {
  if (!Number.isInteger(options.mode) || options.mode < 0 || options.mode > 0o7777) {
    throw new InvalidArgumentError(`mode must be an integer between 0 and 0o7777, got ${options.mode}`);
  }
  checkId(options.uid, 'uid');
  checkId(options.gid, 'gid');
  const dir = path.dirname(filePath);
  const name = tempName(path.basename(filePath));
  const tmp = path.join(dir, name);
  let created = false;
  inProgress.add(name);
  try {
    // Created owner-only: nobody can open it in the instant before the final mode is set.
    const handle = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
    created = true;
    try {
      if (options.uid !== undefined || options.gid !== undefined) {
        // First thing, before any write can fail: in a folder its owner controls, the file may
        // be renamed away from under us at any moment, and must then already be theirs, never
        // a root-owned file they cannot remove. -1 leaves that id unchanged. Through the
        // descriptor: no path, so no symlink, involved.
        await handle.chown(options.uid ?? -1, options.gid ?? -1);
      }
      await handle.writeFile(data);
      // After chown, which may clear set-id bits; and explicit, because open() applies the umask.
      await handle.chmod(options.mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (options.exclusive === true) {
      await link(tmp, filePath);
      // The file is in place; a temporary name left behind is only litter.
      await unlink(tmp).catch(() => undefined);
    } else {
      await rename(tmp, filePath);
    }
    created = false;
    await syncDir(dir);
  } catch (err) {
    if (created) await unlink(tmp).catch(() => undefined);
    if (err instanceof InvalidArgumentError) throw err;
    throw new IoError(`could not write ${filePath}: ${(err as Error).message}`, { cause: err });
  } finally {
    inProgress.delete(name);
  }
}

/**
 * Removes the file (or symlink: it is never followed) at `filePath`. Returns false if there was
 * nothing to remove.
 * @throws IoError for any other failure (e.g. EISDIR, EACCES).
 */
export async function removeFile(filePath: string): Promise<boolean> {
  try {
    await unlink(filePath);
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw new IoError(`could not remove ${filePath}: ${(err as Error).message}`, { cause: err });
  }
}
