/**
 * A Marco client that goes through marcod (UDP 127.0.1.1:1338, docs/protocol.md §4) instead of
 * querying the network itself: the TypeScript sibling of the reference's Python, C++ and Java
 * Marco bindings. It has the in-process `Marco`'s method names and result shapes, so a program
 * can switch between the two (both satisfy {@link MarcoLike}).
 *
 * Each call opens its own socket, sends one request and waits for the one reply: up to
 * 2 × timeout + {@link REPLY_MARGIN_MS}, as the Python binding waits 2 × timeout. Options are
 * validated here, with the in-process client's rules and messages, before anything is sent.
 */
import { isIPv4 } from 'node:net';
import { defaultMarcoConfig, MARCO_PORT } from '../config/marcoConfig.js';
import { checkService, resolveQuery, type QueryOptions } from '../discovery/options.js';
import type { NodeResult, ServiceResult, ServicesResult } from '../discovery/results.js';
import {
  AbortedError,
  InvalidArgumentError,
  MarcoPoloError,
  ProtocolError,
  RemoteError,
  TimeoutError,
} from '../errors.js';
import { isJsonObject, type Json, type JsonObject } from '../protocol/json.js';
import { DEFAULT_TIMEOUT_MS } from '../protocol/limits.js';
import type { DatagramSocket, Transport } from '../transport/transport.js';
import { UdpTransport } from '../transport/udp.js';
import { MAX_REQUEST_BYTES, MAX_REQUEST_TIMEOUT_MS } from '../marcod/limits.js';
import { onAnyAbort, throwIfAborted } from '../util/abort.js';
import { isPort } from '../protocol/address.js';
import { serviceEntry } from '../protocol/codec.js';

/**
 * Options of one call through marcod: the in-process options minus those marcod's own
 * configuration decides (`port`, `interface`, `ttl`; passing them throws InvalidArgumentError).
 */
export type MarcodQueryOptions = Pick<QueryOptions, 'group' | 'timeout' | 'maxNodes' | 'exclude' | 'params' | 'retries' | 'signal'>;

/** Construction options of a {@link MarcodClient}. */
export interface MarcodClientOptions {
  /** marcod's address. Default 127.0.1.1 on Linux (where every binding looks), else 127.0.0.1. */
  address?: string;
  /** marcod's port. Default 1338. */
  port?: number;
  /** Default deadline of each query, ms (1 to 60000; default 1000, as the Python binding). */
  timeout?: number;
  /** Default group; when neither this nor a call names one, marcod uses its configured group. */
  group?: string;
  /** Aborts every call of this client. */
  signal?: AbortSignal;
  /** Where the socket comes from. Default: real UDP. */
  transport?: Transport;
}

/**
 * What the in-process `Marco` and `MarcodClient` both offer: a program typed against this can
 * use either. (Marco's methods accept more options, so it satisfies this interface.)
 */
export interface MarcoLike {
  /** Every node of the group, with its node params. */
  marco(options?: MarcodQueryOptions): Promise<NodeResult[]>;
  /** The nodes offering `service`, each with that service's params. */
  requestFor(service: string, options?: MarcodQueryOptions): Promise<NodeResult[]>;
  /** The first node found offering `service`, or undefined. */
  requestOne(service: string, options?: MarcodQueryOptions): Promise<NodeResult | undefined>;
  /** The services `node` offers; undefined when it did not answer. */
  services(node: string, options?: MarcodQueryOptions): Promise<ServicesResult | undefined>;
}

/** What is added to 2 × timeout while waiting for marcod's reply, ms (scheduling, DNS). */
export const REPLY_MARGIN_MS = 500;

/** Options marcod decides from its own configuration: refused at run time for JavaScript callers. */
const DAEMON_OPTIONS = ['port', 'interface', 'ttl'] as const;

const encoder = new TextEncoder();
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A discovery client talking to marcod. Errors: InvalidArgumentError (bad option, before
 * sending), TimeoutError (marcod did not answer in 2 × timeout + margin: not running?),
 * RemoteError (marcod answered `{"Error": …}`), AbortedError, ProtocolError (a reply that is not
 * JSON or not a reply), and MP_ERR_IO for socket failures.
 */
export class MarcodClient implements MarcoLike {
  /** Where requests go. */
  readonly address: string;
  /** marcod's port. */
  readonly port: number;
  private readonly defaults: MarcodQueryOptions;
  private readonly transport: Transport;

  /** Throws InvalidArgumentError when an option is invalid. */
  constructor(options: MarcodClientOptions = {}) {
    const { address, port, transport, ...defaults } = options;
    this.address = address ?? defaultMarcoConfig().bindAddress;
    if (!isIPv4(this.address)) throw new InvalidArgumentError(`invalid address ${JSON.stringify(this.address)}: expected an IPv4 address`);
    this.port = port ?? MARCO_PORT;
    if (!isPort(this.port)) {
      throw new InvalidArgumentError(`invalid port ${String(this.port)}: expected an integer from 1 to 65535`);
    }
    this.defaults = defaults;
    this.resolve({}); // fail at construction, not at the first call
    this.transport = transport ?? new UdpTransport();
  }

  /** Every node in the group (marcod's `Marco` request); `[]` when nobody answered. */
  async marco(options: MarcodQueryOptions = {}): Promise<NodeResult[]> {
    const { query, body } = this.groupRequest({ Command: 'Marco' }, options);
    return toNodes(await this.exchange(body, query.timeout, query.signals));
  }

  /** The nodes offering `service` in the group (marcod's `Request-For`; `group` is honoured). */
  async requestFor(service: string, options: MarcodQueryOptions = {}): Promise<NodeResult[]> {
    const { query, body } = this.groupRequest({ Command: 'Request-For', Params: checkService(service) }, options);
    return toNodes(await this.exchange(body, query.timeout, query.signals));
  }

  /** The first node found offering `service` (requestFor with maxNodes 1), or undefined. */
  async requestOne(service: string, options: MarcodQueryOptions = {}): Promise<NodeResult | undefined> {
    const [first] = await this.requestFor(service, { ...options, maxNodes: 1 });
    return first;
  }

  /**
   * The services `node` (IPv4 address or host name, resolved by marcod) offers; undefined when
   * it did not answer. Only `timeout`, `group` and `signal` apply.
   */
  async services(node: string, options: MarcodQueryOptions = {}): Promise<ServicesResult | undefined> {
    if (typeof node !== 'string' || node.length === 0) {
      throw new InvalidArgumentError('invalid node: expected an IPv4 address or a host name');
    }
    const query = this.resolve(options);
    // Envelope: an extension asking for {"Address", "Services", "Truncated"} instead of the
    // bare array, so "no answer" and "no services" differ, as with the in-process client.
    const body: JsonObject = { Command: 'Services', node, timeout: query.timeout, Envelope: true };
    const group = options.group ?? this.defaults.group;
    if (group !== undefined) body['group'] = group;
    return toServices(await this.exchange(body, query.timeout, query.signals), node);
  }

  private groupRequest(head: JsonObject, options: MarcodQueryOptions): { query: ReturnType<typeof resolveQuery>; body: JsonObject } {
    const query = this.resolve(options);
    // The keys the reference bindings send, so a reference marcod understands as much as it can.
    const body: JsonObject = {
      ...head,
      max_nodes: query.maxNodes === 0 ? null : query.maxNodes,
      exclude: [...query.exclude],
      params: query.params ?? {},
      timeout: query.timeout,
      retries: query.retries,
    };
    const group = options.group ?? this.defaults.group;
    if (group !== undefined) body['group'] = group;
    return { query, body };
  }

  private resolve(options: MarcodQueryOptions): ReturnType<typeof resolveQuery> {
    for (const name of DAEMON_OPTIONS) {
      if ((options as Record<string, unknown>)[name] !== undefined || (this.defaults as Record<string, unknown>)[name] !== undefined) {
        throw new InvalidArgumentError(`option ${name} is not supported through marcod: its configuration decides it`);
      }
    }
    const query = resolveQuery({ timeout: DEFAULT_TIMEOUT_MS, ...this.defaults }, options);
    // marcod reads 0 as "its default" (the reference's falsy test), so 0 cannot mean "no wait".
    if (query.timeout < 1 || query.timeout > MAX_REQUEST_TIMEOUT_MS) {
      throw new InvalidArgumentError(
        `invalid timeout ${query.timeout}: expected an integer from 1 to ${MAX_REQUEST_TIMEOUT_MS} ms through marcod`,
      );
    }
    return query;
  }

  /** Sends `body` from a fresh socket and resolves with marcod's reply, parsed. */
  private async exchange(body: JsonObject, timeout: number, signals: readonly AbortSignal[]): Promise<Json> {
    throwIfAborted(signals);
    const payload = encoder.encode(JSON.stringify(body));
    if (payload.byteLength > MAX_REQUEST_BYTES) {
      throw new InvalidArgumentError(
        `request of ${payload.byteLength} bytes exceeds marcod's ${MAX_REQUEST_BYTES}-byte limit (too many exclude entries or params)`,
      );
    }
    const where = `marcod at ${this.address}:${this.port}`;
    const wait = 2 * timeout + REPLY_MARGIN_MS;
    return new Promise<Json>((resolve, reject) => {
      let socket: DatagramSocket | undefined;
      let settled = false;
      const cleanups: Array<() => void> = [];
      const finish = (error: Error | undefined, value?: Json): void => {
        if (settled) return;
        settled = true;
        for (const cleanup of cleanups) cleanup();
        void socket?.close();
        if (error !== undefined) reject(error);
        else resolve(value ?? null);
      };
      // Unref'd: a program that stops waiting (or exits) is not held by this timer.
      const timer = setTimeout(
        () => finish(new TimeoutError(`${where} did not answer within ${wait} ms (is marcod running?)`)),
        wait,
      ).unref();
      cleanups.push(() => clearTimeout(timer));
      cleanups.push(onAnyAbort(signals, (signal) => finish(new AbortedError({ cause: signal.reason }))));
      const onMessage = (data: Uint8Array, from: { address: string; port: number }): void => {
        // Only marcod's port: the source address may differ when marcod is bound to 0.0.0.0.
        if (from.port !== this.port) return;
        let value: Json;
        try {
          value = JSON.parse(utf8.decode(data)) as Json;
        } catch {
          finish(new ProtocolError('invalid-json', `${where} sent a reply that is not valid JSON`));
          return;
        }
        finish(undefined, value);
      };
      this.transport
        .openQuerySocket({ ttl: 1 }, onMessage)
        .then(async (opened) => {
          if (settled) {
            await opened.close();
            return;
          }
          socket = opened;
          await opened.send(payload, this.port, this.address);
        })
        .catch((err: unknown) => {
          const detail = err instanceof Error ? err.message : String(err);
          finish(new MarcoPoloError('MP_ERR_IO', `could not send to ${where}: ${detail}`, { cause: err }));
        });
    });
  }
}

/** Throws RemoteError when the reply is marcod's `{"Error": …}`. */
function checkError(reply: Json): void {
  if (!isJsonObject(reply) || !Object.hasOwn(reply, 'Error')) return;
  const error = reply['Error'];
  // `{"Error": true}` is the reference's answer to a missing or unknown command.
  throw new RemoteError(typeof error === 'string' ? `marcod: ${error}` : 'marcod refused the request (unknown command)');
}

/** `[{"Address", "Params"}, …]` as NodeResults; a non-object Params becomes `{}` (bug B10). */
function toNodes(reply: Json): NodeResult[] {
  checkError(reply);
  if (!Array.isArray(reply)) throw new ProtocolError('bad-field', 'marcod replied with neither a node list nor an error');
  return reply.flatMap((entry) => {
    if (!isJsonObject(entry) || typeof entry['Address'] !== 'string') return [];
    const params = entry['Params'];
    return [{ address: entry['Address'], params: isJsonObject(params) ? params : {} }];
  });
}

/** The Services envelope (or a bare array, from a marcod without the extension). */
function toServices(reply: Json, node: string): ServicesResult | undefined {
  checkError(reply);
  if (Array.isArray(reply)) return { address: node, services: toServiceList(reply) };
  if (!isJsonObject(reply) || !Object.hasOwn(reply, 'Address')) {
    throw new ProtocolError('bad-field', 'marcod replied with neither a service list nor an error');
  }
  const address = reply['Address'];
  if (typeof address !== 'string') return undefined;
  const list = reply['Services'];
  const result: ServicesResult = { address, services: Array.isArray(list) ? toServiceList(list) : [] };
  if (reply['Truncated'] === true) result.truncated = true;
  return result;
}

function toServiceList(list: readonly Json[]): ServiceResult[] {
  return list.flatMap(serviceEntry);
}
