/**
 * polod's presence in one group: announces this node (at start, on every service change, as a
 * heartbeat whose rate adapts to the grid's size, and a goodbye at stop), keeps the group's
 * membership view from what it hears and from its own occasional Marco queries, and supplies the
 * Members hint polod adds to its Polo replies. docs/protocol.md, "Announcements and membership",
 * documents the messages and the timing bounds.
 *
 * It hears the group through the responder's socket (the Polo `tap` option: a byte test per
 * datagram, so Request-For floods cost nothing more) and sends from a socket of its own, on the
 * first configured interface; the responder sends the hinted Polo reply (src/daemon/poloDaemon.ts).
 */
import { randomBytes } from 'node:crypto';
import { ClosedError } from '../errors.js';
import { isIPv6Group } from '../protocol/address.js';
import { decodeObject } from '../protocol/codec.js';
import type { JsonObject } from '../protocol/json.js';
import type { ServiceEntry } from '../protocol/messages.js';
import type { ServiceChangeSource } from '../registry/events.js';
import type { DatagramSocket, RemoteInfo, Transport } from '../transport/transport.js';
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

/** `{"Command":"` is 12 bytes: in our encoding the command's first letter follows. */
const COMMAND_INITIAL = 12;
const OPEN_BRACE = 0x7b;
const A = 0x41; // Announce
const G = 0x47; // Goodbye
const M = 0x4d; // Marco (a membership query carries "Membership")

export interface PresenceOptions {
  readonly transport: Transport;
  readonly group: string;
  readonly port: number;
  /** Interfaces to join on; empty = the system's choice. */
  readonly interfaces: readonly string[];
  /**
   * True: send out of the interfaces given to setInterfaces() (every one, kept current by polod's
   * interface follower) instead of `interfaces`; nothing is sent while there is none.
   */
  readonly managedInterfaces?: boolean;
  /** Multicast TTL of announcements and queries (polod's `hops`). */
  readonly ttl: number;
  readonly nodeParams: JsonObject;
  /** The services this node offers in the group right now. */
  readonly services: () => readonly ServiceEntry[];
  /** Ids of its services held back by a failing health check (announced as `Failing`). */
  readonly failing?: () => readonly string[];
  /** Reports service changes, announced at once. */
  readonly changes?: ServiceChangeSource;
  readonly timing?: PresenceTiming;
  readonly logger: Logger;
  readonly random?: () => number;
  /**
   * The group's authentication in a keyed grid (polod's AuthGate, src/responder/authGate.ts):
   * announcements, goodbyes and membership queries are signed, and an announcement, goodbye or
   * membership reply that fails the check (unsigned under `required`, forged, stale, replayed)
   * is ignored, so nobody without the key can add, change or remove a member.
   */
  readonly auth?: PresenceAuth;
}

/** What a presence needs of the grid's authentication. */
export interface PresenceAuth {
  check(data: Uint8Array): { readonly ok: true; readonly body: Uint8Array } | { readonly ok: false };
  sign(message: Uint8Array, replyTo: undefined, key: undefined): Uint8Array;
  /** Params as sent: sealed under policy `sealed` (src/auth/sealed.ts). */
  sealParams?(params: JsonObject): JsonObject;
  /** A checked message with its sealed params opened. */
  open?(body: Uint8Array): Uint8Array;
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
  private socket: DatagramSocket | undefined;
  private state: State = 'new';
  private rev = 0;
  private lastContent = '';
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private queryTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private announcePending = false;
  private opening = false;
  private querying = false;
  private unsubscribe: (() => void) | undefined;
  private hinted: { size: number; bytes: Uint8Array } | undefined;
  /** The interfaces (by address) announcements leave through; undefined = the socket's own. */
  private vias: readonly (string | undefined)[];

  constructor(private readonly options: PresenceOptions) {
    this.timing = options.timing ?? DEFAULT_TIMING;
    this.random = options.random ?? Math.random;
    this.vias = options.managedInterfaces === true ? [] : [undefined];
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
        this.hinted = { size, bytes: encodeHintedPolo(this.sealed(this.options.nodeParams), size) };
      } catch {
        return undefined;
      }
    }
    return this.hinted.bytes;
  }

  /**
   * The interfaces (by IPv4 address) to announce on, for a presence made with
   * `managedInterfaces`. A new interface hears an announcement at once.
   */
  setInterfaces(addresses: readonly string[]): void {
    if (this.options.managedInterfaces !== true) return;
    const added = addresses.some((a) => !this.vias.includes(a));
    this.vias = [...addresses];
    if (added && this.state === 'started') this.announce();
  }

  /** Sends `bytes` to the group out of every interface; resolves once all sends are done. */
  private sendAll(socket: DatagramSocket, bytes: Uint8Array): Promise<unknown> {
    const { port, group } = this.options;
    return Promise.all(this.vias.map((via) => socket.send(bytes, port, group, via)));
  }

  /** Opens the sending socket, announces and starts the heartbeat and the first membership query. */
  async start(): Promise<void> {
    if (this.state === 'stopped') throw new ClosedError('presence');
    if (this.state !== 'new') return;
    this.state = 'started';
    const { group } = this.options;
    // Live discovery runs over IPv4 (docs/protocol.md §9): an IPv6 grid keeps no view.
    if (isIPv6Group(group)) return;
    await this.openSocket();
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
        await this.sendAll(socket, this.signed(encodeGoodbye(this.instance)));
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
      this.announce(true);
    });
  }

  /**
   * Opens the sending socket if it is not open yet. Its interface address may not exist yet (as
   * a group join may fail): then it is tried again at each heartbeat, and nothing is sent meanwhile.
   */
  private async openSocket(): Promise<void> {
    if (this.socket !== undefined || this.opening) return;
    this.opening = true;
    const { transport, ttl } = this.options;
    const iface = this.options.interfaces[0];
    try {
      // Replies never come to this socket: it only sends (announcements, goodbye).
      const socket = await transport.openQuerySocket(iface === undefined ? { ttl } : { ttl, iface }, () => undefined);
      if (this.state === 'started') this.socket = socket;
      else await socket.close();
    } catch (err) {
      this.log.debug({ iface, err }, 'cannot announce from this interface yet; will retry');
    } finally {
      this.opening = false;
    }
  }

  private heartbeat(): void {
    if (this.state !== 'started') return;
    if (this.socket === undefined) void this.openSocket().then(() => this.announce());
    else this.announce();
    const interval = heartbeatInterval(this.view.size, this.timing);
    this.heartbeatTimer = setTimeout(() => this.heartbeat(), jittered(interval, this.timing.jitter, this.random)).unref();
  }

  /**
   * Sends the announcement. `onlyIfChanged`: a change report that changed nothing (a reload of
   * the same files, a refused publish) sends nothing, so local API calls cannot make a node chatty.
   */
  private announce(onlyIfChanged = false): void {
    const socket = this.socket;
    if (!socket || this.state !== 'started') return;
    const services = this.options.services().map((s) => ({ id: s.id, params: s.params }));
    const refs = this.view.directReferences();
    const failing = this.options.failing?.() ?? [];
    const content = JSON.stringify([this.options.nodeParams, services, refs, failing]);
    if (content !== this.lastContent) {
      this.lastContent = content;
      this.rev++;
    } else if (onlyIfChanged) {
      return;
    }
    const a: Announcement = {
      instance: this.instance,
      rev: this.rev,
      every: heartbeatInterval(this.view.size, this.timing),
      members: this.view.size,
      params: this.sealed(this.options.nodeParams),
      services: services === undefined ? undefined : services.map((s) => ({ id: s.id, params: this.sealed(s.params) })),
      refs,
      failing,
    };
    this.sendAll(socket, this.signed(encodeAnnouncement(a))).then(
      () => this.sent.announce++,
      (err: unknown) => this.log.debug({ err }, 'announcement not sent'),
    );
  }

  /**
   * The responder's tap (PoloOptions.tap): consumes Announce and Goodbye, notes membership
   * queries (and lets the responder answer them), and leaves everything else alone. Only our
   * own compact encoding is recognised (`{"Command":"` then the name at byte 12), so the test
   * costs two byte reads for the queries that make up the hot path.
   */
  readonly tap = (data: Uint8Array, from: RemoteInfo): boolean => {
    if (this.state !== 'started' || data.byteLength < 20 || data[0] !== OPEN_BRACE) return false;
    const initial = data[COMMAND_INITIAL];
    if (initial !== A && initial !== G && initial !== M) return false;
    let body = data;
    // Announce and Goodbye are checked here; a Marco query is left to the responder's own check
    // (checking it twice would count its nonce as replayed).
    if (this.options.auth && initial !== M) {
      const checked = this.options.auth.check(data);
      if (!checked.ok) return looksLikePresence(data);
      body = this.options.auth.open?.(checked.body) ?? checked.body;
    }
    let msg: JsonObject;
    try {
      msg = decodeObject(body);
    } catch {
      return false; // the responder counts and logs bad datagrams
    }
    const m = readPresence(msg);
    switch (m?.kind) {
      case 'announce':
        this.view.hearAnnouncement(from.address, m.announcement);
        return true;
      case 'goodbye':
        this.view.hearGoodbye(from.address, m.instance);
        return true;
      case 'marco':
        // Another polod is refreshing its view (and will report the references it finds):
        // this one skips its own next query.
        if (m.membership && !this.querying && !this.options.transport.localAddresses().includes(from.address)) {
          this.scheduleQuery();
        }
        return false;
      default:
        return false;
    }
  };

  /** Params as sent: sealed under policy `sealed`. */
  private sealed(params: JsonObject): JsonObject {
    return this.options.auth?.sealParams?.(params) ?? params;
  }

  /** `message` as sent to the group: signed in a keyed grid. */
  private signed(message: Uint8Array): Uint8Array {
    return this.options.auth ? this.options.auth.sign(message, undefined, undefined) : message;
  }

  /** A reply to a membership query in a keyed grid: its message, or undefined when it fails the check. */
  private admitReply(data: Uint8Array): Uint8Array | undefined {
    const checked = this.options.auth?.check(data);
    if (checked !== undefined && !checked.ok) return undefined;
    return checked === undefined ? data : (this.options.auth?.open?.(checked.body) ?? checked.body);
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
      payload: this.signed(encodeMembershipQuery()),
      ...(this.options.auth && { admit: (data: Uint8Array) => this.admitReply(data) }),
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
}

/** True for an Announce or Goodbye (our compact form): a refused one is consumed, never answered. */
function looksLikePresence(data: Uint8Array): boolean {
  const initial = data[COMMAND_INITIAL];
  return initial === A || initial === G;
}
