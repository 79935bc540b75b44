/**
 * `marco doctor` in namespaces set up to have each problem: a healthy host (polod, marcod, a
 * good token file) passes every check; then, one at a time, an interface without MULTICAST, no
 * route for 224.0.0.0/4, an nftables rule dropping UDP 1337, no polod, a polod serving other
 * groups, a publish API at another socket, and a token file others may read each fail with a fix.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { requireNetns, type LanHost } from '../helpers/netns.js';
import { ipIn, lanFixture, MARCO, startPolod } from '../helpers/lan-daemons.js';
import { startMarcod } from '../helpers/marcod-lan.js';

const fixture = lanFixture({ name: 'doc7', hosts: 3, subnet: 76 });

interface Finding {
  check: string;
  status: 'ok' | 'warn' | 'fail' | 'skip';
  message: string;
  fix?: string;
}

async function doctor(host: LanHost, args: readonly string[]): Promise<{ code: number | null; findings: Finding[]; stderr: string }> {
  const res = await host.run([process.execPath, MARCO, 'doctor', '--json', '--timeout', '500', ...args], { timeoutMs: 30_000 });
  let findings: Finding[] = [];
  try {
    findings = JSON.parse(res.stdout) as Finding[];
  } catch {
    assert.fail(`doctor printed no JSON (exit ${res.code}): ${res.stdout}${res.stderr}`);
  }
  return { code: res.code, findings, stderr: res.stderr };
}

function failed(findings: readonly Finding[], check: string): Finding[] {
  return findings.filter((f) => f.check === check && f.status === 'fail');
}

/** A token file with `mode`, in a folder of its own. */
async function tokenFile(mode: number): Promise<string> {
  const dir = path.join(await fixture.tmpDir(), '.polo');
  await mkdir(dir, { mode: 0o700 });
  const file = path.join(dir, 'token');
  await writeFile(file, 'x'.repeat(40));
  await chmod(file, mode);
  return file;
}

test('a healthy host passes: interfaces, route, groups, firewall, polod, marcod, publish API, token', async (t) => {
  if (!requireNetns(t)) return;
  const lan = await fixture.lan();
  const host = lan.host(1);
  const polod = await startPolod(fixture, host);
  await startMarcod(fixture, host);
  const state = polod.stateDir;
  const token = await tokenFile(0o600);
  const { code, findings } = await doctor(host, ['--interface', host.address, '--state-dir', state, '--token-file', token]);
  assert.deepEqual(findings.filter((f) => f.status !== 'ok'), [], JSON.stringify(findings, null, 1));
  assert.equal(code, 0);
  for (const check of ['interfaces', 'route', 'firewall', 'groups', 'polod', 'marcod', 'publish API', 'token']) {
    assert.ok(findings.some((f) => f.check === check), `checks ${check}`);
  }
});

test('no polod: exit 1, polod fails with how to start it', async (t) => {
  if (!requireNetns(t)) return;
  const host = (await fixture.lan()).host(2);
  const { code, findings } = await doctor(host, ['--interface', host.address]);
  assert.equal(code, 1);
  const [f] = failed(findings, 'polod');
  assert.match(f?.message ?? '', /not running/);
  assert.match(f?.fix ?? '', /systemctl start polod/);
});

test('an interface without MULTICAST fails with the ip command that fixes it', async (t) => {
  if (!requireNetns(t)) return;
  const host = (await fixture.lan()).host(2);
  await ipIn(host, ['link', 'set', 'eth0', 'multicast', 'off']);
  try {
    const { findings } = await doctor(host, ['--interface', host.address]);
    const [f] = failed(findings, 'interfaces');
    assert.match(f?.message ?? '', /no MULTICAST flag/);
    assert.equal(f?.fix, 'ip link set dev eth0 multicast on');
  } finally {
    await ipIn(host, ['link', 'set', 'eth0', 'multicast', 'on']);
  }
});

test('no route for 224.0.0.0/4 fails with the route to add', async (t) => {
  if (!requireNetns(t)) return;
  const host = (await fixture.lan()).host(2);
  await ipIn(host, ['route', 'del', '224.0.0.0/4', 'dev', 'eth0']);
  try {
    const { findings } = await doctor(host, []);
    const [f] = failed(findings, 'route');
    assert.match(f?.message ?? '', /no route for 224\.0\.0\.112, 224\.0\.0\.113/);
    assert.match(f?.fix ?? '', /^ip route add 224\.0\.0\.0\/4 dev eth0/);
  } finally {
    await ipIn(host, ['route', 'replace', '224.0.0.0/4', 'dev', 'eth0']);
  }
});

test('an nftables rule dropping UDP 1337 fails, naming the rule', async (t) => {
  if (!requireNetns(t)) return;
  const host = (await fixture.lan()).host(2);
  const nft = async (...args: string[]): Promise<void> => {
    const res = await host.run(['nft', ...args]);
    assert.equal(res.code, 0, `nft ${args.join(' ')}: ${res.stderr}`);
  };
  await nft('add', 'table', 'inet', 'doc7');
  t.after(() => host.run(['nft', 'delete', 'table', 'inet', 'doc7']));
  await nft('add', 'chain', 'inet', 'doc7', 'input', '{ type filter hook input priority 0; }');
  await nft('add', 'rule', 'inet', 'doc7', 'input', 'udp', 'dport', '1337', 'drop');
  const { code, findings } = await doctor(host, ['--interface', host.address]);
  assert.equal(code, 1);
  const [f] = failed(findings, 'firewall');
  assert.match(f?.message ?? '', /nft chain input: "udp dport 1337 drop" drops MarcoPolo's UDP 1337/);
  assert.ok(f?.fix);
});

test('a polod serving other groups, and its API at another socket, fail with fixes', async (t) => {
  if (!requireNetns(t)) return;
  const host = (await fixture.lan()).host(3);
  await startPolod(fixture, host, { groups: ['224.0.0.150'] });
  const { findings } = await doctor(host, ['--interface', host.address]);
  assert.deepEqual(
    failed(findings, 'groups').map((f) => f.message),
    ['224.0.0.112', '224.0.0.113'].map((g) => `polod runs but ${g} is joined on no interface: queries to it go unanswered`),
  );
  assert.match(failed(findings, 'polod')[0]?.message ?? '', /did not answer a Marco query in 224\.0\.0\.112, 224\.0\.0\.113/);
  // Started with --state-dir, so the default socket is not where its API is.
  assert.match(failed(findings, 'publish API')[0]?.fix ?? '', /--state-dir/);
  // Asked about the group it serves, the same polod passes.
  const served = await doctor(host, ['--interface', host.address, '--group', '224.0.0.150']);
  assert.deepEqual(failed(served.findings, 'polod'), []);
  assert.deepEqual(failed(served.findings, 'groups'), []);
});

test('a token file others may read fails with chmod 600', async (t) => {
  if (!requireNetns(t)) return;
  const host = (await fixture.lan()).host(2);
  const token = await tokenFile(0o644);
  const { findings } = await doctor(host, ['--interface', host.address, '--token-file', token]);
  const [f] = failed(findings, 'token');
  assert.match(f?.message ?? '', /mode 0644/);
  assert.equal(f?.fix, `chmod 600 ${token}`);
});

test('marco doctor prints a line per check with its fix, and documents its exit codes', async (t) => {
  if (!requireNetns(t)) return;
  const host = (await fixture.lan()).host(2);
  const res = await host.run([process.execPath, MARCO, 'doctor', '--timeout', '300', '--interface', host.address], { timeoutMs: 30_000 });
  assert.equal(res.code, 1);
  assert.match(res.stdout, /^FAIL +polod +polod is not running on this host\n +fix: systemctl start polod/m);
  const help = await host.run([process.execPath, MARCO, 'doctor', '--help']);
  assert.match(help.stdout, /Exit codes:\n {2}0 {2}no check failed/);
});
