/**
 * Queries that arrive by unicast (`node:1337`), the way the reference client sends Services.
 * The reference never received them (its sockets were bound to the group addresses, docs/protocol.md
 * §6); polod binds a socket per interface address for them. A unicast query names no group, so
 * it is answered from every group this node serves (the registry's union view): Services lists
 * the union (or one group's list when the query carries the `"Group"` extension key).
 */
import type { JsonObject } from '../protocol/json.js';
import type { Query } from '../protocol/messages.js';
import type { ServiceRegistry } from '../registry/registry.js';
import type { RemoteInfo } from '../transport/transport.js';
import type { Logger } from '../util/log.js';
import { ingest } from './ingest.js';
import { answer, type Decision } from './answer.js';
import type { Polo } from './polo.js';

/** Answers unicast queries on behalf of a set of per-group Polo instances. */
export class UnicastResponder {
  constructor(
    private readonly polos: readonly Polo[],
    private readonly registry: ServiceRegistry,
    private readonly nodeParams: JsonObject,
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

  /** answer() over every served group, or the one group a Services query names. */
  private async decide(query: Query): Promise<Decision> {
    const group = query.command === 'Services' ? query.group : undefined;
    const services = this.registry.view(group);
    if (!services) return { kind: 'silent', reason: 'other-group', id: group ?? '' };
    const context = { nodeParams: this.nodeParams, services };
    const first = answer(query, context);
    if (first.kind !== 'load-user') return first;
    await this.registry.loadUser(first.user);
    const second = answer(query, context);
    return second.kind === 'load-user' ? { kind: 'silent', reason: 'not-offered', id: first.user } : second;
  }
}
