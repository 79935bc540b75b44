/**
 * Which local user owns the other end of a loopback socket, as the kernel tells it in its socket
 * tables (`/proc/net/tcp`, `tcp6`, `udp`, `udp6`: one line per socket of this network namespace,
 * with its local and remote address and the uid that created it). Used by polod to count publish
 * connections per user and by marcod to share its capacity per user.
 *
 * Sound for loopback only: both ends of the connection are sockets of this host and namespace,
 * so the peer's own line is in the same table, keyed by its address and port, which the kernel
 * keeps unique while the socket lives. If the peer is gone (or several sockets match, as
 * SO_REUSEPORT allows), the answer is "unknown", never a guess.
 *
 * Unix sockets have no such table: `/proc/net/unix` lists each socket's inode and path but not
 * which socket it is connected to, so an accepted connection cannot be matched to its peer from
 * there. The kernel's answer is SO_PEERCRED, which Node does not expose (see docs/operations.md).
 */
import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { isIPv4 } from 'node:net';

/** One end of a socket: an IPv4 address (or an IPv4-mapped IPv6 one) and a port. */
export interface SocketEnd {
  readonly address: string;
  readonly port: number;
}

type Table = 'tcp' | 'udp';

/** Reads a kernel socket table; empty when it cannot be read (no /proc, not Linux). */
async function readTable(file: string): Promise<string> {
  try {
    return await readFile(file, 'latin1');
  } catch {
    return '';
  }
}

const littleEndian = endianness() === 'LE';

/** An IPv4 address as the kernel prints a `__be32` (`%08X` of the value in host order). */
function hex4(address: string): string | undefined {
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (!isIPv4(v4)) return undefined;
  const bytes = v4.split('.').map(Number);
  const ordered = littleEndian ? bytes.reverse() : bytes;
  return ordered.map((b) => b.toString(16).padStart(2, '0')).join('').toUpperCase();
}

/** The same address as an IPv4-mapped IPv6 one, as the `*6` tables print it (four words). */
function hex6(v4hex: string): string {
  const ffff = littleEndian ? 'FFFF0000' : '0000FFFF';
  return `0000000000000000${ffff}${v4hex}`;
}

function port4(port: number): string {
  return port.toString(16).padStart(4, '0').toUpperCase();
}

/** One line of a socket table: local end, remote end (as the kernel prints them) and uid. */
interface TableLine {
  readonly local: string;
  readonly remote: string;
  readonly uid: number;
}

/** Reads and parses a table's IPv4 and IPv6 files. */
async function readLines(table: Table): Promise<TableLine[]> {
  const lines: TableLine[] = [];
  for (const file of [`/proc/net/${table}`, `/proc/net/${table}6`]) {
    const text = await readTable(file);
    for (const line of text.split('\n')) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[1] === undefined || f[2] === undefined) continue;
      const uid = Number(f[7]);
      if (Number.isInteger(uid) && uid >= 0) lines.push({ local: f[1], remote: f[2], uid });
    }
  }
  return lines;
}

/**
 * The uids of the sockets in `lines` whose local end is `local` and, when given, whose remote
 * end is `remote`. `anyLocal` also matches a socket bound to the wildcard address on that port
 * (unconnected UDP clients).
 */
function uidsIn(lines: readonly TableLine[], local: SocketEnd, remote: SocketEnd | undefined, anyLocal: boolean): number[] {
  const l4 = hex4(local.address);
  const r4 = remote === undefined ? undefined : hex4(remote.address);
  if (l4 === undefined || (remote !== undefined && r4 === undefined)) return [];
  const lp = port4(local.port);
  const locals = new Set([`${l4}:${lp}`, `${hex6(l4)}:${lp}`]);
  if (anyLocal) {
    locals.add(`00000000:${lp}`);
    locals.add(`${'0'.repeat(32)}:${lp}`);
  }
  const remotes =
    remote === undefined || r4 === undefined ? undefined : new Set([`${r4}:${port4(remote.port)}`, `${hex6(r4)}:${port4(remote.port)}`]);
  return lines.filter((l) => locals.has(l.local) && (remotes === undefined || remotes.has(l.remote))).map((l) => l.uid);
}

/** The single uid among `uids`, or undefined (none, or an ambiguous match). */
function single(uids: number[]): number | undefined {
  const distinct = new Set(uids);
  return distinct.size === 1 ? uids[0] : undefined;
}

/**
 * The uid of the process that made the TCP connection `peer` → `server` (as seen by the server:
 * `peer` is the socket's remote end), or undefined when the kernel does not tell.
 */
export async function tcpPeerUid(server: SocketEnd, peer: SocketEnd): Promise<number | undefined> {
  return single(uidsIn(await readLines('tcp'), peer, server, false));
}

/** Who owns UDP senders, from one reading of the UDP socket table. */
export type UdpOwners = (peer: SocketEnd) => number | undefined;

/**
 * Reads the UDP socket table once; the function returned names the uid owning the socket that
 * sent from `peer` (unconnected, so matched by its local address or the wildcard, and its port),
 * or undefined when the table does not tell. Valid for senders that existed when it was read.
 */
export async function readUdpOwners(): Promise<UdpOwners> {
  const lines = await readLines('udp');
  return (peer) => single(uidsIn(lines, peer, undefined, true));
}

/** The uid owning the UDP socket that sent from `peer`, or undefined (see readUdpOwners). */
export async function udpPeerUid(peer: SocketEnd): Promise<number | undefined> {
  return (await readUdpOwners())(peer);
}
