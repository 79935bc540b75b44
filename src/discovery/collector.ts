/**
 * One query's life: open its own socket, send, resend, collect until an absolute deadline, close.
 * Every query gets a fresh ephemeral socket, so concurrent queries never see each other's replies
 * and no option of one query leaks into the next (the reference shared one socket: bug B14).
 */
import { AbortedError, MarcoPoloError } from '../errors.js';
import type { DatagramSocket, QuerySocketOptions, RemoteInfo, Transport } from '../transport/transport.js';
import type { Logger } from '../util/log.js';
import type { QueryStats } from './results.js';
import { onAnyAbort } from '../util/abort.js';
import { familyOf, type Family } from '../protocol/address.js';
import { LinkTally } from './linkTally.js';
import { allFailed, openFamilySockets, sendToEach, targetFamilies } from './sendTargets.js';

/** Unread results a stream keeps before it starts dropping (and counting) new ones. */
export const STREAM_QUEUE_LIMIT = 1024;
/** Distinct nodes one query remembers (a /16 network); beyond this, replies are counted as dropped. */
export const MAX_TRACKED_NODES = 65_536;
/**
 * How long a query out of several links waits, once every link heard from is complete, for a
 * link not heard from at all: on a LAN, answers come within milliseconds; an empty link (a
 * bridge with no node) then costs this, not the whole deadline.
 */
export const SILENT_LINK_GRACE_MS = 100;
/** Malformed replies logged per query; the rest are only counted, so a flood cannot flood the log. */
const MALFORMED_LOG_LIMIT = 8;

/** What the classifier made of one datagram. */
export type Verdict<T> =
  | { readonly kind: 'accept'; readonly key: string; readonly value: T; readonly hint?: number | undefined }
  | { readonly kind: 'malformed'; readonly reason: string }
  | { readonly kind: 'filtered'; readonly hint?: number | undefined };

/** One datagram of a send (see CollectorPlan.targets). */
export interface SendTarget {
  readonly address: string;
  readonly via?: string | undefined;
}

/** Decides about one datagram. Must not throw (a throw is still caught and counted as malformed). */
export type Classifier<T> = (data: Uint8Array, from: RemoteInfo) => Verdict<T>;

/** Everything a collector needs, already validated. */
export interface CollectorPlan<T> {
  readonly transport: Transport;
  readonly socket: QuerySocketOptions;
  /** Where the query goes: a group (Marco, Request-For) or a node (Services). */
  readonly destination: RemoteInfo;
  /**
   * Where each send goes out: one datagram per entry, to `address` (the group, or an IPv6 group
   * scoped to its interface) through `via` (the IPv4 address of an interface; undefined = the
   * socket's). Empty or undefined: one datagram to `destination`, the socket's way.
   */
  readonly targets?: readonly SendTarget[] | undefined;
  /** The query's bytes, or a function making them for each send (a signed query: fresh nonce). */
  readonly payload: Uint8Array | (() => Uint8Array);
  readonly timeout: number;
  readonly retries: number;
  /** Stop after this many accepted results; 0 = no limit. */
  readonly maxResults: number;
  readonly exclude: ReadonlySet<string>;
  readonly signals: readonly AbortSignal[];
  /** Bound of the unread-results queue. */
  readonly queueLimit: number;
  readonly classify: Classifier<T>;
  readonly logger: Logger;
  /** The query, for log lines ("Marco", "Request-For web"). */
  readonly what: string;
  /**
   * End this long (ms) after every member the replies' Members hints announce has answered
   * (docs/protocol.md §8.4); undefined = wait the deadline.
   */
  readonly completeGraceMs?: number | undefined;
  /**
   * The link (interface) a responder is on, when the query went out of several: each link's
   * Members hints count that link's grid only, so completeness is judged link by link.
   */
  readonly linkOf?: ((address: string) => string) | undefined;
}

/**
 * Runs one query and exposes its accepted results either as an async iterator (streams) or all
 * at once (`collect`). The query starts in the constructor, so its deadline counts from the call.
 */
export class Collector<T> implements AsyncIterable<T> {
  /** Live counters (see QueryStats). */
  readonly stats: QueryStats = {
    received: 0,
    accepted: 0,
    malformed: 0,
    excluded: 0,
    filtered: 0,
    duplicates: 0,
    dropped: 0,
  };
  private readonly queue: T[] = [];
  private readonly seen = new Set<string>();
  /** Every address that sent a valid reply, accepted, filtered or excluded (for completeness). */
  private readonly responders = new Set<string>();
  private expected = 0;
  /** Per link (with `linkOf`): its responders and the largest hint heard there. */
  private readonly links = new LinkTally();
  private completion: ReturnType<typeof setTimeout> | undefined;
  private completing = false;
  private readonly timers: Array<ReturnType<typeof setTimeout>> = [];
  private stopListening: () => void = () => {};
  private readonly waiters: Array<() => void> = [];
  /** The query's sockets by address family: IPv4, and IPv6 when a target is an IPv6 group. */
  private sockets: Map<Family, DatagramSocket> | undefined;
  private ended = false;
  private failure: Error | undefined;
  private resolveEnded: () => void = () => undefined;
  private readonly endedSignal = new Promise<void>((resolve) => (this.resolveEnded = resolve));
  /** Settles (never rejects) once the query ended and its socket is closed. */
  private readonly finished: Promise<void>;
  /** Results from outside the socket still coming (the grid registry): completion waits for them. */
  private included: Promise<void> = Promise.resolve();
  private resolveSent: () => void = () => undefined;
  /** Aborted when the query ends: work for `include` stops with it. */
  private readonly endedController = new AbortController();
  /** Settles once the query was first sent (or the query ended without it). */
  private readonly sent = new Promise<void>((resolve) => (this.resolveSent = resolve));

  constructor(private readonly plan: CollectorPlan<T>) {
    const aborted = plan.signals.find((s) => s.aborted);
    if (aborted !== undefined) {
      this.end(abortError(aborted));
      this.finished = Promise.resolve();
      return;
    }
    this.stopListening = onAnyAbort(plan.signals, (signal) => this.end(abortError(signal)));
    // Absolute deadline, set once (bug B14: the reference's window restarted on every datagram).
    this.schedule(plan.timeout, () => this.end());
    // Real resends, spread over the deadline, only while nobody answered (bug B12).
    for (let k = 1; k <= plan.retries; k++) {
      this.schedule(Math.floor((plan.timeout * k) / (plan.retries + 1)), () => this.resend());
    }
    this.finished = this.run();
  }

  /** Ends the query now and closes its socket; resolves once closed. Idempotent. */
  async close(): Promise<void> {
    this.end();
    await this.finished;
  }

  /**
   * Adds results found elsewhere than on the socket (the grid registry, src/etcd/gridReader.ts),
   * keyed by node address like the replies: a node found both ways counts once, `exclude` and
   * the bounds apply. A query that ends because every member answered waits for them first.
   * `load` starts once the query has been sent; its signal aborts when the query ends.
   */
  include(load: (ended: AbortSignal) => Promise<ReadonlyArray<{ readonly address: string; readonly value: T }>>): void {
    // Started once the query is on the wire: the LAN's answers never wait behind this work.
    const results = this.sent.then(() => (this.ended ? [] : load(this.endedController.signal)));
    const previous = this.included;
    this.included = Promise.all([
      previous,
      results.then(
        (list) => {
          for (const { address, value } of list) {
            if (this.ended) return;
            if (this.plan.exclude.has(address)) this.stats.excluded++;
            else this.accept(address, value);
          }
        },
        () => undefined,
      ),
    ]).then(() => undefined);
  }

  /** Waits for the end of the query and returns every accepted result; rejects on abort or I/O error. */
  async collect(): Promise<T[]> {
    await this.finished;
    if (this.failure !== undefined) throw this.failure;
    return this.queue.splice(0);
  }

  /** Yields accepted results in arrival order; returning early (break) closes the query. */
  [Symbol.asyncIterator](): AsyncIterator<T, undefined> {
    return {
      next: () => this.next(),
      return: async () => {
        await this.close();
        return { done: true, value: undefined };
      },
    };
  }

  private async next(): Promise<IteratorResult<T, undefined>> {
    for (;;) {
      if (this.failure !== undefined) throw this.failure;
      if (this.queue.length > 0) return { done: false, value: this.queue.shift() as T };
      if (this.ended) {
        await this.finished;
        return { done: true, value: undefined };
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  private async run(): Promise<void> {
    const targets = this.plan.targets;
    const families = targetFamilies(targets === undefined || targets.length === 0 ? [this.plan.destination] : targets);
    let sockets: Map<Family, DatagramSocket>;
    try {
      sockets = await openFamilySockets(
        this.plan.transport,
        families,
        (family) => (family === 6 ? { ...this.plan.socket, family } : this.plan.socket),
        (data, from) => this.ingest(data, from),
      );
    } catch (err) {
      this.end(ioError('could not open a query socket', err));
      return;
    }
    try {
      if (!this.ended) {
        this.sockets = sockets;
        await this.send();
      }
      this.resolveSent();
      await this.endedSignal;
    } finally {
      this.sockets = undefined;
      for (const socket of sockets.values()) {
        await socket.close().catch((err: unknown) => this.plan.logger.debug({ err }, 'closing a query socket failed'));
      }
    }
  }

  private async send(): Promise<void> {
    const sockets = this.sockets;
    if (sockets === undefined || this.ended) return;
    const { address, port } = this.plan.destination;
    const targets = this.plan.targets;
    const payload = this.plan.payload;
    if (targets === undefined || targets.length === 0) {
      const socket = sockets.get(familyOf(address));
      if (socket === undefined) return;
      try {
        await socket.send(typeof payload === 'function' ? payload() : payload, port, address);
      } catch (err) {
        this.end(ioError(`could not send the ${this.plan.what} query to ${address}:${port}`, err));
      }
      return;
    }
    // Out of every interface: one that fails (gone since it was listed) is logged; the query
    // fails only when no interface could send it.
    const outcomes = await sendToEach(sockets, targets, port, payload);
    outcomes.forEach((o, i) => {
      if (o.status === 'rejected') this.plan.logger.debug({ query: this.plan.what, target: targets[i], err: String(o.reason) }, 'could not send out of one interface');
    });
    const failed = allFailed(outcomes);
    if (failed) this.end(ioError(`could not send the ${this.plan.what} query to ${address}:${port}`, failed.reason));
  }

  private resend(): void {
    if (this.stats.accepted > 0) return;
    this.plan.logger.debug({ query: this.plan.what }, 'nobody accepted yet: resending the query');
    void this.send();
  }

  /** The receive path: counts, classifies and queues one datagram. Never throws. */
  private ingest(data: Uint8Array, from: RemoteInfo): void {
    if (this.ended) return;
    const stats = this.stats;
    stats.received++;
    const excluded = this.plan.exclude.has(from.address);
    // An excluded node's reply is classified only when it counts towards completeness.
    if (excluded && this.plan.completeGraceMs === undefined) {
      stats.excluded++;
      return;
    }
    let verdict: Verdict<T>;
    try {
      verdict = this.plan.classify(data, from);
    } catch (err) {
      verdict = { kind: 'malformed', reason: err instanceof Error ? err.message : 'classifier failed' };
    }
    // Compare the IP string, not (ip, port): the reference's exclude never matched (bug B9).
    if (excluded) {
      stats.excluded++;
      if (verdict.kind !== 'malformed') this.responded(from.address, verdict.hint);
      return;
    }
    switch (verdict.kind) {
      case 'malformed':
        // Skipped and counted, never fatal: the reference aborted marco() here (bug B18).
        stats.malformed++;
        if (stats.malformed <= MALFORMED_LOG_LIMIT) {
          this.plan.logger.debug({ from, reason: verdict.reason, query: this.plan.what }, 'skipped a malformed reply');
        }
        return;
      case 'filtered':
        stats.filtered++;
        this.responded(from.address, verdict.hint);
        return;
      case 'accept':
        this.accept(verdict.key, verdict.value);
        this.responded(from.address, verdict.hint);
    }
  }

  /**
   * Counts a node that answered. Once as many distinct nodes answered as the largest Members hint
   * says the grid has, the query ends after a short grace; while one is missing it runs on to
   * the deadline (a silent member is never taken as gone before the grid expires it).
   */
  private responded(address: string, hint: number | undefined): void {
    const grace = this.plan.completeGraceMs;
    if (grace === undefined || this.ended) return;
    const linkOf = this.plan.linkOf;
    if (linkOf !== undefined) {
      this.respondedOnLink(linkOf(address), address, hint, grace);
      return;
    }
    if (this.responders.size < MAX_TRACKED_NODES) this.responders.add(address);
    if (hint !== undefined && hint > this.expected) this.expected = hint;
    if (!this.completing && this.expected > 0 && this.responders.size >= this.expected) {
      this.completing = true;
      this.schedule(grace, () => void this.included.then(() => this.end()));
    }
  }

  /**
   * responded() over several links: complete once every link heard from is complete. While a
   * link the query went out of has not been heard from (nobody there, or its answers are
   * late), the query waits SILENT_LINK_GRACE_MS rather than the usual grace; an answer that
   * makes a link incomplete again puts the end off.
   */
  private respondedOnLink(link: string, address: string, hint: number | undefined, grace: number): void {
    const counted = !this.responders.has(address) && this.responders.size < MAX_TRACKED_NODES;
    if (counted) this.responders.add(address);
    const complete = this.links.add(link, hint, counted);
    clearTimeout(this.completion);
    this.completion = undefined;
    if (!complete) return;
    const allHeard = this.links.size >= (this.plan.targets?.length ?? 1);
    // As responded(): the included answers (the grid registry's) are in before the end.
    this.completion = setTimeout(() => void this.included.then(() => this.end()), allHeard ? grace : Math.max(grace, SILENT_LINK_GRACE_MS)).unref();
  }

  private accept(key: string, value: T): void {
    const stats = this.stats;
    if (this.seen.has(key)) {
      stats.duplicates++;
      return;
    }
    if (this.queue.length >= this.plan.queueLimit || this.seen.size >= MAX_TRACKED_NODES) {
      // Not remembered as seen: the node's answer to a resend may still be accepted later.
      stats.dropped++;
      return;
    }
    this.seen.add(key);
    stats.accepted++;
    this.queue.push(value);
    this.wake();
    // maxNodes counts accepted nodes only, never raw datagrams (bug B11).
    if (this.plan.maxResults > 0 && stats.accepted >= this.plan.maxResults) this.end();
  }

  private end(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.failure = error;
    for (const timer of this.timers) clearTimeout(timer);
    clearTimeout(this.completion);
    this.stopListening();
    this.plan.logger.debug({ query: this.plan.what, stats: this.stats, error: error?.message }, 'query ended');
    this.resolveSent();
    this.endedController.abort();
    this.resolveEnded();
    this.wake();
  }

  private schedule(delay: number, fn: () => void): void {
    // Unref'd: a finished command exits at once, whatever is still scheduled.
    this.timers.push(setTimeout(fn, delay).unref());
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}

function abortError(signal: AbortSignal): AbortedError {
  return new AbortedError({ cause: signal.reason });
}

function ioError(what: string, cause: unknown): MarcoPoloError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new MarcoPoloError('MP_ERR_IO', `${what}: ${detail}`, { cause });
}
