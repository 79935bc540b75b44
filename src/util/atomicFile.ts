/**
 * Crash-safe file replacement. A file is written under a temporary name in its own folder,
 * flushed, given its final owner and mode, and only then renamed (or hard-linked) into place, so
 * the final name always holds either the old complete file or the new complete file: never a
 * half-written secret, token or service file, and never one briefly readable with the wrong mode.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { link, open, rename, unlink, type FileHandle } from 'node:fs/promises';
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
  const tmp = path.join(dir, tempName(path.basename(filePath)));
  let created = false;
  try {
    // Created owner-only: nobody can open it in the instant before the final mode is set.
    const handle = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
    created = true;
    try {
      await handle.writeFile(data);
      if (options.uid !== undefined || options.gid !== undefined) {
        // -1 leaves that id unchanged. Through the descriptor: no path, so no symlink, involved.
        await handle.chown(options.uid ?? -1, options.gid ?? -1);
      }
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
