/**
 * Turning the `node` of a Services query (an IPv4 address or a host name) into an address,
 * within the call's deadline and abort signals.
 */
import { isIPv4, isIPv6 } from '../util/ipv4.js';
import { AbortedError, InvalidArgumentError, MarcoPoloError } from '../errors.js';
import { onAnyAbort, throwIfAborted } from '../util/abort.js';

/** Resolves a host name to one IPv4 address. Injectable for tests; the default asks the system resolver. */
export type HostLookup = (hostname: string) => Promise<string>;

/**
 * The system resolver, IPv4 only (IPv6 nodes are given as literals: docs/protocol.md §9). node:dns/promises is
 * loaded on first use: most queries name an address, and `marco` starts faster without it.
 */
export const systemLookup: HostLookup = async (hostname) => {
  // Not import(): the installed marco runs as a script compiled by node:vm (scripts/marco-loader.cjs), where import() is unavailable.
  const { lookup } = process.getBuiltinModule('node:dns/promises');
  return (await lookup(hostname, { family: 4 })).address;
};

/** Resolution codes meaning "this name has no IPv4 address": the caller named a wrong node. */
const NOT_FOUND_CODES = new Set(['ENOTFOUND', 'ENODATA', 'EAI_NONAME', 'EAI_NODATA']);

/**
 * The IPv4 address of `node`, or undefined when the deadline (`timeout` ms) passes first.
 * Throws InvalidArgumentError for an empty, IPv6 or unknown node, AbortedError when a signal
 * fires, and MP_ERR_IO for any other resolver failure.
 */
export async function resolveNode(
  node: unknown,
  lookup: HostLookup,
  timeout: number,
  signals: readonly AbortSignal[],
): Promise<string | undefined> {
  if (typeof node !== 'string' || node.length === 0) {
    throw new InvalidArgumentError('invalid node: expected an IPv4 address or a host name');
  }
  if (isIPv4(node)) return node;
  // An IPv6 node as marco lists it (a link-local one with its interface: fe80::1%eth0).
  if (isIPv6(node)) return node;
  throwIfAborted(signals);

  // The resolver cannot be cancelled, so it races the deadline and the signals instead.
  const cleanups: Array<() => void> = [];
  try {
    const stop = new Promise<undefined>((resolve, reject) => {
      const timer = setTimeout(() => resolve(undefined), timeout).unref();
      cleanups.push(() => clearTimeout(timer));
      cleanups.push(onAnyAbort(signals, (signal) => reject(new AbortedError({ cause: signal.reason }))));
    });
    const address = await Promise.race([lookup(node), stop]);
    if (address !== undefined && !isIPv4(address)) {
      throw new InvalidArgumentError(`invalid node ${JSON.stringify(node)}: resolved to a non-IPv4 address`);
    }
    return address;
  } catch (err) {
    if (err instanceof MarcoPoloError) throw err;
    const code = (err as { code?: unknown } | null)?.code;
    if (typeof code === 'string' && NOT_FOUND_CODES.has(code)) {
      throw new InvalidArgumentError(`invalid node ${JSON.stringify(node)}: no IPv4 address found for this host name`);
    }
    const detail = err instanceof Error ? err.message : String(err);
    throw new MarcoPoloError('MP_ERR_IO', `could not resolve ${JSON.stringify(node)}: ${detail}`, { cause: err });
  } finally {
    for (const cleanup of cleanups) cleanup();
  }
}
