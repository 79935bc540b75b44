/**
 * The control of the key-cost benchmark (bench/keyCost.ts): a copy of a built polod whose grid
 * authentication does everything but the MAC itself. Its tag function returns a constant and
 * its tag comparison accepts any tag, so it still finds and checks the authenticator, tracks
 * nonces, copies the body out, and signs and sends the longer reply. What separates it from the
 * real keyed polod is then the cost of HMAC-SHA256 alone, and what separates it from the
 * unkeyed polod is the cost of the format around the MAC. The copy lives in a temporary
 * folder of the run and is never installed; the product has no such switch.
 */
import { cp, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** 43 base64url characters: the form of a real tag, so the replies stay well-formed. */
const CONSTANT_TAG = 'A'.repeat(43);

/** The two functions replaced, as tsc emits them (src/auth/gridAuth.ts). */
const PATCHES: readonly { readonly head: string; readonly body: string }[] = [
  { head: 'function finish(state, buf, length) {', body: `return '${CONSTANT_TAG}';` },
  { head: 'function sameTagBytes(tag, buf, m) {', body: 'return true;' },
];

/**
 * Copies the build of `program` (a `dist/src/cli/polod.js`) under `dir` with its MAC replaced
 * (see the module comment); returns the copy's polod.js. Throws when the build does not have
 * the functions to replace, so a renamed function cannot turn the control into a second keyed run.
 */
export async function macFreePolod(program: string, dir: string): Promise<string> {
  const dist = path.resolve(path.dirname(program), '..', '..');
  const root = path.dirname(dist);
  const copy = path.join(dir, 'mac-free');
  await cp(path.join(dist, 'src'), path.join(copy, 'dist', 'src'), { recursive: true });
  // ESM by the package's "type"; its dependencies where the original finds them.
  await cp(path.join(root, 'package.json'), path.join(copy, 'package.json'));
  await symlink(path.join(root, 'node_modules'), path.join(copy, 'node_modules'), 'dir');
  const authFile = path.join(copy, 'dist', 'src', 'auth', 'gridAuth.js');
  let text = await readFile(authFile, 'utf8');
  for (const p of PATCHES) {
    if (text.split(p.head).length !== 2) throw new Error(`${authFile}: '${p.head}' is not there once; the key-cost control cannot be made`);
    text = text.replace(p.head, `${p.head} ${p.body}`);
  }
  await writeFile(authFile, text);
  return path.join(copy, 'dist', 'src', 'cli', 'polod.js');
}
