/**
 * One mDNS responder of the peers benchmark, run inside a host's namespace: bonjour-service
 * (the most used Node.js mDNS library) publishing one `_<type>._tcp` service named after the
 * host, with the host's own `<name>.local` as its target (every namespace shares the machine's
 * host name, which would otherwise give ten responders one name and a probing conflict).
 *
 * Prints `{"published":true}` once probing and the first announcement are done, then answers
 * queries until SIGTERM, when it sends its goodbyes and exits.
 *
 * Usage: node mdnsResponder.js '<MdnsResponderConfig as JSON>'
 */
import Bonjour from 'bonjour-service';

/** What the responder is told. */
export interface MdnsResponderConfig {
  /** Service instance name, and the host label of its target (`<name>.local`). */
  readonly name: string;
  /** Service type without underscore or protocol: `web` is `_web._tcp`. */
  readonly type: string;
  readonly port: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as MdnsResponderConfig;

function main(): void {
  const bonjour = new Bonjour({}, (err: unknown) => {
    console.error(`mdnsResponder: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
  // IPv4 only, as the LAN and the other systems of the benchmark.
  const service = bonjour.publish({ name: config.name, type: config.type, port: config.port, host: `${config.name}.local`, disableIPv6: true });
  service.on('up', () => console.log(JSON.stringify({ published: true })));
  process.on('SIGTERM', () => bonjour.unpublishAll(() => bonjour.destroy(() => process.exit(0))));
}

main();
