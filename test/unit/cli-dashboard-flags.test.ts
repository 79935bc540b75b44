/**
 * `marco dashboard` takes the grid flags of the other marco commands: keys (`--key`, `--auth`)
 * and the grid registry (`--registry`, with its user), checked before anything is opened.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ExitCode } from '../../src/cli/common.js';
import { main } from '../../src/cli/dashboard.js';
import { runMain, type CliRun } from '../helpers/cli-io.js';

function run(argv: string[]): Promise<CliRun> {
  return runMain((io) => main(argv, io));
}

test('--help lists the key and registry flags', async () => {
  const { code, stdout } = await run(['--help']);
  assert.equal(code, ExitCode.OK);
  for (const flag of ['--key <file>', '--auth <policy>', '--registry <urls>', '--registry-user <name>', '--registry-password-file <file>']) {
    assert.ok(stdout.includes(flag), `dashboard --help lists ${flag}`);
  }
});

test('a bad registry URL, a registry user without --registry, a missing key file: one line, exit 2', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mp-dashboard-flags-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const password = path.join(dir, 'password');
  await writeFile(password, 'secret\n');
  const cases: Array<[string[], RegExp]> = [
    [['--registry', 'ftp://192.0.2.5:2379'], /--registry/],
    [['--registry-user', 'root', '--registry-password-file', password], /--registry-user needs --registry/],
    [['--key', '/nonexistent/grid.key'], /\/nonexistent\/grid\.key/],
  ];
  for (const [flags, message] of cases) {
    const { code, stderr } = await run(['--listen', '127.0.0.1:0', ...flags]);
    assert.equal(code, ExitCode.USAGE, flags.join(' '));
    const lines = stderr.split('\n').filter(Boolean);
    assert.equal(lines.length, 1, stderr);
    assert.match(lines[0] ?? '', message, flags.join(' '));
  }
});
