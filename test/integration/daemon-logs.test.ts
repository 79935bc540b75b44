/**
 * The daemons' logs as a person sees them, from the real processes: on a terminal (a pty made by
 * `script`) a coloured line per event, level and message first; no colour with NO_COLOR; JSON
 * when asked with --log-format json; JSON lines on a pipe. And `--version` on all four commands.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { requireNetns, type LanHost } from '../helpers/netns.js';
import { lanFixture, MARCO, POLOD } from '../helpers/lan-daemons.js';
import { runProc, type Proc } from '../helpers/proc.js';
import { waitFor } from '../helpers/wait.js';

const fixture = lanFixture({ name: 'logs7', hosts: 1, subnet: 73 });
const cli = path.dirname(POLOD);
const pkg = JSON.parse(
  readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'package.json'), 'utf8'),
) as { version: string };

/** The pids of the children of `pid` (procfs's children list of each of its threads). */
function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The command line of `pid`, its arguments joined by spaces ('' when it is gone). */
function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

/** The state letter of a task from its stat line (after the command name), or undefined when it is gone. */
function taskState(statFile: string): string | undefined {
  try {
    const stat = readFileSync(statFile, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

/**
 * Whether every thread of `pid` has exited, so every descriptor the process had is closed. The
 * leader turns zombie (Z) while Node's other threads still run their exit and still share the
 * descriptor table: a zombie leader alone does not mean its listening sockets are closed.
 */
function exitedProcess(pid: number): boolean {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return true;
  }
  return tasks.every((tid) => {
    const state = taskState(`/proc/${pid}/task/${tid}/stat`);
    return state === undefined || state === 'Z' || state === 'X';
  });
}

/**
 * Runs polod under `script` (a pseudo-terminal for its stdout and stderr) on `host` until it is
 * ready, stops it with SIGTERM and returns everything it wrote.
 */
async function polodOnTerminal(host: LanHost, extra: string[], env: Record<string, string> = {}): Promise<string> {
  const state = await fixture.tmpDir();
  // script runs the command with `$SHELL -c`. dash (the usual /bin/sh) forks a lone command
  // rather than exec'ing it, and with SHELL unset script picks /bin/sh: polod would then be a
  // grandchild, and SIGTERM would reach the shell only (polod takes the hang-up that follows as a
  // reload and lives on). `exec` makes polod script's own child whatever the shell.
  const command = ['exec', process.execPath, POLOD, '--state-dir', state, '--interface', host.address, ...extra].join(' ');
  const proc: Proc = host.spawn(['script', '-qefc', command, '/dev/null'], { env: { NO_COLOR: '', ...env } });
  await proc.waitForLine((l) => l.includes('polod ready'), 'polod ready on the terminal', 20_000, 'stdout');
  const pid = proc.pid;
  assert.ok(pid !== undefined);
  const polod = await waitFor(() => children(pid)[0], { what: "script's child", timeoutMs: 5000 });
  assert.ok(commandLine(polod).includes(POLOD), `script's child ${polod} is polod: ${commandLine(polod)}`);
  process.kill(polod, 'SIGTERM');
  await proc.exited;
  // script can exit as soon as polod's terminal closes, before the kernel has closed polod's later
  // descriptors (its listening sockets): the next polod on this host would then find its ports
  // taken. Wait until every thread of polod has exited, when every descriptor it had is closed.
  await waitFor(() => exitedProcess(polod), { what: `polod ${polod} gone`, timeoutMs: 5000 });
  return proc.stdout;
}

test('on a terminal: a coloured text line per event, level and message first', async (t) => {
  if (!requireNetns(t)) return;
  const host = (await fixture.lan()).host(1);
  const out = await polodOnTerminal(host, []);
  const ready = out.split(/\r?\n/).find((l) => l.includes('polod ready')) ?? '';
  assert.ok(ready.startsWith('\u001b[32mINFO \u001b[0m polod ready time='), JSON.stringify(ready));
});

test('on a terminal with NO_COLOR: text without colour; with --log-format json: JSON', async (t) => {
  if (!requireNetns(t)) return;
  const host = (await fixture.lan()).host(1);
  const plain = await polodOnTerminal(host, [], { NO_COLOR: '1' });
  assert.ok(!plain.includes('\u001b'), 'no escape sequence at all');
  assert.match(plain, /^INFO {2}polod ready time=/m);
  const json = await polodOnTerminal(host, ['--log-format', 'json']);
  const line = json.split(/\r?\n/).find((l) => l.includes('polod ready')) ?? '';
  assert.equal((JSON.parse(line) as { msg: string }).msg, 'polod ready');
});

test('--version prints the version of package.json on all four commands', async () => {
  for (const command of ['polod', 'marcod', 'polo', 'marco']) {
    const file = command === 'marco' ? MARCO : path.join(cli, `${command}.js`);
    const res = await runProc([process.execPath, file, '--version']);
    assert.equal(res.code, 0, `${command}: ${res.stderr}`);
    assert.equal(res.stdout, `${pkg.version}\n`, command);
  }
});

test('--help: the flags README documents are listed, and the documentation named exists', async () => {
  const help = async (command: string): Promise<string> => {
    const res = await runProc([process.execPath, path.join(cli, `${command}.js`), '--help']);
    assert.equal(res.code, 0, res.stderr);
    return res.stdout;
  };
  const polod = await help('polod');
  for (const flag of ['--binding-port', '--check', '--log-format', '--state-dir', '--version']) assert.ok(polod.includes(flag), `polod --help lists ${flag}`);
  const marcod = await help('marcod');
  for (const flag of ['--max-requests', '--log-format', '--version']) assert.ok(marcod.includes(flag), `marcod --help lists ${flag}`);
  // marcod --help once named a document the repository does not have: every one it names exists.
  const repo = path.resolve(cli, '..', '..', '..');
  for (const doc of marcod.match(/[\w./-]+\.md\b/g) ?? []) assert.ok(existsSync(path.join(repo, doc)), `marcod --help names ${doc}`);
  assert.match(marcod, /docs\/protocol\.md §4/);
  assert.match(readFileSync(path.join(repo, 'docs', 'protocol.md'), 'utf8'), /^## §4 marcod/m);
  const polo = await help('polo');
  assert.match(polo, /--timeout <ms> +deadline of the request in ms, 0 = none/);
});
