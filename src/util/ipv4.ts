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

/** True when `text` is an IPv6 address (net.isIPv6, loaded only when asked). */
export function isIPv6(text: string): boolean {
  if (!text.includes(':')) return false;
  return process.getBuiltinModule('node:net').isIPv6(text);
}
