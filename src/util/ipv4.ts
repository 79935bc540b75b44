/**
 * IPv4 address syntax without `node:net`: loading node:net pulls in Node's whole stream stack
 * (about 30 internal modules), a large share of `marco`'s start-up, for a regular expression.
 * Same rule as net.isIPv4: four decimal octets 0–255, no leading zeros.
 */
/** True for a dotted-quad IPv4 address, as net.isIPv4 (checked by hand: no regex to compile). */
export function isIPv4(text: string): boolean {
  const parts = text.split('.');
  if (parts.length !== 4) return false;
  for (const part of parts) {
    if (part.length === 0 || part.length > 3 || (part.length > 1 && part[0] === '0')) return false;
    for (let i = 0; i < part.length; i++) {
      const c = part.charCodeAt(i);
      if (c < 48 || c > 57) return false;
    }
    if (Number(part) > 255) return false;
  }
  return true;
}

/** True when the IPv6 address `text` is link-local (fe80::/10), whose zone names its interface. */
export function isLinkLocalIPv6(text: string): boolean {
  return /^fe[89ab]/i.test(text);
}

/** True when `text` is an IPv6 address (net.isIPv6, loaded only when asked). */
export function isIPv6(text: string): boolean {
  if (!text.includes(':')) return false;
  return process.getBuiltinModule('node:net').isIPv6(text);
}

/** An IPv4 literal as a 32-bit unsigned number, or undefined if it is not one. */
export function ipv4ToNumber(address: string): number | undefined {
  const parts = address.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^[0-9]{1,3}$/.test(p)) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    n = n * 256 + v;
  }
  return n;
}

/** Whether `a` and `b` share their first `prefixLength` bits. */
export function sameNetwork(a: number, b: number, prefixLength: number): boolean {
  if (prefixLength <= 0) return true;
  const size = 2 ** (32 - Math.min(32, prefixLength));
  return Math.floor(a / size) === Math.floor(b / size);
}
