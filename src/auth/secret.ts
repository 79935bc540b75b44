/**
 * polod's token secret: the HMAC key that makes tokens unforgeable. The reference shipped one
 * fixed secret in its repository (docs/protocol.md §6); here each host makes its own at first start.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, IoError, UnsafeFileError } from '../errors.js';
import { isErrno, writeFileAtomic } from '../util/atomicFile.js';

/** Size of a secret polod generates. */
export const SECRET_BYTES = 32;
/** Shortest secret accepted (the reference generated 16, 24 or 32 characters). */
export const MIN_SECRET_BYTES = 16;
/** Largest secret file read; anything bigger is not a secret file. */
const MAX_SECRET_FILE_BYTES = 4096;

/** Octal mode text for messages, e.g. 0644. */
export function formatMode(mode: number): string {
  return `0${(mode & 0o7777).toString(8).padStart(3, '0')}`;
}

/**
 * The key in a secret file's bytes. A file of exactly 32 bytes is used verbatim: that is what
 * polod writes, and a random secret may well end in byte 0x0a. Otherwise one trailing newline
 * (LF or CRLF) is dropped: the reference's text secrets (16/24/32 characters) were often
 * written by editors or `echo`, and their characters are used as raw bytes.
 */
function keyFromFile(content: Buffer): Buffer {
  if (content.length === SECRET_BYTES) return content;
  let end = content.length;
  if (end > 0 && content[end - 1] === 0x0a) {
    end--;
    if (end > 0 && content[end - 1] === 0x0d) end--;
  }
  return content.subarray(0, end);
}

/** Reads and checks an existing secret file; undefined if there is none. */
async function readSecret(file: string): Promise<Buffer | undefined> {
  let handle;
  try {
    // O_NONBLOCK: a FIFO planted under the name must not hang polod's start-up.
    handle = await open(file, fsc.O_RDONLY | fsc.O_NONBLOCK | fsc.O_NOCTTY);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw new IoError(`could not read secret file ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new UnsafeFileError(file, `secret file ${file} is not a regular file`);
    // Refuse, don't repair: a secret others could read may already be known to them, and
    // quietly chmodding it would hide that. The administrator decides (chmod, or delete it).
    if ((st.mode & 0o077) !== 0) {
      throw new UnsafeFileError(
        file,
        `secret file ${file} has mode ${formatMode(st.mode)}: it must be readable by its owner only ` +
          `(chmod 600 it, or delete it to have polod create a new one)`,
      );
    }
    const euid = process.geteuid?.();
    if (euid !== undefined && st.uid !== euid) {
      throw new UnsafeFileError(file, `secret file ${file} is owned by uid ${st.uid}, not by uid ${euid} that polod runs as`);
    }
    if (st.size > MAX_SECRET_FILE_BYTES) {
      throw new ConfigError(`secret file ${file} is ${st.size} bytes; a secret is at most ${MAX_SECRET_FILE_BYTES}`);
    }
    const key = keyFromFile(await handle.readFile());
    if (key.length < MIN_SECRET_BYTES) {
      throw new ConfigError(
        `secret file ${file} holds ${key.length} bytes; at least ${MIN_SECRET_BYTES} are needed ` +
          `(delete it to have polod create a new one)`,
      );
    }
    return key;
  } finally {
    await handle.close();
  }
}

/**
 * The token secret stored in `file`, created at first use: 32 random bytes, mode 0600, owned by
 * the user polod runs as (root), written atomically and never over a file another process
 * created meanwhile. An existing file is used if it is a regular file owned by that user with
 * no group or other permission bits; otherwise this refuses, naming the file and its mode.
 * @throws UnsafeFileError for wrong type, owner or mode; ConfigError for a file that cannot be
 * a secret (too short or too long); IoError if it cannot be read or written.
 */
export async function loadOrCreateSecret(file: string): Promise<Buffer> {
  const existing = await readSecret(file);
  if (existing !== undefined) return existing;
  const secret = randomBytes(SECRET_BYTES);
  try {
    // The folder (/etc/marcopolo/polo) holds configuration everyone may read; only the secret
    // itself is private.
    await mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
    await writeFileAtomic(file, secret, { mode: 0o600, exclusive: true });
    return secret;
  } catch (err) {
    // Another polod (or a concurrent call) created it first: use theirs, so all agree.
    if (isErrno(err, 'EEXIST')) {
      const theirs = await readSecret(file);
      if (theirs !== undefined) return theirs;
    }
    if (err instanceof IoError) throw err;
    throw new IoError(`could not create secret file ${file}: ${(err as Error).message}`, { cause: err });
  }
}
