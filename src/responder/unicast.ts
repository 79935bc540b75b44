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
import { admit } from './ingest.js';
import { countReply } from './stats.js';
import { answer, type Decision } from './answer.js';
import type { Guard } from './guard.js';
import type { AuthGate } from './authGate.js';
import { MAX_DATAGRAM } from '../protocol/limits.js';
import { answerLoading, type Polo } from './polo.js';

/** Answers unicast queries on behalf of a set of per-group Polo instances. */
export class UnicastResponder {
  constructor(
    private readonly polos: readonly Polo[],
    private readonly registry: ServiceRegistry,
    private readonly nodeParams: JsonObject,
    private readonly guard: Guard,
    /** Authentication of the unicast port in a keyed daemon (every key of the node). */
    private readonly auth?: AuthGate,
  ) {}

  /**
   * Handles one unicast datagram that arrived on the listener bound to `local`; never throws.
   * Replies through `send`. A source that is off-link (and the scope is `on-link`), or out of
   * reply budget, is dropped before any decoding.
   */
  async datagramReceived(
    data: Uint8Array,
    from: RemoteInfo,
    send: (bytes: Uint8Array, to: RemoteInfo) => Promise<void>,
    local?: string,
  ): Promise<void> {
    const first = this.polos[0];
    if (!first) return;
    const stats = first.stats;
    const onLink = local === undefined || this.guard.onLink.onLink(local, from.address);
    if (!onLink && this.guard.settings.unicastScope === 'on-link') {
      stats.received++;
      stats.offLink++;
      this.guard.log.debug(() => ({ from: from.address, local }), 'unicast query from off-link source ignored');
      return;
    }
    const admitted = admit(data, from, stats, this.guard, this.auth);
    if (!admitted) return;
    const { query, nonce, key } = admitted;
    try {
      const decision = await this.decide(query);
      if (decision.kind !== 'reply') {
        stats.silent++;
        return;
      }
      const encoded = first.encode(decision.reply);
      if (!encoded) return;
      const bytes = this.auth ? this.auth.sign(encoded, nonce, key) : encoded;
      if (bytes.byteLength > MAX_DATAGRAM) {
        stats.oversize++;
        return;
      }
      // Off-link (scope `any`): no reply larger than the query, which proves nothing about the
      // source (docs/protocol.md §7). A client pads its query to receive more.
      if (!onLink && bytes.byteLength > data.byteLength) {
        stats.offLink++;
        return;
      }
      if (!this.guard.replies.spend(from.address, bytes.byteLength)) {
        stats.limited++;
        return;
      }
      countReply(stats, decision.reply.command, bytes.byteLength);
      await send(bytes, from);
      stats.answered++;
    } catch (err) {
      stats.sendErrors++;
      this.guard.log.debug(() => ({ err: err instanceof Error ? err.message : String(err), from: from.address }), 'unicast reply failed');
    }
  }

  /** answer() over every served group, or the one group a Services query names. */
  private async decide(query: Query): Promise<Decision> {
    const group = query.command === 'Services' ? query.group : undefined;
    const services = this.registry.view(group);
    if (!services) return { kind: 'silent', reason: 'other-group', id: group ?? '' };
    const context = { nodeParams: this.nodeParams, services };
    const first = answer(query, context);
    return first.kind === 'load-user' ? answerLoading(query, context, first.user, this.registry, this.guard) : first;
  }
}
