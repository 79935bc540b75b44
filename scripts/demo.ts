/**
 * `npm run demo`: a polod on loopback serving the example services of examples/services, queried
 * with the real `marco` command. Needs no root, no configuration and no file outside the
 * checkout; nothing leaves the machine (multicast interface 127.0.0.1, a non-default port so a
 * real polod on this machine is left alone). Everything it starts is stopped at the end.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = (name: string): string => path.join(root, 'dist', 'src', 'cli', `${name}.js`);
/** The commands run from the checkout's root, so the line printed is the line run. */
const MARCO = path.join('dist', 'bin', 'marco.cjs');
const PORT = '41337';
const LOOPBACK = '127.0.0.1';
/** Bold only on a terminal, never with NO_COLOR (no-color.org): a log file gets plain text. */
const bold = process.stdout.isTTY === true && !process.env['NO_COLOR'];

/**
 * Prints the exact command, then runs it: typing the printed line (while the demo's polod runs)
 * gives the same answer, since the loopback interface and the demo's port are in it.
 */
function section(title: string, command: string[]): void {
  const args = [...command, '--interface', LOOPBACK, '--port', PORT, '--timeout', '500'];
  const line = `$ node ${MARCO} ${args.map(shellWord).join(' ')}`;
  process.stdout.write(`\n# ${title}\n${bold ? `\x1b[1m${line}\x1b[0m` : line}\n`);
  const run = spawnSync(process.execPath, [MARCO, ...args], { encoding: 'utf8', cwd: root });
  process.stdout.write(run.stdout || '(nobody answered)\n');
  if (run.stderr) process.stdout.write(run.stderr);
}

/** A word as a POSIX shell reads it: quoted when it holds anything but safe characters. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`;
}

// polod's own files (publish API secret, certificate, socket) go to a throwaway folder.
const stateDir = mkdtempSync(path.join(os.tmpdir(), 'marcopolo-demo-'));
process.on('exit', () => rmSync(stateDir, { recursive: true, force: true }));

const polod = spawn(
  process.execPath,
  [
    bin('polod'),
    '--services-dir', path.join(root, 'examples', 'services'),
    '--group', '224.0.0.112',
    '--group', '224.0.0.113',
    '--interface', LOOPBACK,
    '--port', PORT,
    '--state-dir', stateDir,
    '--binding-port', '41390',
    '--hostname', 'demo-node',
    '--params', '{"role":"demo"}',
  ],
  { stdio: ['ignore', 'ignore', 'pipe'] },
);
const stopPolod = (): void => {
  if (polod.exitCode === null) polod.kill('SIGTERM');
};
process.on('exit', stopPolod);

// Wait for polod's "ready" log line (JSON lines on stderr, a pipe), not a fixed time.
const started = await new Promise<boolean>((resolve) => {
  let buffered = '';
  polod.stderr.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    if (buffered.includes('polod ready')) resolve(true);
  });
  polod.once('exit', () => resolve(false));
});
if (!started) {
  process.stderr.write('demo: polod did not start\n');
  process.exit(1);
}

process.stdout.write(`polod is serving examples/services on ${LOOPBACK}, groups 224.0.0.112 and 224.0.0.113, port ${PORT}.\n`);
section('which nodes are in the default grid?', ['discover']);
section('who offers "web"?', ['request-for', 'web']);
section('"printer" is offered only in the second grid', ['request-for', 'printer', '--group', '224.0.0.113']);
section('...so the default grid has nobody offering it', ['request-for', 'printer']);
section('filter on service params', ['request-for', 'web', '--param', 'port=8080', '--json']);
section('everything this node offers (asked by unicast)', ['services', LOOPBACK]);

stopPolod();
await new Promise((resolve) => (polod.exitCode === null ? polod.once('exit', resolve) : resolve(undefined)));
process.stdout.write('\npolod stopped. See README.md for the commands and options.\n');
