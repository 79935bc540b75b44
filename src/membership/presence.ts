/**
 * polod's presence in one group: announces this node (at start, on every service change, as a
 * heartbeat whose rate adapts to the grid's size, and a goodbye at stop), keeps the group's
 * membership view from what it hears and from its own occasional Marco queries, and supplies the
 * Members hint polod adds to its Polo replies. docs/protocol.md, "Announcements and membership",
 * documents the messages and the timing bounds.
 *
 * It listens on its own socket bound to group:port (address reuse, like the responder's), so the
 * responder is untouched but for the hinted Polo reply (src/daemon/poloDaemon.ts).
 */
import { randomBytes } from 'node:crypto';
import { decodeObject } from '../protocol/codec.js';
import type { JsonObject } from '../protocol/json.js';
import type { ServiceEntry } from '../protocol/messages.js';
import type { ServiceChangeSource } from '../registry/events.js';
import type { GroupSocket, RemoteInfo, Transport } from '../transport/transport.js';
import type { Logger } from '../util/log.js';
import { viewQuery } from './query.js';
import { DEFAULT_TIMING, heartbeatInterval, jittered, type PresenceTiming } from './timing.js';
import { MembershipView } from './view.js';
import {
  encodeAnnouncement,
  encodeGoodbye,
  encodeHintedPolo,
  encodeMembershipQuery,
  readPresence,
  type Announcement,
} from './wire.js';

export interface PresenceOptions {
  readonly transport: Transport;
  readonly group: string;
  readonly port: number;
  /** Interfaces to join on; empty = the system's choice. */
  readonly interfaces: readonly string[];
  /** Multicast TTL of announcements and queries (polod's `hops`). */
  readonly ttl: number;
  readonly nodeParams: JsonObject;
  /** The services this node offers in the group right now. */
  readonly services: () => readonly ServiceEntry[];
  /** Reports service changes, announced at once. */
  readonly changes?: ServiceChangeSource;
  readonly timing?: PresenceTiming;
  readonly logger: Logger;
  readonly random?: () => number;
}

type State = 'new' | 'started' | 'stopped';

export class GroupPresence {
  readonly instance = randomBytes(8).toString('hex');
  readonly view: MembershipView;
  /** Datagrams sent, by kind (tests and bench read them). */
  readonly sent = { announce: 0, goodbye: 0, query: 0 };
  private readonly timing: PresenceTiming;
  private readonly random: () => number;
  private readonly log: Logger;
  private socket: GroupSocket | undefined;
  private state: State = 'new';
  private rev = 0;
  private lastContent = '';
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private queryTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private announcePending = false;
  private querying = false;
  private unsubscribe: (() => void) | undefined;
  private hinted: { size: number; bytes: Uint8Array } | undefined;
  private readonly unjoined = new Set<string>();

  constructor(private readonly options: PresenceOptions) {
    this.timing = options.timing ?? DEFAULT_TIMING;
    this.random = options.random ?? Math.random;
    this.log = options.logger.child({ group: options.group, component: 'presence' });
    this.view = new MembershipView({
      timing: this.timing,
      selfInstance: this.instance,
      selfAddresses: () => options.transport.localAddresses(),
    });
    this.view.onEvent((e) => {
      this.log.debug({ event: e.event, address: e.member.address, kind: e.member.kind }, 'membership');
      // The references this node reports changed: tell the others now, not at the next heartbeat.
      if (e.member.kind === 'reference') this.scheduleAnnounce();
    });
  }

  /**
   * The Polo reply with the Members hint (cached while the count is unchanged); undefined when
   * it would not fit one datagram (the responder then handles the plain reply as before).
   */
  poloReply(): Uint8Array | undefined {
    const size = this.view.size;
    if (this.hinted?.size !== size) {
      try {
        this.hinted = { size, bytes: encodeHintedPolo(this.options.nodeParams, size) };
      } catch {
        return undefined;
      }
    }
    return this.hinted.bytes;
  }

  /** Binds, joins, announces and starts the heartbeat and the first membership query. */
  async start(): Promise<void> {
    if (this.state !== 'new') return;
    this.state = 'started';
    const { transport, group, port } = this.options;
    this.socket = await transport.bindGroup(group, port, (data, from) => this.heard(data, from));
    this.socket.setTtl(this.options.ttl);
    for (const iface of this.options.interfaces.length > 0 ? this.options.interfaces : ['']) this.unjoined.add(iface);
    this.joinPending();
    this.unsubscribe = this.options.changes?.onChange((c) => {
      if (c.group === group) this.scheduleAnnounce();
    });
    this.announce();
    // One repeat soon after: a start announcement lost on a busy LAN would otherwise wait a heartbeat.
    this.heartbeatTimer = setTimeout(() => this.heartbeat(), this.timing.startRepeatMs).unref();
    this.queryTimer = setTimeout(() => void this.query(), Math.round(this.random() * this.timing.firstQueryMaxMs)).unref();
    this.sweepTimer = setInterval(() => this.view.sweep(), this.timing.sweepMs).unref();
  }

  /** Sends the goodbye and closes. Idempotent. */
  async stop(): Promise<void> {
    if (this.state !== 'started') {
      this.state = 'stopped';
      return;
    }
    this.state = 'stopped';
    clearTimeout(this.heartbeatTimer);
    clearTimeout(this.queryTimer);
    clearInterval(this.sweepTimer);
    this.unsubscribe?.();
    const socket = this.socket;
    if (socket) {
      try {
        await socket.send(encodeGoodbye(this.instance), this.options.port, this.options.group);
        this.sent.goodbye++;
      } catch (err) {
        this.log.debug({ err }, 'goodbye not sent');
      }
      await socket.close();
    }
    this.view.clear();
  }

  /** Announces soon (coalescing several changes of one turn into one datagram). */
  scheduleAnnounce(): void {
    if (this.announcePending || this.state !== 'started') return;
    this.announcePending = true;
    setImmediate(() => {
      this.announcePending = false;
      this.announce();
    });
  }

  private heartbeat(): void {
    if (this.state !== 'started') return;
    this.joinPending();
    this.announce();
    const interval = heartbeatInterval(this.view.size, this.timing);
    this.heartbeatTimer = setTimeout(() => this.heartbeat(), jittered(interval, this.timing.jitter, this.random)).unref();
  }

  private announce(): void {
    const socket = this.socket;
    if (!socket || this.state !== 'started') return;
    const services = this.options.services().map((s) => ({ id: s.id, params: s.params }));
    const refs = this.view.directReferences();
    const content = JSON.stringify([this.options.nodeParams, services, refs]);
    if (content !== this.lastContent) {
      this.lastContent = content;
      this.rev++;
    }
    const a: Announcement = {
      instance: this.instance,
      rev: this.rev,
      every: heartbeatInterval(this.view.size, this.timing),
      members: this.view.size,
      params: this.options.nodeParams,
      services,
      refs,
    };
    socket.post(encodeAnnouncement(a), this.options.port, this.options.group, (err) => {
      if (err) this.log.debug({ err }, 'announcement not sent');
      else this.sent.announce++;
    });
  }

  private heard(data: Uint8Array, from: RemoteInfo): void {
    let msg: JsonObject;
    try {
      msg = decodeObject(data);
    } catch {
      return; // the responder counts and logs bad datagrams
    }
    const m = readPresence(msg);
    if (!m) return;
    switch (m.kind) {
      case 'announce':
        this.view.hearAnnouncement(from.address, m.announcement);
        return;
      case 'goodbye':
        this.view.hearGoodbye(from.address, m.instance);
        return;
      case 'marco':
        // Another polod is refreshing its view (and will report the references it finds):
        // this one skips its own next query.
        if (m.membership && !this.querying && !this.options.transport.localAddresses().includes(from.address)) {
          this.scheduleQuery();
        }
    }
  }

  private scheduleQuery(): void {
    if (this.state !== 'started') return;
    clearTimeout(this.queryTimer);
    const base = this.view.hasReferences ? this.timing.queryActiveMs : this.timing.queryIdleMs;
    this.queryTimer = setTimeout(() => void this.query(), Math.round(base * (1 + this.random() / 2))).unref();
  }

  private async query(): Promise<void> {
    if (this.state !== 'started') return;
    this.querying = true;
    this.sent.query++;
    const iface = this.options.interfaces[0];
    const replies = await viewQuery({
      transport: this.options.transport,
      group: this.options.group,
      port: this.options.port,
      iface,
      ttl: this.options.ttl,
      payload: encodeMembershipQuery(),
      windowMs: this.timing.queryWindowMs,
      graceMs: this.timing.graceMs,
      knownMembers: this.view.size,
      onReply: (s) => {
        if (this.state === 'started') this.view.hearPolo(s.address, s.params, s.hint);
      },
    });
    this.querying = false;
    if (this.state !== 'started') return;
    this.view.queryDone(new Set(replies.map((r) => r.address)));
    this.scheduleQuery();
  }

  private joinPending(): void {
    const socket = this.socket;
    if (!socket) return;
    for (const iface of [...this.unjoined]) {
      try {
        socket.join(iface === '' ? undefined : iface);
        this.unjoined.delete(iface);
      } catch {
        // Retried at each heartbeat; the responder logs the join failures of the same group.
      }
    }
  }
}
