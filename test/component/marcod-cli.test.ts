/**
 * The marcod command's `main(argv, io)` without a running daemon: help with the exit codes,
 * usage and configuration errors (exit 2), and a bind failure (exit 3). The running daemon and
 * its signals are tested as a real process in test/integration/marcod-*.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { main } from '../../src/cli/marcod.js';
import { runMain, type CliRun } from '../helpers/cli-io.js';

function run(argv: string[]): Promise<CliRun> {
  return runMain((io) => main(argv, io));
}

test('--help documents the flags, the replies and the exit codes', async () => {
  const { code, stdout } = await run(['--help']);
  assert.equal(code, 0);
  for (const text of ['--bind', '--port', '--polo-port', '--config', '--group', '--interface', '--timeout', '--frame-size', '--log-level']) {
    assert.ok(stdout.includes(text), text);
  }
  assert.match(stdout, /\{"Error": true\}/);
  assert.match(stdout, /Exit codes:\n {2}0 .*\n {2}2 .*\n {2}3 /);
});

test('bad flag values exit 2 with one line naming the flag, then the usage', async () => {
  for (const argv of [['--port', '0'], ['--bind', 'localhost'], ['--group', '10.0.0.1'], ['--frame-size', '10'], ['--log-level', 'loud'], ['--timeout', '-1'], ['--nope']]) {
    const { code, stderr } = await run(argv);
    assert.equal(code, 2, argv.join(' '));
    assert.match(stderr, /^marcod: .*\nUsage: marcod/, argv.join(' '));
  }
});

test('a missing --config file or a bad value in it exits 2 naming file and key', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'marcod-cli-'));
  try {
    const missing = await run(['--config', path.join(dir, 'nope.cfg')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nope\.cfg: no such config file/);
    const cfg = path.join(dir, 'marco.cfg');
    await writeFile(cfg, '[marco]\ntimeout = soon\n');
    const bad = await run(['--config', cfg]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /marco\.cfg: \[marco\] timeout: 'soon'/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('an API address that cannot be bound exits 3 with one line', async () => {
  // 192.0.2.1 (TEST-NET-1) is not an address of this host: the bind fails, nothing is sent.
  const { code, stderr } = await run(['--bind', '192.0.2.1', '--port', '1338', '--log-level', 'silent']);
  assert.equal(code, 3);
  assert.match(stderr, /^marcod: cannot listen on 192\.0\.2\.1:1338: bind EADDRNOTAVAIL/);
});
