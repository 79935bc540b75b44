/**
 * IPv4 address syntax without `node:net`: loading node:net pulls in Node's whole stream stack
 * (about 30 internal modules), a large share of `marco`'s start-up, for a regular expression.
 * Same rule as net.isIPv4: four decimal octets 0–255, no leading zeros.
 */
const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]\\d|\\d)';
const IPV4 = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);

/** True for a dotted-quad IPv4 address, as net.isIPv4. */
export function isIPv4(text: string): boolean {
  return IPV4.test(text);
}

/** True when `text` is an IPv6 address (net.isIPv6, loaded only when asked). */
export function isIPv6(text: string): boolean {
  if (!text.includes(':')) return false;
  return process.getBuiltinModule('node:net').isIPv6(text);
}
