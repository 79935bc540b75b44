/**
 * The commands' error paths, run as the built processes: marco usage errors exit 2 with one
 * line naming the problem (then the usage); polod with a bad configuration value exits 2 with
 * one line naming the file, key and value; polod with an unknown configuration key warns and
 * serves (checked inside a one-host namespace LAN).
 *
 * The usage-error runs need no namespace: they fail before opening any socket. In case one did
 * not, each names the loopback interface, so a query could only go out on `lo`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { requireNetns } from '../helpers/netns.js';
import { runProc } from '../helpers/proc.js';
import { lanFixture, logIs, MARCO, marcoNodes, POLOD, startPolod } from '../helpers/lan-daemons.js';

const fixture = lanFixture({ name: 'cli', hosts: 1, subnet: 36 });
const LO = ['--interface', '127.0.0.1'];

/** Checks the "one line, then the usage" shape; returns the one line. */
function oneErrorLine(stderr: string, command: string): string {
  const [first = '', ...rest] = stderr.trimEnd().split('\n');
  assert.ok(first.startsWith(`${command}: `), `first line names the command: ${JSON.stringify(first)}`);
  for (const line of rest) {
    assert.match(line, /^(Usage: |\s+\S+ |Run ')/, `only the usage follows the error line: ${JSON.stringify(line)}`);
  }
  return first;
}

test('marco usage errors exit 2 with one line naming the problem', async () => {
  const cases: [args: string[], mentions: RegExp][] = [
    [[], /missing command/],
    [['bogus'], /unknown command 'bogus'/],
    [['discover', '--timeout', 'abc', ...LO], /--timeout.*'abc'/],
    [['discover', '--timeout', '99999999999', ...LO], /timeout 99999999999/],
    [['discover', '--group', '10.0.0.1', ...LO], /--group.*'10\.0\.0\.1'.*multicast/],
    [['discover', '--max-nodes', '-1', ...LO], /--max-nodes.*'-1'/],
    [['discover', '--exclude', '300.1.1.1', ...LO], /--exclude.*'300\.1\.1\.1'/],
    [['discover', '--param', 'novalue', ...LO], /--param.*'novalue'/],
    [['discover', '--port', '0', ...LO], /--port.*'0'/],
    [['discover', '--retries', '101', ...LO], /retries 101/],
    [['discover', '--interface', 'eth0'], /--interface.*'eth0'/],
    [['discover', '--nosuch', ...LO], /unknown option '--nosuch'/],
    [['discover', 'extra', ...LO], /too many arguments/],
    [['request-for', ...LO], /missing required argument 'SERVICE'/],
    [['request-for', '', ...LO], /service ""/],
    [['services', ...LO], /missing required argument 'NODE'/],
    [['services', '10.0.0.1', '--max-nodes', '1', ...LO], /unknown option '--max-nodes'/],
  ];
  const results = await Promise.all(cases.map(([args]) => runProc([process.execPath, MARCO, ...args])));
  results.forEach((res, k) => {
    const [args, mentions] = cases[k] ?? [[], /./];
    const what = `marco ${args.join(' ')}`;
    assert.equal(res.code, 2, `${what}: exit code (stderr: ${res.stderr})`);
    assert.equal(res.stdout, '', `${what}: nothing on stdout`);
    assert.match(oneErrorLine(res.stderr, 'marco'), mentions, what);
  });
});

test('polod with a bad configuration value exits 2 with one line naming the key and the value', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mp-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cases: [key: string, value: string][] = [
    ['port', '99999'],
    ['multicast_addrs', '10.0.0.1'],
    ['hops', '300'],
    ['logging_level', 'loud'],
    ['polo_params', '[1, 2]'],
    ['verify_regexp', '(['],
    ['retries', 'many'],
    ['polo_user_dir', '/etc'],
    ['polo_binding_port', 'http'],
  ];
  const results = await Promise.all(
    cases.map(async ([key, value], k) => {
      const cfg = path.join(dir, `bad-${k}.cfg`);
      await writeFile(cfg, `[polo]\n${key} = ${value}\n`);
      // Loopback only and a spare port, should the bad value ever be accepted.
      const argv = [process.execPath, POLOD, '--config', cfg, ...LO, '--port', '47999'];
      argv.push('--services-dir', path.join(dir, 'services'), '--state-dir', path.join(dir, 'state'));
      return { cfg, res: await runProc(argv, { timeoutMs: 10_000 }) };
    }),
  );
  results.forEach(({ cfg, res }, k) => {
    const [key, value] = cases[k] ?? ['', ''];
    const what = `${key} = ${value}`;
    assert.equal(res.timedOut, false, `${what}: polod must not start`);
    assert.equal(res.code, 2, `${what}: exit code (stderr: ${res.stderr})`);
    assert.equal(res.stdout, '', `${what}: nothing on stdout`);
    const lines = res.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `${what}: one line: ${res.stderr}`);
    const line = lines[0] ?? '';
    assert.ok(line.startsWith('polod: '), line);
    assert.ok(line.includes(cfg), `${what}: names the file: ${line}`);
    assert.ok(line.includes(key), `${what}: names the key: ${line}`);
    assert.ok(line.includes(`'${value}'`), `${what}: names the value: ${line}`);
  });
});

test('polod with an unknown configuration key warns, then starts and answers', async (t) => {
  if (!requireNetns(t)) return;
  const host = (await fixture.lan()).host(1);
  const polod = await startPolod(fixture, host, {
    // An unknown key, and a reference key that is accepted without effect (no warning).
    config: '[polo]\nfrobnicate = yes\nmulticast_addr_fallback = 224.0.0.1\nport = 1337\n',
    services: { web: { id: 'web', params: { port: 8080 } } },
  });
  t.after(() => polod.stop());
  const warnings = polod.logs((r) => r['level'] === 40).map((r) => String(r['msg']));
  assert.equal(warnings.filter((m) => m.includes("unknown key 'frobnicate'")).length, 1, warnings.join('\n'));
  assert.deepEqual(warnings.filter((m) => m.includes('multicast_addr_fallback')), []);
  assert.equal(polod.logs(logIs('polod started')).length, 1);

  // A polod answers queries from its own host too (each query ends at its first node).
  const [found, web] = await Promise.all([
    marcoNodes(host, ['discover', '--timeout', '10000', '--max-nodes', '1']),
    marcoNodes(host, ['request-for', 'web', '--timeout', '10000', '--max-nodes', '1']),
  ]);
  assert.deepEqual(found.nodes, [{ address: host.address, params: { hostname: 'h1' } }]);
  assert.deepEqual(web.nodes, [{ address: host.address, params: { port: 8080 } }]);
  assert.deepEqual(await polod.stop(), { code: 0, signal: null }, 'SIGTERM stops it with exit 0');
});
