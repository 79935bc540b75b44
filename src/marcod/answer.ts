/**
 * What marcod answers to a valid request: a function from the request to a reply, running one
 * fresh discovery query per request (and per configured interface). The server only wires
 * socket → parse → answer → encode → send.
 *
 * Every request is independent (bug B14): the reference shared one Marco, hence one socket,
 * across its worker threads, so concurrent requests read each other's replies and one request's
 * timeout stuck for the next. Here each query has its own socket and its own absolute deadline,
 * and the reply goes out as soon as the query completes (max_nodes reached, or the deadline),
 * not after a further window of silence.
 */
import type { Marco } from '../discovery/marco.js';
import type { QueryOptions } from '../discovery/options.js';
import type { NodeResult, QueryStream } from '../discovery/results.js';
import { AbortedError, MarcoPoloError } from '../errors.js';
import { STOPPING } from './limits.js';
import type { MarcodReply } from './reply.js';
import type { MarcodRequest, MarcoRequest, RequestForRequest } from './request.js';

/** The defaults a request falls back on, from marco.cfg and the flags. */
export interface AnswerDefaults {
  /** Group of Marco and Request-For requests that name none. */
  readonly group: string;
  /** Deadline of requests that give no timeout (or null, or 0), ms. */
  readonly timeoutMs: number;
  /** Local addresses to query from, one query each; empty = every multicast interface (one query). */
  readonly interfaces: readonly string[];
}

/** What answering needs. */
export interface AnswerContext {
  /** The discovery client; its defaults carry the polod port, transport and logger. */
  readonly marco: Marco;
  readonly defaults: AnswerDefaults;
  /** Aborted when marcod stops: queries end and their requests get an error reply. */
  readonly signal: AbortSignal;
  /**
   * The answer of marcod's warm view of the grid (src/marcod/warmView.ts), or undefined when
   * the view cannot answer for sure; then the request runs a query.
   */
  readonly warm?: (request: MarcoRequest | RequestForRequest) => NodeResult[] | undefined;
}

/**
 * The reply to `request`. Failures the caller should hear about (an interface that is not
 * local, an unknown host name, a socket error, marcod stopping) become `{"Error": "<reason>"}`
 * replies, since the reference's silence left bindings waiting for nothing (bug B19). Only a
 * programming error rejects.
 */
export async function answer(request: MarcodRequest, ctx: AnswerContext): Promise<MarcodReply> {
  try {
    switch (request.command) {
      case 'Marco':
      case 'Request-For':
        if (request.fresh !== true) {
          const known = ctx.warm?.(request);
          if (known !== undefined) return { kind: 'nodes', nodes: known, fromView: true };
        }
        return { kind: 'nodes', nodes: await groupQuery(request, ctx) };
      case 'Services': {
        const options: QueryOptions = { timeout: request.timeout ?? ctx.defaults.timeoutMs, signal: ctx.signal };
        if (request.group !== undefined) options.group = request.group;
        // A JSON array of {"id","params"}: the reference iterated a Node object here and
        // crashed, so Services never had a reply through marcod (bug B3).
        const result = await ctx.marco.services(request.node, options);
        return { kind: 'services', result, envelope: request.envelope };
      }
    }
  } catch (err) {
    if (err instanceof AbortedError) return { kind: 'error', error: STOPPING };
    if (err instanceof MarcoPoloError) return { kind: 'error', error: err.message };
    throw err;
  }
}

/**
 * Marco or Request-For, on every configured interface at once, merged by responder address.
 * With max_nodes, the reply goes out as soon as that many distinct nodes were accepted.
 */
async function groupQuery(request: MarcoRequest | RequestForRequest, ctx: AnswerContext): Promise<NodeResult[]> {
  const options: QueryOptions = {
    // Honoured for Request-For as well as Marco (bug B16).
    group: request.group ?? ctx.defaults.group,
    timeout: request.timeout ?? ctx.defaults.timeoutMs,
    maxNodes: request.maxNodes,
    exclude: request.exclude,
    retries: request.retries,
    signal: ctx.signal,
  };
  if (request.params !== undefined) options.params = request.params;
  const open = (iface: string | undefined): QueryStream => {
    const own = iface === undefined ? options : { ...options, interface: iface };
    return request.command === 'Marco' ? ctx.marco.discover(own) : ctx.marco.requestForStream(request.service, own);
  };
  const streams: QueryStream[] = [];
  try {
    const interfaces = ctx.defaults.interfaces.length > 0 ? ctx.defaults.interfaces : [undefined];
    for (const iface of interfaces) streams.push(open(iface));
    return await merge(streams, request.maxNodes);
  } finally {
    await Promise.all(streams.map((s) => s.close()));
  }
}

/** Reads every stream to its end, keeping the first result per address, up to `maxNodes`. */
async function merge(streams: readonly QueryStream[], maxNodes: number): Promise<NodeResult[]> {
  const found = new Map<string, NodeResult>();
  const full = (): boolean => maxNodes > 0 && found.size >= maxNodes;
  await Promise.all(
    streams.map(async (stream) => {
      for await (const node of stream) {
        if (full()) break;
        if (!found.has(node.address)) found.set(node.address, node);
        if (full()) {
          // The other interfaces' queries have nothing left to add.
          await Promise.all(streams.map((s) => s.close()));
          break;
        }
      }
    }),
  );
  return [...found.values()];
}
