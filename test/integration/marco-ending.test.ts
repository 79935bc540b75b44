/**
 * How the real `marco` process ends, inside a namespace LAN: Ctrl-C (SIGINT) ends a query with
 * no deadline and says what was found (exit 1 when nothing), and `--timeout` bounds the whole
 * command, host-name resolution included, even when the resolver itself would wait far longer.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { requireNetns } from '../helpers/netns.js';
import { lanFixture, MARCO, runMarco, startPolod } from '../helpers/lan-daemons.js';
import { waitFor } from '../helpers/wait.js';

const fixture = lanFixture({ name: 'end7', hosts: 2, subnet: 71 });

/**
 * True once process `pid` holds a UDP socket: marco has opened its query socket, which it does
 * after installing its SIGINT handler. (A netlink socket of `ip netns exec`, which runs first
 * under the same pid, does not count.)
 */
function hasUdpSocket(pid: number): boolean {
  try {
    const inodes = new Set<string>();
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m?.[1] !== undefined) inodes.add(m[1]);
      } catch {
        // the fd closed meanwhile
      }
    }
    const rows = readFileSync(`/proc/${pid}/net/udp`, 'utf8').trim().split('\n').slice(1);
    return rows.some((row) => inodes.has(row.trim().split(/\s+/)[9] ?? ''));
  } catch {
    return false;
  }
}

test('Ctrl-C ends a query without a deadline: exit 1 and "before Ctrl-C" when nobody answered', async (t) => {
  if (!requireNetns(t)) return;
  const lan = await fixture.lan();
  const host = lan.host(2);
  const proc = host.spawn([process.execPath, MARCO, 'discover', '--timeout', '0', '--group', '224.0.0.190', '--interface', host.address]);
  await waitFor(() => proc.pid !== undefined && hasUdpSocket(proc.pid), { what: 'marco opened its query socket', timeoutMs: 15_000 });
  proc.kill('SIGINT');
  const exit = await proc.exited;
  assert.equal(exit.code, 1, proc.stderr);
  assert.equal(proc.stderr, 'marco: no node answered before Ctrl-C\n');
});

test('Ctrl-C after an answer prints the node found and exits 0', async (t) => {
  if (!requireNetns(t)) return;
  const lan = await fixture.lan();
  await startPolod(fixture, lan.host(1), { hostname: 'end-a' });
  const host = lan.host(2);
  // --max-nodes 2 with one polod: the query can only end by Ctrl-C.
  const proc = host.spawn([process.execPath, MARCO, 'discover', '--timeout', '0', '--max-nodes', '2', '--interface', host.address]);
  await waitFor(() => proc.pid !== undefined && hasUdpSocket(proc.pid), { what: 'marco opened its query socket', timeoutMs: 15_000 });
  await waitFor(() => udpReceived(proc.pid ?? 0) > 0, { what: 'marco received the polod reply', timeoutMs: 15_000 });
  proc.kill('SIGINT');
  const exit = await proc.exited;
  assert.equal(exit.code, 0, proc.stderr);
  assert.match(proc.stdout, /^ADDRESS +PARAMS\n10\.201\.71\.1 +hostname=end-a\n$/);
});

test('--timeout bounds host-name resolution: a resolver that never answers does not hold marco', async (t) => {
  if (!requireNetns(t)) return;
  const lan = await fixture.lan();
  const host = lan.host(2);
  // `ip netns exec` mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf: a name server on
  // the LAN that does not exist, asked 5 times for 30 s each. Without the bound, marco would wait
  // for the resolver (minutes) and runMarco would kill it.
  const etc = path.join('/etc/netns', host.ns);
  await mkdir(etc, { recursive: true });
  t.after(() => rm(etc, { recursive: true, force: true }));
  await writeFile(path.join(etc, 'resolv.conf'), 'nameserver 10.201.71.99\noptions timeout:30 attempts:5\n');
  const run = await runMarco(host, ['services', 'nosuchhost.invalid', '--timeout', '300'], 20_000);
  assert.equal(run.code, 1, run.stderr);
  assert.equal(run.stderr, 'marco: no answer from nosuchhost.invalid within 300 ms\n');
});

/**
 * UDP datagrams read by applications in the network namespace of `pid`: the kernel counts
 * `Udp: InDatagrams` when a socket's owner reads one (udp_recvmsg). marco is the only UDP
 * program in its host's namespace, so a count above 0 means it has read the polod's reply (and
 * handled it in the same turn, before a later signal's handler runs).
 */
function udpReceived(pid: number): number {
  try {
    const lines = readFileSync(`/proc/${pid}/net/snmp`, 'utf8').split('\n').filter((l) => l.startsWith('Udp: '));
    const names = lines[0]?.split(/\s+/) ?? [];
    const values = lines[1]?.split(/\s+/) ?? [];
    return Number(values[names.indexOf('InDatagrams')] ?? 0);
  } catch {
    return 0;
  }
}
