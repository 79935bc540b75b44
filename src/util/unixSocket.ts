/** Unix stream sockets of the daemons (polod's publish API, marcod's watch socket): clearing the way before listening. */
import { constants as fsc } from 'node:fs';
import { lstat, mkdir, unlink } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { IoError } from '../errors.js';

/**
 * Makes the socket's folder and clears the way: a socket file nobody listens on (left by a
 * daemon that was killed) is removed; one a live process answers on is not (two daemons would
 * steal each other's clients); anything that is not a socket is never removed. `what` names the
 * endpoint in errors, `hint` says what to check when another process listens there.
 */
export async function prepareSocketPath(file: string, what: string, hint: string): Promise<void> {
  try {
    await mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
  } catch (err) {
    throw new IoError(`${what}: cannot create the folder of ${file}: ${(err as Error).message}`, { cause: err });
  }
  let st;
  try {
    st = await lstat(file);
  } catch {
    return; // nothing there
  }
  if ((st.mode & fsc.S_IFMT) !== fsc.S_IFSOCK) {
    throw new IoError(`${what}: ${file} exists and is not a socket; remove it or choose another path`);
  }
  if (await answers(file)) throw new IoError(`${what}: another process is listening on ${file} (${hint})`);
  await unlink(file).catch(() => undefined);
}

/** Whether something accepts connections on the Unix socket `file`. */
function answers(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect({ path: file });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}
