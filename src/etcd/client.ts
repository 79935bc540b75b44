/**
 * A small client of etcd v3's gRPC-JSON gateway (served by etcd 3.4 and later on its client
 * URLs: /v3/kv/range, /v3/kv/txn, /v3/lease/grant, /v3/lease/keepalive, /v3/lease/revoke,
 * /v3/watch; keys and values base64). Plain HTTP(S) through Node's fetch, so no gRPC stack is
 * loaded; with TLS files of its own (a private CA, a client certificate) through node:https
 * (src/etcd/tlsFetch.ts). Several endpoints (members of one cluster) are tried in turn: the one
 * that answered last is asked first, the next ones when it does not answer.
 */
import { MarcoPoloError } from '../errors.js';
import type { Backoff } from '../util/backoff.js';
import { describeRequestError, tlsFetcher, type EtcdTls, type Fetcher } from './tlsFetch.js';

export type { EtcdTls } from './tlsFetch.js';

/** A key/value as read from etcd (keys and values decoded from base64). */
export interface EtcdKeyValue {
  readonly key: string;
  /** Empty for a delete seen by a watch. */
  readonly value: Buffer;
  /** The lease it is attached to ('0' = none, and for a delete). */
  readonly lease: string;
}

/** One change seen by a watch. */
export interface EtcdEvent extends EtcdKeyValue {
  readonly type: 'put' | 'delete';
}

/** One write of a transaction. */
export type EtcdWrite =
  | { readonly put: string; readonly value: string | Buffer; readonly lease?: string }
  | { readonly delete: string; readonly prefix?: boolean };

/** An etcd user (etcd's own authentication). */
export interface EtcdUser {
  readonly name: string;
  readonly password: string;
}

/** Connection settings. */
export interface EtcdClientOptions {
  /** Client URLs of the cluster's members (`http://192.0.2.5:2379`); at least one. */
  readonly endpoints: readonly string[];
  /** Deadline of one request to one member, in ms. Default 2000. */
  readonly requestTimeoutMs?: number;
  /** etcd user name and password (etcd's own authentication); none by default. */
  readonly user?: EtcdUser;
  /** TLS files for https endpoints; by default the system's CAs and no client certificate. */
  readonly tls?: EtcdTls;
}

/** No member answered (all down, unreachable, or without quorum). */
export class EtcdUnavailableError extends MarcoPoloError {
  override name = 'EtcdUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('MP_ERR_IO', message, options);
  }
}

/** Deadline of one request to one member, by default. */
const DEFAULT_REQUEST_TIMEOUT_MS = 2000;

/** Retrying while etcd is unreachable (registering, re-watching): quick at first, then every few seconds. */
export const ETCD_RETRY: Backoff = { initialMs: 250, maxMs: 4000 };

type Json = Record<string, unknown>;

export class EtcdClient {
  private readonly endpoints: readonly string[];
  private readonly timeoutMs: number;
  /** Index of the member that answered last: asked first next time. */
  private preferred = 0;
  private token: string | undefined;
  private readonly fetch: Fetcher;

  constructor(private readonly options: EtcdClientOptions) {
    if (options.endpoints.length === 0) throw new RangeError('EtcdClient: no endpoint');
    this.endpoints = options.endpoints.map((e) => e.replace(/\/+$/, ''));
    this.timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.fetch = options.tls === undefined ? fetch : tlsFetcher(options.tls);
  }

  /** Every key starting with `prefix`, and the store's revision at the time of the read. */
  async range(prefix: string, signal?: AbortSignal): Promise<{ kvs: EtcdKeyValue[]; revision: number }> {
    const res = await this.call('/v3/kv/range', { key: b64(prefix), range_end: b64(prefixEnd(prefix)) }, signal);
    return { kvs: kvsOf(res).map(readKv), revision: headerRevision(res) };
  }

  /** The value of one key, or undefined. */
  async get(key: string, signal?: AbortSignal): Promise<EtcdKeyValue | undefined> {
    const first = kvsOf(await this.call('/v3/kv/range', { key: b64(key) }, signal))[0];
    return first === undefined ? undefined : readKv(first);
  }

  /** Applies every write at once (one revision); rejects when etcd refuses one (a put naming a lease that is gone). */
  async txn(writes: readonly EtcdWrite[]): Promise<void> {
    const success = writes.map((w) =>
      'put' in w
        ? { request_put: { key: b64(w.put), value: b64(w.value), ...(w.lease !== undefined && { lease: w.lease }) } }
        : { request_delete_range: { key: b64(w.delete), ...(w.prefix === true && { range_end: b64(prefixEnd(w.delete)) }) } },
    );
    await this.call('/v3/kv/txn', { success });
  }

  /** A new lease of `ttlSeconds`: its id and the TTL granted. */
  async grant(ttlSeconds: number): Promise<{ id: string; ttl: number }> {
    const res = await this.call('/v3/lease/grant', { TTL: ttlSeconds });
    const id = res['ID'];
    if (typeof id !== 'string' && typeof id !== 'number') throw new EtcdUnavailableError('etcd granted no lease');
    return { id: String(id), ttl: Number(res['TTL'] ?? ttlSeconds) };
  }

  /** Renews a lease once: its remaining TTL in seconds, 0 when the lease is gone (expired). */
  async keepAlive(id: string): Promise<number> {
    const res = await this.call('/v3/lease/keepalive', { ID: id });
    const result = (res['result'] ?? res) as Json;
    return Number(result['TTL'] ?? 0);
  }

  /** Ends a lease now: every key attached to it is deleted. */
  async revoke(id: string): Promise<void> {
    await this.call('/v3/lease/revoke', { ID: id });
  }

  /**
   * Follows every key under `prefix` from `startRevision`: `onEvents` gets each batch of
   * changes. Resolves when `signal` aborts; rejects when the stream breaks (member gone, store
   * compacted past `startRevision`): the caller re-reads and watches again.
   */
  async watch(prefix: string, startRevision: number, onEvents: (events: EtcdEvent[]) => void, signal: AbortSignal): Promise<void> {
    const body = { create_request: { key: b64(prefix), range_end: b64(prefixEnd(prefix)), start_revision: String(startRevision) } };
    const endpoint = this.endpoints[this.preferred % this.endpoints.length] as string;
    let res: Response;
    try {
      res = await this.fetchOnce(endpoint, '/v3/watch', body, signal);
    } catch (err) {
      if (signal.aborted) return;
      this.preferred++;
      throw new EtcdUnavailableError(`etcd watch at ${endpoint}: ${describeRequestError(err)}`, { cause: err });
    }
    if (!res.ok || res.body === null) {
      this.preferred++;
      throw new EtcdUnavailableError(`etcd watch at ${endpoint}: HTTP ${res.status}`);
    }
    const decoder = new TextDecoder();
    let buffered = '';
    try {
      for await (const chunk of res.body) {
        buffered += decoder.decode(chunk as Uint8Array, { stream: true });
        let newline: number;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line.length > 0) this.watchLine(line, onEvents);
        }
      }
      if (buffered.trim().length > 0) this.watchLine(buffered.trim(), onEvents);
    } catch (err) {
      if (signal.aborted) return;
      this.preferred++;
      throw new EtcdUnavailableError(`etcd watch at ${endpoint} broke: ${(err as Error).message}`, { cause: err });
    }
    if (signal.aborted) return;
    this.preferred++;
    throw new EtcdUnavailableError(`etcd watch at ${endpoint} ended`);
  }

  private watchLine(line: string, onEvents: (events: EtcdEvent[]) => void): void {
    const msg = JSON.parse(line) as Json;
    if (msg['error'] !== undefined) throw new Error(`etcd: ${JSON.stringify(msg['error'])}`);
    const result = (msg['result'] ?? {}) as Json;
    if (result['canceled'] === true || result['compact_revision'] !== undefined) {
      throw new Error(`etcd canceled the watch${result['compact_revision'] === undefined ? '' : ' (compacted)'}`);
    }
    const events = Array.isArray(result['events']) ? (result['events'] as Json[]) : [];
    if (events.length === 0) return;
    onEvents(events.map((e) => ({ type: e['type'] === 'DELETE' ? 'delete' : 'put', ...readKv((e['kv'] ?? {}) as Json) })));
  }

  /** One request, to the members in turn until one answers. */
  private async call(path: string, body: Json, signal?: AbortSignal): Promise<Json> {
    let lastError: unknown;
    const n = this.endpoints.length;
    for (let i = 0; i < n; i++) {
      const index = (this.preferred + i) % n;
      const endpoint = this.endpoints[index] as string;
      try {
        const json = await this.request(endpoint, path, body, signal);
        this.preferred = index;
        return json;
      } catch (err) {
        if (signal?.aborted === true) throw err;
        lastError = err;
      }
    }
    const detail = describeRequestError(lastError);
    throw new EtcdUnavailableError(`no etcd member answered ${path} (${this.endpoints.join(', ')}): ${detail}`, { cause: lastError });
  }

  private async request(endpoint: string, path: string, body: Json, signal: AbortSignal | undefined, retried = false): Promise<Json> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const res = await this.fetchOnce(endpoint, path, body, signal === undefined ? timeout : AbortSignal.any([signal, timeout]));
    const text = await res.text();
    let json: Json;
    try {
      json = JSON.parse(text) as Json;
    } catch {
      throw new Error(`${endpoint}${path}: HTTP ${res.status}, not JSON`);
    }
    if (!res.ok || json['error'] !== undefined) {
      const message = typeof json['message'] === 'string' ? json['message'] : String(json['error'] ?? res.status);
      // An expired token (etcd authentication): authenticate again once.
      if (this.options.user !== undefined && !retried && /token|auth/i.test(message)) {
        this.token = await this.authenticate(endpoint);
        return this.request(endpoint, path, body, signal, true);
      }
      throw new Error(`${endpoint}${path}: ${message}`);
    }
    return json;
  }

  /** One POST, with etcd's token when a user is configured (authenticating first if none yet). */
  private async fetchOnce(endpoint: string, path: string, body: Json, signal: AbortSignal): Promise<Response> {
    if (this.options.user !== undefined && this.token === undefined) this.token = await this.authenticate(endpoint);
    const token = this.token;
    return this.fetch(`${endpoint}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token !== undefined && { authorization: token }) },
      body: JSON.stringify(body),
      signal,
    });
  }

  private async authenticate(endpoint: string): Promise<string> {
    const user = this.options.user;
    if (user === undefined) throw new Error('no etcd user');
    const res = await this.fetch(`${endpoint}/v3/auth/authenticate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: user.name, password: user.password }),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const json = (await res.json()) as Json;
    if (!res.ok || typeof json['token'] !== 'string') throw new Error(`etcd refused user ${JSON.stringify(user.name)}`);
    return json['token'];
  }
}

/** The first key after every key starting with `prefix` (etcd's range_end of a prefix). */
export function prefixEnd(prefix: string): Buffer {
  const bytes = Buffer.from(prefix);
  for (let i = bytes.length - 1; i >= 0; i--) {
    if ((bytes[i] as number) < 0xff) {
      const end = bytes.subarray(0, i + 1);
      end[i] = (end[i] as number) + 1;
      return Buffer.from(end);
    }
  }
  return Buffer.from([0]);
}

function b64(value: string | Buffer): string {
  return (typeof value === 'string' ? Buffer.from(value) : value).toString('base64');
}

/** The key-values of a range answer. */
function kvsOf(res: Json): Json[] {
  return Array.isArray(res['kvs']) ? (res['kvs'] as Json[]) : [];
}

function readKv(kv: Json): EtcdKeyValue {
  return {
    key: Buffer.from(String(kv['key'] ?? ''), 'base64').toString(),
    value: Buffer.from(String(kv['value'] ?? ''), 'base64'),
    lease: String(kv['lease'] ?? '0'),
  };
}

function headerRevision(res: Json): number {
  const header = (res['header'] ?? {}) as Json;
  return Number(header['revision'] ?? 0);
}
