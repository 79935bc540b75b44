/**
 * Queries that arrive by unicast (`node:1337`), the way the reference client sends Services.
 * The reference never received them (its sockets were bound to the group addresses, docs/protocol.md
 * §6); polod binds a socket per interface address for them. A unicast query names no group, so
 * it is answered from every group this node serves: Services lists the union (or one group's
 * list when the query carries the `"Group"` extension key).
 */
import type { Query } from '../protocol/messages.js';
import type { RemoteInfo } from '../transport/transport.js';
import type { Logger } from '../util/log.js';
import { ingest } from './ingest.js';
import { listServices, type Decision } from './answer.js';
import type { Polo } from './polo.js';

/** Answers unicast queries on behalf of a set of per-group Polo instances. */
export class UnicastResponder {
  constructor(
    private readonly polos: readonly Polo[],
    private readonly log: Logger,
  ) {}

  /** Handles one unicast datagram; never throws. Replies through `send`. */
  async datagramReceived(
    data: Uint8Array,
    from: RemoteInfo,
    send: (bytes: Uint8Array, to: RemoteInfo) => Promise<void>,
  ): Promise<void> {
    const first = this.polos[0];
    if (!first) return;
    const query = ingest(data, from, first.stats, this.log);
    if (!query) return;
    try {
      const decision = await this.decide(query);
      if (decision.kind !== 'reply') {
        first.stats.silent++;
        return;
      }
      const bytes = first.encode(decision.reply);
      if (bytes) {
        await send(bytes, from);
        first.stats.answered++;
      }
    } catch (err) {
      first.stats.sendErrors++;
      this.log.debug({ err, from: from.address }, 'unicast reply failed');
    }
  }

  private async decide(query: Query): Promise<Decision> {
    if (query.command === 'Services') {
      const polos = query.group === undefined ? this.polos : this.polos.filter((p) => p.multicastGroup === query.group);
      if (polos.length === 0) return { kind: 'silent', reason: `group ${query.group ?? ''} not served` };
      const services = listServices(polos.flatMap((p) => p.offeredServices));
      return { kind: 'reply', reply: { command: 'Services', services } };
    }
    // Marco and Request-For: the first group with an answer speaks for the node.
    let last: Decision = { kind: 'silent', reason: 'no group' };
    for (const polo of this.polos) {
      last = await polo.decide(query);
      if (last.kind === 'reply') return last;
    }
    return last;
  }
}
