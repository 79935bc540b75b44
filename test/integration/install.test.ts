/**
 * A fresh install starts: the package is installed (`npm install -g`, into a scratch prefix) and
 * staged by systemd/install.sh into a scratch root (DESTDIR), then each unit's exact ExecStart
 * line runs as systemd would run it: as root, in its own network namespace, with the scratch
 * root's /etc/marcopolo seen at /etc/marcopolo (an overlay in a private mount namespace, so the
 * machine's own /etc is never written), a fresh /run with the unit's RuntimeDirectory, stderr
 * connected as journald connects it (JOURNAL_STREAM). Each must start with no file written by
 * hand, log readable lines without timestamps, read its config file once one is there, and
 * stop on SIGTERM with exit 0. `systemd-analyze verify` checks the staged units when available.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { requireNetns, type LanHost } from '../helpers/netns.js';
import { lanFixture } from '../helpers/lan-daemons.js';
import type { Proc } from '../helpers/proc.js';

const fixture = lanFixture({ name: 'inst7', hosts: 1, subnet: 72 });
const checkout = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

interface Staged {
  root: string;
  prefix: string;
}

let staged: Promise<Staged> | undefined;

/** npm install -g into a scratch prefix, then install.sh into a scratch root; once per file. */
function stage(): Promise<Staged> {
  staged ??= (async () => {
    const root = await fixture.tmpDir();
    const prefix = path.join(root, 'usr');
    execFileSync('npm', ['install', '-g', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', checkout], {
      stdio: 'pipe',
    });
    const out = execFileSync('bash', [path.join(checkout, 'systemd', 'install.sh')], {
      env: { ...process.env, DESTDIR: root },
      encoding: 'utf8',
    });
    assert.match(out, /^staged under /);
    return { root, prefix };
  })();
  return staged;
}

/** A staged unit's ExecStart= line split into words (no quoting in our units), and its RuntimeDirectory=. */
async function unitOf(root: string, unit: string): Promise<{ argv: string[]; runtimeDirs: string[] }> {
  const lines = (await readFile(path.join(root, 'etc', 'systemd', 'system', unit), 'utf8')).split('\n');
  const value = (key: string): string | undefined => lines.find((l) => l.startsWith(`${key}=`))?.slice(key.length + 1).trim();
  const exec = value('ExecStart');
  assert.ok(exec, `${unit} has an ExecStart line`);
  return { argv: exec.split(/\s+/), runtimeDirs: (value('RuntimeDirectory') ?? '').split(/\s+/).filter(Boolean) };
}

/**
 * Runs `argv` on `host` as the unit would run: private mounts with the scratch root's /etc over
 * /etc (overlay: everything else of /etc stays visible), a tmpfs /run holding /run/marcopolo,
 * the installed commands first on PATH, and JOURNAL_STREAM naming stderr as journald's stream.
 */
function runUnit(host: LanHost, root: string, prefix: string, unit: { argv: readonly string[]; runtimeDirs: readonly string[] }): Proc {
  const work = path.join(root, '.overlay-work');
  const script = [
    'set -e',
    `mkdir -p ${work}`,
    `mount -t overlay overlay -o lowerdir=/etc,upperdir=${root}/etc,workdir=${work} /etc`,
    'mount -t tmpfs -o mode=0755 tmpfs /run',
    ...unit.runtimeDirs.map((d) => `mkdir -m 0755 /run/${d}`),
    `export PATH=${prefix}/bin:$PATH`,
    'export JOURNAL_STREAM="$(stat -L -c %d:%i /proc/self/fd/2)"',
    'exec "$@"',
  ].join('\n');
  return host.spawn(['unshare', '-m', '--propagation', 'private', 'sh', '-c', script, 'unit', ...unit.argv]);
}

/** Text log lines under journald: level and message first, no time (journald stamps lines). */
function assertJournalLines(proc: Proc): void {
  const lines = proc.lines('stderr');
  assert.ok(lines.length > 0);
  for (const line of lines) {
    assert.match(line, /^(TRACE|DEBUG|INFO |WARN |ERROR|FATAL) \S/, `a text line: ${line}`);
    assert.doesNotMatch(line, /time=|"time"/, `no timestamp: ${line}`);
    assert.ok(!line.includes('\u001b'), `no colour: ${line}`);
  }
}

test('systemd-analyze verify accepts the staged units', async (t) => {
  if (spawnSync('systemd-analyze', ['--version']).status !== 0) {
    // scripts/install-test-deps.sh installs it, so CI always has it: only a bare machine skips.
    const ci = process.env['CI'];
    if (ci !== undefined && !['', '0', 'false'].includes(ci.toLowerCase())) throw new Error('systemd-analyze is required under CI');
    t.skip('systemd-analyze is not installed (scripts/install-test-deps.sh installs it)');
    return;
  }
  const { root } = await stage();
  const units = ['polod.service', 'marcod.service'].map((u) => path.join(root, 'etc', 'systemd', 'system', u));
  const res = spawnSync('systemd-analyze', ['verify', ...units], { encoding: 'utf8' });
  assert.equal(res.status, 0, res.stderr);
  assert.equal(res.stderr.trim(), '', 'no warnings');
});

test("polod.service's ExecStart starts on a fresh install and reads polo.cfg once present", async (t) => {
  if (!requireNetns(t)) return;
  const lan = await fixture.lan();
  const { root, prefix } = await stage();
  const unit = await unitOf(root, 'polod.service');
  assert.deepEqual(unit.argv, ['/usr/bin/env', 'polod'], 'no --config pointing at a file the install does not write');

  const fresh = runUnit(lan.host(1), root, prefix, unit);
  await fresh.waitForLine((l) => l.startsWith('INFO  polod ready'), 'polod ready', 20_000, 'stderr');
  fresh.kill('SIGTERM');
  assert.equal((await fresh.exited).code, 0, fresh.stderr);
  assertJournalLines(fresh);
  assert.doesNotMatch(fresh.stderr, /WARN/, 'a fresh install gives no warning');
  // First start created polod's own files in the (scratch) /etc/marcopolo, private ones 0600.
  assert.equal((await stat(path.join(root, 'etc/marcopolo/polo/secret'))).mode & 0o777, 0o600);
  assert.equal((await stat(path.join(root, 'etc/marcopolo/certs/polossl.key'))).mode & 0o777, 0o600);
  assert.equal((await stat(path.join(root, 'etc/marcopolo/certs/polossl.crt'))).mode & 0o777, 0o644);

  await writeFile(path.join(root, 'etc/marcopolo/polo/polo.cfg'), '[polo]\nport = 41337\n');
  const configured = runUnit(lan.host(1), root, prefix, unit);
  await configured.waitForLine((l) => l.startsWith('INFO  polod started') && / port=41337( |$)/.test(l), 'polod started on the configured port', 20_000, 'stderr');
  await configured.waitForLine((l) => l.startsWith('INFO  polod ready'), 'polod ready', 20_000, 'stderr');
  configured.kill('SIGTERM');
  assert.equal((await configured.exited).code, 0, configured.stderr);
});

test("marcod.service's ExecStart starts on a fresh install and reads marco.cfg once present", async (t) => {
  if (!requireNetns(t)) return;
  const lan = await fixture.lan();
  const { root, prefix } = await stage();
  const unit = await unitOf(root, 'marcod.service');
  assert.ok(!unit.argv.includes('--config'), 'no --config pointing at a file the install does not write');

  const fresh = runUnit(lan.host(1), root, prefix, unit);
  await fresh.waitForLine((l) => l.startsWith('INFO  marcod started') && / port=1338( |$)/.test(l), 'marcod started on 127.0.1.1:1338', 20_000, 'stderr');
  fresh.kill('SIGTERM');
  assert.equal((await fresh.exited).code, 0, fresh.stderr);
  assertJournalLines(fresh);

  await mkdir(path.join(root, 'etc/marcopolo/marco'), { recursive: true });
  await writeFile(path.join(root, 'etc/marcopolo/marco/marco.cfg'), '[marco]\nmarcoport = 41338\n');
  const configured = runUnit(lan.host(1), root, prefix, unit);
  await configured.waitForLine((l) => l.startsWith('INFO  marcod started') && / port=41338( |$)/.test(l), 'marcod started on the configured port', 20_000, 'stderr');
  configured.kill('SIGTERM');
  assert.equal((await configured.exited).code, 0, configured.stderr);
});
