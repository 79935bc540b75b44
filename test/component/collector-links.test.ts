/**
 * A query sent out of several links (src/discovery/collector.ts with targets and linkOf): one
 * datagram per target, on a socket of each family needed; Members hints judged link by link,
 * so a complete link does not end the query while another link is still answering; a link
 * never heard from costs a short wait, not the deadline.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Collector, type SendTarget, type Verdict } from '../../src/discovery/collector.js';
import type { DatagramHandler, DatagramSocket, QuerySocketOptions, RemoteInfo, Transport } from '../../src/transport/transport.js';
import { silentLogger } from '../../src/util/log.js';

/** A transport whose query sockets record their sends; replies are handed in by the test. */
class ScriptedTransport implements Transport {
  readonly sent: Array<{ family: 4 | 6; address: string; via: string | undefined }> = [];
  readonly handlers: DatagramHandler[] = [];
  bindGroup(): Promise<never> {
    return Promise.reject(new Error('not used'));
  }
  bindUnicast(): Promise<never> {
    return Promise.reject(new Error('not used'));
  }
  localAddresses(): string[] {
    return ['10.0.0.1'];
  }
  async openQuerySocket(options: QuerySocketOptions, onMessage: DatagramHandler): Promise<DatagramSocket> {
    this.handlers.push(onMessage);
    const family = options.family ?? 4;
    // An open socket keeps the process alive (the collector's own timers do not): so does this.
    const alive = setInterval(() => undefined, 60_000);
    return {
      port: 40000,
      send: async (_data, _port, address, via) => {
        this.sent.push({ family, address, via });
      },
      close: async () => clearInterval(alive),
    };
  }
  /** A reply from `address` carrying Members hint `hint`. */
  reply(address: string, hint: number): void {
    const from: RemoteInfo = { address, port: 1337 };
    for (const h of this.handlers) h(new TextEncoder().encode(String(hint)), from);
  }
}

const classify = (data: Uint8Array, from: RemoteInfo): Verdict<string> => ({
  kind: 'accept',
  key: from.address,
  value: from.address,
  hint: Number(new TextDecoder().decode(data)),
});

function collector(transport: ScriptedTransport, targets: readonly SendTarget[]): Collector<string> {
  return new Collector({
    transport,
    socket: { ttl: 1 },
    destination: { address: '224.0.0.112', port: 1337 },
    targets,
    payload: new Uint8Array([1]),
    // Far beyond the tests' own timeout: only completeness can end these queries.
    timeout: 3_600_000,
    retries: 0,
    maxResults: 0,
    exclude: new Set(),
    signals: [],
    queueLimit: 100,
    classify,
    logger: silentLogger,
    what: 'Marco',
    completeGraceMs: 0,
    linkOf: (address) => (address.startsWith('10.0.') ? 'a' : address.includes('%') ? address.slice(address.indexOf('%') + 1) : 'b'),
  });
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
/**
 * Resolves once every timer of 0 ms set before the call has run: Node runs the timers of one
 * duration in the order they were set. An end wrongly scheduled at the grace (0 ms) has then
 * happened.
 */
const dueTimers = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

// The queries' deadline is an hour: a collector that never ends fails the test here instead.
describe('a query out of several links', { timeout: 10_000 }, () => {
  it('sends one datagram per target, opening an IPv6 socket for IPv6 targets', async () => {
    const transport = new ScriptedTransport();
    const c = collector(transport, [
      { address: '224.0.0.112', via: '10.0.0.1' },
      { address: 'ff02::224:0:0:112%eth1', via: '::%eth1' },
    ]);
    while (transport.sent.length < 2) await turn();
    assert.deepEqual(transport.sent, [
      { family: 4, address: '224.0.0.112', via: '10.0.0.1' },
      { family: 6, address: 'ff02::224:0:0:112%eth1', via: '::%eth1' },
    ]);
    await c.close();
  });

  it('ends once every link is complete, not when the first one is', async () => {
    const transport = new ScriptedTransport();
    const c = collector(transport, [
      { address: '224.0.0.112', via: '10.0.0.1' },
      { address: '224.0.0.112', via: '10.1.0.1' },
    ]);
    while (transport.handlers.length < 1) await turn();
    // Link a is complete (one member, it answered); link b reports two and one answered.
    transport.reply('10.0.0.2', 1);
    transport.reply('10.1.0.2', 2);
    await dueTimers();
    transport.reply('10.1.0.3', 2);
    assert.deepEqual((await c.collect()).sort(), ['10.0.0.2', '10.1.0.2', '10.1.0.3']);
  });

  it('does not wait the deadline for a link nobody answers on', async () => {
    const transport = new ScriptedTransport();
    const c = collector(transport, [
      { address: '224.0.0.112', via: '10.0.0.1' },
      { address: 'ff02::224:0:0:112%docker0', via: '::%docker0' },
    ]);
    while (transport.handlers.length < 2) await turn();
    transport.reply('10.0.0.2', 1);
    assert.deepEqual(await c.collect(), ['10.0.0.2']);
  });
});
