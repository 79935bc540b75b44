/**
 * Path safety for a daemon that runs as root and takes names from the network and from users.
 *
 * - `resolveInside` admits exactly one plain path segment, so no service id (`../../etc/x`,
 *   `/etc/passwd`, `a\0b`) can make polod write or delete outside the folder it means.
 * - `fileNameForId` maps any valid service id to such a segment, reversibly (`idForFileName`).
 * - `openPinnedDir` opens a folder once and hands out paths that keep naming *that* folder even
 *   if someone renames it and plants a symlink in its place afterwards (Node has no openat()).
 */
import { constants as fsc, type Stats } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError, UnsafeFileError } from '../errors.js';

/** Longest file name (in UTF-8 bytes) Linux file systems accept (NAME_MAX). */
export const MAX_SEGMENT_BYTES = 255;

/** Whether the UTF-16 code unit is a C0 or C1 control character or DEL. */
function isControl(code: number): boolean {
  return code < 0x20 || (code >= 0x7f && code <= 0x9f);
}

/** Lone surrogates would turn into U+FFFD on the way to the file system: two names, one file. */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Why `name` is not one plain path segment, or undefined if it is. A plain segment is a
 * non-empty, well-formed string of at most 255 UTF-8 bytes, other than `.` and `..`, without `/`,
 * `\`, NUL or any control character.
 */
export function segmentProblem(name: unknown): string | undefined {
  if (typeof name !== 'string') return 'it is not a string';
  if (name === '') return 'it is empty';
  if (name === '.' || name === '..') return `"${name}" names a folder, not a file`;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    // '\' too: harmless on Linux, but a path separator wherever the files may be copied to.
    if (c === 0x2f || c === 0x5c) return 'it contains a path separator';
    if (isControl(c)) return 'it contains a control character';
  }
  if (LONE_SURROGATE.test(name)) return 'it is not well-formed Unicode';
  if (Buffer.byteLength(name, 'utf8') > MAX_SEGMENT_BYTES) return `it is longer than ${MAX_SEGMENT_BYTES} bytes`;
  return undefined;
}

/** Whether `name` is one plain path segment (see `segmentProblem`). */
export function isPlainSegment(name: unknown): name is string {
  return segmentProblem(name) === undefined;
}

/**
 * The path of the entry `name` directly inside `dir` (made absolute).
 * @throws InvalidArgumentError unless `name` is one plain path segment.
 */
export function resolveInside(dir: string, name: string): string {
  const problem = segmentProblem(name);
  if (problem !== undefined) {
    throw new InvalidArgumentError(`invalid file name ${JSON.stringify(String(name))}: ${problem}`);
  }
  const base = path.resolve(dir);
  const full = path.resolve(base, name);
  // Belt and braces: the checks above already guarantee this.
  if (path.dirname(full) !== base) {
    throw new InvalidArgumentError(`invalid file name ${JSON.stringify(name)}: it leaves ${base}`);
  }
  return full;
}

/** Bytes kept as they are in file names: unambiguous and portable everywhere. */
function isSafeByte(b: number, first: boolean): boolean {
  return (
    (b >= 0x30 && b <= 0x39) || // 0-9
    (b >= 0x41 && b <= 0x5a) || // A-Z
    (b >= 0x61 && b <= 0x7a) || // a-z
    b === 0x5f || // _
    b === 0x2d || // -
    // A leading dot is encoded: so the result is never '.', '..' or a hidden file, and can never
    // collide with the `.<name>.<random>.tmp` files of writeFileAtomic.
    (b === 0x2e && !first)
  );
}

const HEX = '0123456789ABCDEF';

/**
 * The file name a service id is stored under: [A-Za-z0-9._-] are kept (so ordinary ids keep the
 * reference's file names), every other UTF-8 byte becomes `%XX`, and so does a leading dot. The
 * result always passes `resolveInside`, and `idForFileName` turns it back into `id`.
 * @throws InvalidArgumentError if `id` is not a non-empty well-formed string, or is too long to
 * fit in one file name once encoded.
 */
export function fileNameForId(id: string): string {
  if (typeof id !== 'string' || id === '') throw new InvalidArgumentError('service id must be a non-empty string');
  if (LONE_SURROGATE.test(id)) throw new InvalidArgumentError('service id is not well-formed Unicode');
  let out = '';
  const bytes = Buffer.from(id, 'utf8');
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    out += isSafeByte(b, i === 0) ? String.fromCharCode(b) : `%${HEX[b >> 4]}${HEX[b & 15]}`;
  }
  if (out.length > MAX_SEGMENT_BYTES) {
    throw new InvalidArgumentError(`service id is too long to store (${out.length} bytes encoded, max ${MAX_SEGMENT_BYTES})`);
  }
  return out;
}

/**
 * The service id stored under `fileName` (the inverse of `fileNameForId`). Names that were not
 * produced by `fileNameForId`, like a reference polod's `my service`, decode leniently: anything
 * that is not a `%XX` escape stands for itself. Returns undefined if the decoded bytes are not
 * valid UTF-8.
 */
export function idForFileName(fileName: string): string | undefined {
  const raw = Buffer.from(fileName, 'utf8');
  const bytes: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i] as number;
    if (b === 0x25 && i + 2 < raw.length) {
      const hex = String.fromCharCode(raw[i + 1] as number, raw[i + 2] as number);
      if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
        bytes.push(parseInt(hex, 16));
        i += 2;
        continue;
      }
    }
    bytes.push(b);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
  } catch {
    return undefined;
  }
}

/**
 * A folder held open by file descriptor. `path` goes through `/proc/self/fd/<fd>`, so every
 * path built from it names an entry of the folder that was opened, whatever is renamed or
 * planted under the original name later: this is how polod, as root, works inside folders that
 * users control without being tricked into following their symlinks.
 */
export interface PinnedDir {
  /** The path the folder was opened by, for messages only. */
  readonly displayPath: string;
  /** A path naming the opened folder itself (`/proc/self/fd/<fd>`). */
  readonly path: string;
  /** The folder's status when it was opened. */
  readonly stat: Stats;
  /** The path of the entry `name` of this folder (see `resolveInside`). */
  child(name: string): string;
  /** Flushes the folder's entries to disk (after creating or renaming files in it). */
  sync(): Promise<void>;
  /** Re-reads the folder's status (after chown or chmod through `handle`). */
  restat(): Promise<Stats>;
  /** The open handle (for chown/chmod without ever resolving a path). */
  readonly handle: FileHandle;
  /** Closes the descriptor; paths from `path` and `child` stop working. */
  close(): Promise<void>;
}

/** Options of `openPinnedDir`. */
export interface OpenPinnedDirOptions {
  /**
   * Whether a symlink as the last component is followed (default false: refused). Components
   * before the last one are always followed; callers open user-controlled folders one level at
   * a time from a pinned parent.
   */
  followSymlink?: boolean;
}

/**
 * Opens the folder `dirPath` and pins it (see `PinnedDir`). Linux only: it needs /proc.
 * @throws UnsafeFileError if the last component is a symlink (unless followed) or not a folder,
 * or if /proc/self/fd is not available; other errors (ENOENT, EACCES...) are thrown unchanged.
 */
export async function openPinnedDir(dirPath: string, options: OpenPinnedDirOptions = {}): Promise<PinnedDir> {
  const flags = fsc.O_RDONLY | fsc.O_DIRECTORY | (options.followSymlink === true ? 0 : fsc.O_NOFOLLOW);
  let handle: FileHandle;
  try {
    handle = await open(dirPath, flags);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // With O_DIRECTORY|O_NOFOLLOW Linux reports a symlink as ENOTDIR (or ELOOP).
    if (code === 'ELOOP' || code === 'ENOTDIR') {
      throw new UnsafeFileError(dirPath, `${dirPath} is a symlink or not a folder; refusing to use it`, { cause: err });
    }
    throw err;
  }
  try {
    const st = await handle.stat();
    const procPath = `/proc/self/fd/${handle.fd}`;
    let viaProc: Stats | undefined;
    try {
      viaProc = await stat(procPath);
    } catch {
      viaProc = undefined;
    }
    // Without /proc we could only re-resolve the path by name, which is exactly the race this
    // type exists to close: refuse rather than silently degrade.
    if (viaProc === undefined || viaProc.ino !== st.ino || viaProc.dev !== st.dev) {
      throw new UnsafeFileError(dirPath, `cannot pin ${dirPath}: /proc/self/fd is not available`);
    }
    return {
      displayPath: dirPath,
      path: procPath,
      stat: st,
      handle,
      child: (name) => resolveInside(procPath, name),
      sync: () => handle.sync(),
      restat: () => handle.stat(),
      close: () => handle.close(),
    };
  } catch (err) {
    await handle.close().catch(() => undefined);
    throw err;
  }
}
