/**
 * Loading a folder of service files (the root services folder, or a user's `~/.polo`). Nothing in
 * a folder can stop polod: a missing folder, an unreadable, oversized or invalid file, a
 * duplicate id — each becomes one warning, and every other file still loads.
 */
import { constants, type Stats } from 'node:fs';
import { open, readdir, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Service } from '../registry/service.js';
import { parseServiceFile } from './serviceFile.js';

/** Largest service file read. One service must fit a 4 KiB datagram; this leaves room for layout. */
export const MAX_SERVICE_FILE_BYTES = 64 * 1024;

/** How to read a folder. */
export interface ServiceDirOptions {
  /** True for a user's `~/.polo` (user-style ids allowed), false for the root folder. */
  readonly userService: boolean;
  /** What makes an id a user service (config `verify_regexp`). */
  readonly verifyRegexp: RegExp;
  /** Extra names to leave alone (the caller skips `token` in user folders). */
  readonly skip?: (name: string) => boolean;
  /**
   * When set, only files owned by this uid are read. polod reads users' folders as root: without
   * this, a symlink in `~/.polo` to a root-only file would have polod read it on the user's behalf.
   */
  readonly owner?: number;
  /** A missing folder is an empty one, without a warning (a user with no `~/.polo`). */
  readonly missingOk?: boolean;
  /** The owner's user name, for a user's folder: ids are checked as `name:id` (serviceId.ts). */
  readonly ownerName?: string;
}

/** The services of a folder, in file-name order, and one warning per file left out. */
export interface ServiceDirResult {
  services: Service[];
  warnings: string[];
}

/**
 * Names never read as services: dotfiles (editor swap files, `.token` …), editor backups
 * (`name~`, Emacs `#name#`) and `.tmp` files that an atomic write has not renamed yet.
 */
export function isSkippedFileName(name: string): boolean {
  return (
    name.startsWith('.') ||
    name.endsWith('~') ||
    name.endsWith('.tmp') ||
    (name.length > 1 && name.startsWith('#') && name.endsWith('#'))
  );
}

/**
 * Reads every regular file of `dir` (any name, no extension needed), sorted by name so duplicate
 * resolution is the same on every run. A second file with an id already used in an overlapping
 * group is skipped with a warning naming both files; enabled services take precedence over
 * disabled ones, so disabling an old file never hides its replacement. Symlinks are followed only
 * to regular files. A missing folder gives no services and one warning.
 */
export async function loadServiceDir(dir: string, opts: ServiceDirOptions): Promise<ServiceDirResult> {
  const warnings: string[] = [];
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if (opts.missingOk === true && (err as NodeJS.ErrnoException).code === 'ENOENT') return { services: [], warnings: [] };
    return { services: [], warnings: [`${dir}: cannot list the folder (${describe(err)}), no services loaded`] };
  }
  // Code-unit order, not locale order: the result must not depend on the environment.
  names.sort();

  const loaded: Service[] = [];
  for (const name of names) {
    if (isSkippedFileName(name) || opts.skip?.(name) === true) continue;
    const file = path.join(dir, name);
    const read = await readServiceText(file, opts.owner);
    if (!read.ok) {
      warnings.push(read.warning);
      continue;
    }
    const parsed = parseServiceFile(read.text, file, opts);
    if (parsed.ok) loaded.push(parsed.service);
    else warnings.push(parsed.warning);
  }
  return { services: dropDuplicates(loaded, warnings), warnings };
}

type ReadResult = { ok: true; text: string } | { ok: false; warning: string };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Reads one file, refusing anything that is not a small regular file (owned by `owner`). */
async function readServiceText(file: string, owner: number | undefined): Promise<ReadResult> {
  const skip = (problem: string): ReadResult => ({ ok: false, warning: `${file}: ${problem}, skipped` });
  let before: Stats;
  try {
    before = await stat(file); // follows symlinks: a dangling one fails here
  } catch (err) {
    return skip(`cannot read (${describe(err)})`);
  }
  // Checked before opening: opening a FIFO blocks, opening a device can have side effects.
  if (!before.isFile()) return skip('not a regular file');
  if (owner !== undefined && before.uid !== owner) return skip(`owned by uid ${before.uid}, not by uid ${owner}`);
  if (before.size > MAX_SERVICE_FILE_BYTES) return skip(`${before.size} bytes, over the ${MAX_SERVICE_FILE_BYTES}-byte limit`);

  let handle: FileHandle;
  try {
    // O_NONBLOCK: if the path was swapped for a FIFO since stat(), open() still returns at once.
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    return skip(`cannot read (${describe(err)})`);
  }
  let bytes: Buffer;
  try {
    const st = await handle.stat();
    // The checks above were about what stat() saw; make sure it is the file we opened.
    if (st.ino !== before.ino || st.dev !== before.dev) return skip('replaced while being read');
    // Sized to the file (a 64 KiB buffer per file made 10,000 services cost 30 MB of garbage),
    // plus one byte to notice a file that grew since stat().
    const buffer = Buffer.allocUnsafe(Math.min(st.size, MAX_SERVICE_FILE_BYTES) + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length === buffer.length) return skip('changed while being read');
    bytes = buffer.subarray(0, length);
  } catch (err) {
    return skip(`cannot read (${describe(err)})`);
  } finally {
    await handle.close();
  }
  if (bytes.length > MAX_SERVICE_FILE_BYTES) return skip(`over the ${MAX_SERVICE_FILE_BYTES}-byte limit`);
  try {
    return { ok: true, text: utf8.decode(bytes) };
  } catch {
    return skip('not valid UTF-8');
  }
}

/**
 * Keeps the first service per id and overlapping group, in file-name order, enabled services
 * first. The result stays in file-name order.
 */
function dropDuplicates(services: Service[], warnings: string[]): Service[] {
  const byId = new Map<string, Service[]>();
  const kept = new Set<Service>();
  const ordered = [...services.filter((s) => !s.disabled), ...services.filter((s) => s.disabled)];
  for (const service of ordered) {
    const same = byId.get(service.id) ?? [];
    const clash = same.find((other) => overlap(other.groups, service.groups) !== undefined);
    if (clash) {
      const where = overlap(clash.groups, service.groups) ?? '';
      warnings.push(
        `${service.file ?? '?'}: id '${service.id}' is already used by ${clash.file ?? '?'} ${where}, skipped`,
      );
      continue;
    }
    same.push(service);
    byId.set(service.id, same);
    kept.add(service);
  }
  return services.filter((s) => kept.has(s));
}

/** Describes the groups two services share ("in every group", "in group 224.0.0.112"), or undefined. */
function overlap(a: readonly string[] | undefined, b: readonly string[] | undefined): string | undefined {
  const all = (g: readonly string[] | undefined) => g === undefined || g.length === 0;
  if (all(a) && all(b)) return 'in every group';
  const common = all(a) ? (b ?? []) : all(b) ? (a ?? []) : (a ?? []).filter((g) => (b ?? []).includes(g));
  if (common.length === 0) return undefined;
  return `in group${common.length > 1 ? 's' : ''} ${common.join(', ')}`;
}

function describe(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') {
    return err.code === 'ENOENT' ? 'no such file or folder' : err.code;
  }
  return err instanceof Error ? err.message : String(err);
}
