/**
 * `polod --check` and the folder rules of polod's start, as the real command: --check prints what
 * would be served per group and every problem naming the file, exits 0 or 2, and binds nothing
 * (it runs beside a polod that holds the same ports) and writes nothing; an explicit
 * --services-dir that does not exist stops polod (exit 2); a fresh --state-dir starts without a
 * warning; a non-root polod without --state-dir is told to use it.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { requireNetns } from '../helpers/netns.js';
import { lanFixture, logIs, POLOD, startPolod } from '../helpers/lan-daemons.js';

const fixture = lanFixture({ name: 'chk7', hosts: 1, subnet: 74 });

/** A config whose per-user folder no real user has, so other users' files cannot leak in. */
async function isolatedConfig(dir: string): Promise<string> {
  const cfg = path.join(dir, 'polo.cfg');
  await writeFile(cfg, `[polo]\npolo_user_dir = .polo-check7-${process.pid}\n`);
  return cfg;
}

test('--check lists what each group would serve and every problem by file; exit 2; binds and writes nothing', async (t) => {
  if (!requireNetns(t)) return;
  const host = (await fixture.lan()).host(1);
  // A polod holding the same ports (publish API TLS 1390 included): a --check that bound any of
  // them would fail with "address in use".
  await startPolod(fixture, host);
  const dir = await fixture.tmpDir();
  const services = path.join(dir, 'services');
  const state = path.join(dir, 'state');
  await mkdir(services);
  await writeFile(path.join(services, 'web'), JSON.stringify({ id: 'web', params: { port: 8080 } }));
  await writeFile(path.join(services, 'printer'), JSON.stringify({ id: 'printer', groups: ['224.0.0.113'] }));
  await writeFile(path.join(services, 'broken'), '{"id": ');
  await writeFile(path.join(services, 'userish'), JSON.stringify({ id: 'alice:web' }));
  const cfg = await isolatedConfig(dir);
  const argv = [process.execPath, POLOD, '--check', '--config', cfg, '--services-dir', services, '--state-dir', state];

  const bad = await host.run(argv);
  assert.equal(bad.code, 2, bad.stderr);
  assert.equal(bad.stderr, '');
  const out = bad.stdout;
  assert.match(out, new RegExp(`^configuration: ${cfg}$`, 'm'));
  assert.match(out, /^group 224\.0\.0\.112 port 1337: 1 service\n {2}web {2}\S+\/web$/m);
  assert.match(out, /^group 224\.0\.0\.113 port 1337: 2 services\n {2}printer {2}\S+\/printer\n {2}web {6}\S+\/web$/m);
  assert.match(out, /^2 problems:$/m);
  assert.match(out, new RegExp(`^ {2}${path.join(services, 'broken')}: not valid JSON`, 'm'));
  assert.match(out, new RegExp(`^ {2}${path.join(services, 'userish')}: .*user service`, 'm'));
  await assert.rejects(readdir(state), /ENOENT/, '--check writes nothing, not even the state folder');

  await rm(path.join(services, 'broken'));
  await rm(path.join(services, 'userish'));
  const good = await host.run(argv);
  assert.equal(good.code, 0, good.stdout + good.stderr);
  assert.match(good.stdout, /^no problems$/m);
});

test('--check: a bad configuration value is one line on stderr, exit 2', async (t) => {
  if (!requireNetns(t)) return;
  const host = (await fixture.lan()).host(1);
  const dir = await fixture.tmpDir();
  const cfg = path.join(dir, 'polo.cfg');
  await writeFile(cfg, '[polo]\nport = 99999\n');
  const res = await host.run([process.execPath, POLOD, '--check', '--config', cfg]);
  assert.equal(res.code, 2);
  assert.equal(res.stdout, '');
  assert.match(res.stderr, new RegExp(`^polod: ${cfg}: \\[polo\\] port: .*99999.*\\n$`));
});

test('an explicit --services-dir that does not exist stops polod: exit 2, one line', async (t) => {
  if (!requireNetns(t)) return;
  const host = (await fixture.lan()).host(1);
  const dir = await fixture.tmpDir();
  const missing = path.join(dir, 'nosuch');
  const res = await host.run([process.execPath, POLOD, '--services-dir', missing, '--state-dir', path.join(dir, 'state')]);
  assert.equal(res.code, 2);
  assert.equal(res.stderr, `polod: --services-dir ${missing}: no such folder\n`);
});

test('a fresh --state-dir starts without a warning and gets its services/ folder', async (t) => {
  if (!requireNetns(t)) return;
  const host = (await fixture.lan()).host(1);
  const dir = await fixture.tmpDir();
  const state = path.join(dir, 'fresh', 'state');
  const proc = host.spawn([process.execPath, POLOD, '--state-dir', state, '--interface', host.address, '--binding-port', '41390']);
  t.after(() => proc.stop());
  await proc.waitForJsonLog(logIs('polod ready'), 'polod ready', 20_000);
  assert.deepEqual(proc.jsonLogs().filter((r) => r['level'] !== 30), [], 'nothing above info');
  assert.ok((await readdir(state)).includes('services'));
});

test('a permission error on the system paths, not as root, suggests --state-dir', async (t) => {
  if (!requireNetns(t)) return;
  const host = (await fixture.lan()).host(1);
  // nobody cannot create /etc/marcopolo (which this test never creates either).
  const res = await host.run([
    'setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups',
    process.execPath, POLOD, '--interface', host.address, '--binding-port', '41391', '--log-level', 'fatal',
  ], { timeoutMs: 20_000 });
  assert.equal(res.code, 3, res.stderr);
  assert.match(res.stderr, /^polod: .*EACCES.*; .*--state-dir DIR \(a folder you own\)/);
});
