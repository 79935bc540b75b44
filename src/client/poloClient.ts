/**
 * The Polo binding: publish and unpublish services through polod's publish API (docs/protocol.md §5),
 * the TypeScript counterpart of the reference's Python `marcopolo.bindings.polo.Polo`
 * (docs/reference-bindings.md).
 *
 * What it keeps from the reference: the commands and their Args, the 4000 ms default timeout,
 * the token flow (read `~/.polo/token`; when it is missing, send `Request-token` for our uid
 * and read it again: polod writes the file, never sends the token), no TLS certificate check.
 * What it fixes: the Java binding's inverted "token missing" check; one connection reused for
 * every request and reopened after a failure instead of a dead object; a stale token ("Bad
 * token", e.g. after polod's secret changed) renewed once by itself; typed errors
 * (RemoteError with polod's reason, TimeoutError, AbortedError, InvalidArgumentError,
 * PolodUnavailableError naming the socket) instead of two catch-all exception types.
 */
import path from 'node:path';
import { currentUserHome, readTokenFile, DEFAULT_USER_DIR, TOKEN_FILE_NAME } from '../auth/tokenFile.js';
import { AbortedError, ClosedError, InvalidArgumentError, IoError, RemoteError, TimeoutError } from '../errors.js';
import { isJsonObject, type Json, type JsonObject } from '../protocol/json.js';
import { MAX_JSON_DEPTH } from '../protocol/limits.js';
import { ConnectionLostError, PolodConnection, UnexpectedReplyError } from './polodConnection.js';
import {
  DEFAULT_TLS_HOST,
  DEFAULT_TLS_PORT,
  describeEndpoint,
  polodSocketPath,
  type PolodEndpoint,
} from './polodEndpoint.js';
import { gridOf, isPort, MULTICAST_RANGE } from '../protocol/address.js';
import { onAnyAbort, untilAborted } from '../util/abort.js';
import { checkFromJson, checkToJson } from '../health/check.js';

export { ConnectionLostError, UnexpectedReplyError } from './polodConnection.js';
export { PolodUnavailableError, polodSocketPath, type PolodEndpoint } from './polodEndpoint.js';

/** The reference Python binding's socket timeout, used as the default deadline of each call. */
export const DEFAULT_POLO_TIMEOUT_MS = 4000;

/** Options of {@link PoloClient}. */
export interface PoloClientOptions {
  /** polod's Unix socket (default `<stateDir>/polod.sock`, else /run/marcopolo/polod.sock). */
  readonly socketPath?: string;
  /** polod's `--state-dir`: its socket is `<stateDir>/polod.sock`. */
  readonly stateDir?: string;
  /** Use TLS (as the reference bindings do) instead of the Unix socket. */
  readonly tls?: {
    /** Default 127.0.0.1. */
    readonly host?: string;
    /** Default 1390 (`polo_binding_port`). */
    readonly port?: number;
  };
  /**
   * Deadline of each call in ms, from the call: time waiting behind earlier calls, connecting
   * and the token request included (default 4000; 0 = none).
   */
  readonly timeout?: number;
  /**
   * The home whose token file is read. Default: the home in the user database for this
   * process's effective uid, which is where polod writes the token (falling back to $HOME).
   */
  readonly home?: string;
  /** The uid sent in `Request-token` (default: the effective uid, as the Python binding). */
  readonly uid?: number;
  /** The per-user folder, polod's `polo_user_dir` (default `.polo`). */
  readonly userDirName?: string;
}

/** Options of {@link PoloClient.publishService}. */
export interface PublishOptions {
  /** Params answered to Request-For queries (default `{}`). */
  readonly params?: JsonObject;
  /** Multicast groups to publish in (default: every group polod serves). */
  readonly groups?: readonly string[];
  /** Also write a service file, so the service survives a restart (default false). */
  readonly permanent?: boolean;
  /** A root (system) service rather than a user service `user:id` (default false). */
  readonly root?: boolean;
  /**
   * A health check run by polod: the service is offered only while it passes. `tcp:PORT` or
   * `http://127.0.0.1:PORT/PATH`, with optional interval (ms) and consecutive failures.
   */
  readonly check?: { readonly target: string; readonly intervalMs?: number; readonly failures?: number };
  /**
   * Ties the service to this client's connection: polod withdraws it when the connection closes
   * (close(), destroy(), the program's exit or crash). Not with `permanent`. See sessionEnded().
   */
  readonly session?: boolean;
  readonly signal?: AbortSignal;
}

/** Options of {@link PoloClient.unpublishService}. */
export interface UnpublishOptions {
  /** Groups to unpublish from (default: every group polod serves). */
  readonly groups?: readonly string[];
  /** Also delete the service file (or drop these groups from it) (default false). */
  readonly deleteFile?: boolean;
  readonly signal?: AbortSignal;
}

/** Options of the calls that take nothing else. */
export interface CallOptions {
  readonly signal?: AbortSignal;
}

/** One service polod offers, as `List` reports it. */
export interface PublishedService {
  /** The id on the wire: `id` for root services, `user:id` for user services. */
  readonly id: string;
  /** Who published it (`root` for root services from service files). */
  readonly owner: string;
  /** The multicast groups it is offered in. */
  readonly groups: readonly string[];
  /** Backed by a service file. */
  readonly permanent: boolean;
  readonly params: JsonObject;
  /** A root service (as opposed to a user service). */
  readonly root: boolean;
  /** Its health check: target, `pending`/`passing`/`failing`, consecutive failures. */
  readonly check?: { readonly target: string; readonly state: string; readonly failures: number };
}

/** The publish API's command names this client sends. */
type Command = 'Publish' | 'Unpublish' | 'Request-token' | 'List';

/** Commands that may be resent when a reused connection turns out to be dead. */
const IDEMPOTENT: ReadonlySet<Command> = new Set(['Request-token', 'List']);

/**
 * A client of polod's publish API. Calls run one at a time, in the order they were made, over
 * one connection, opened at the first call and reopened after a failure; each call has its own
 * deadline (`timeout`) and may be cancelled with an AbortSignal. An idle client does not keep the process alive, but
 * call {@link close} when done.
 */
export class PoloClient {
  /** Where polod is reached. */
  readonly endpoint: PolodEndpoint;
  /** Deadline of each call in ms (0 = none). */
  readonly timeout: number;
  /** The home whose token file is used. */
  readonly home: string;
  /** The uid sent in Request-token. */
  readonly uid: number;
  /** The per-user folder holding the token (`.polo`). */
  readonly userDirName: string;
  #connection: PolodConnection | undefined;
  #endSession: () => void = () => {};
  readonly #sessionEnded = new Promise<void>((resolve) => (this.#endSession = resolve));
  /** Settles when every call queued so far is finished: calls run in order, one at a time. */
  #tail: Promise<void> = Promise.resolve();
  /** Public calls not finished yet (close() waits for them, token reads included). */
  readonly #calls = new Set<Promise<unknown>>();
  #closing: Promise<void> | undefined;
  #destroyed = false;

  /** @throws InvalidArgumentError for an option of the wrong type or range. */
  constructor(options: PoloClientOptions = {}) {
    this.endpoint = endpointOf(options);
    const timeout = options.timeout ?? DEFAULT_POLO_TIMEOUT_MS;
    if (typeof timeout !== 'number' || Number.isNaN(timeout) || timeout < 0) {
      throw new InvalidArgumentError(`timeout must be a number of ms >= 0, got ${String(timeout)}`);
    }
    this.timeout = timeout;
    const uid = options.uid ?? process.geteuid?.() ?? process.getuid?.();
    if (typeof uid !== 'number' || !Number.isInteger(uid) || uid < 0) {
      throw new InvalidArgumentError(`uid must be an integer >= 0, got ${String(uid)}`);
    }
    this.uid = uid;
    if (options.home !== undefined && (typeof options.home !== 'string' || options.home === '')) {
      throw new InvalidArgumentError('home must be a non-empty path');
    }
    this.home = options.home ?? currentUserHome();
    this.userDirName = options.userDirName ?? DEFAULT_USER_DIR;
  }

  /** The token file this client reads. */
  get tokenFile(): string {
    return path.join(this.home, this.userDirName, TOKEN_FILE_NAME);
  }

  /**
   * Publishes service `id` (`Publish`). Returns the id polod gives it: `id` for a root service,
   * `<user>:<id>` for a user service.
   * @throws InvalidArgumentError (empty id, a group that is not an IPv4 multicast address,
   * params that are not a JSON object); RemoteError with polod's reason ("Permission denied",
   * "Service web already exists", …); PolodUnavailableError; TimeoutError; AbortedError;
   * IoError (token file, connection); UnexpectedReplyError.
   */
  async publishService(id: string, opts: PublishOptions = {}): Promise<string> {
    checkId(id);
    const groups = checkGroups(opts.groups);
    const params = checkParams(opts.params);
    const permanent = checkBool(opts.permanent, 'permanent');
    const root = checkBool(opts.root, 'root');
    const check = checkHealthCheck(opts.check);
    const session = checkBool(opts.session, 'session');
    if (session && permanent) throw new InvalidArgumentError('a session service cannot be permanent');
    return this.#run('Publish', opts.signal, async (signal) => {
      const ok = await this.#withToken(signal, (token) =>
        this.#send(
          'Publish',
          { service: id, token, params, multicast_groups: groups, permanent, root, ...(check ? { check } : {}), ...(session ? { session } : {}) },
          signal,
        ),
      );
      if (typeof ok !== 'string' || ok === '') throw new UnexpectedReplyError(`polod's reply to Publish is not an id: ${short(ok)}`);
      return ok;
    });
  }

  /**
   * Unpublishes a service (`Unpublish`): `id` for a root service, `user:id` for a user's.
   * @throws as {@link publishService} ("Could not find service", "Permission denied", …).
   */
  async unpublishService(id: string, opts: UnpublishOptions = {}): Promise<void> {
    checkId(id);
    const groups = checkGroups(opts.groups);
    const deleteFile = checkBool(opts.deleteFile, 'deleteFile');
    await this.#run('Unpublish', opts.signal, (signal) =>
      this.#withToken(signal, (token) =>
        this.#send('Unpublish', { service: id, token, multicast_groups: groups, delete_file: deleteFile }, signal),
      ),
    );
  }

  /**
   * Every service polod offers, with its groups and owner (`List`, this project's extension; a
   * reference polod refuses it). Needs no token.
   * @throws RemoteError, PolodUnavailableError, TimeoutError, AbortedError, IoError,
   * UnexpectedReplyError.
   */
  async list(opts: CallOptions = {}): Promise<PublishedService[]> {
    return this.#run('List', opts.signal, async (signal) => {
      // polod sends the list in pages: `"Next": n` asks for another from offset n.
      const all: PublishedService[] = [];
      for (let offset: number | undefined = 0; offset !== undefined; ) {
        const reply = await this.#exchange('List', offset === 0 ? {} : { offset }, signal);
        const ok = reply['OK'];
        if (!Array.isArray(ok)) throw new UnexpectedReplyError(`polod's reply to List is not a list: ${short(ok ?? null)}`);
        all.push(...ok.map(listedService));
        const next = reply['Next'];
        offset = typeof next === 'number' && Number.isInteger(next) && next > offset && ok.length > 0 ? next : undefined;
      }
      return all;
    });
  }

  /**
   * Asks polod to write this client's token file (`Request-token` for {@link uid}): 'created'
   * if it wrote one, 'existed' if the right token was already there. The token itself never
   * travels; it is read from {@link tokenFile}.
   * @throws RemoteError ("User not found", …), PolodUnavailableError, TimeoutError,
   * AbortedError, IoError, UnexpectedReplyError.
   */
  async requestToken(opts: CallOptions = {}): Promise<'created' | 'existed'> {
    return this.#run('Request-token', opts.signal, (signal) => this.#requestToken(signal));
  }

  /**
   * Waits for the calls already made, then closes the connection. Later calls reject with
   * ClosedError. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      while (this.#calls.size > 0) await Promise.allSettled([...this.#calls]);
      const connection = this.#connection;
      this.#connection = undefined;
      await connection?.close();
    })();
    return this.#closing;
  }

  /** Closes the connection now: the call in flight and queued calls reject with ClosedError. */
  destroy(): void {
    this.#destroyed = true;
    this.#closing ??= Promise.resolve();
    this.#connection?.destroy(new ClosedError('PoloClient'));
    this.#connection = undefined;
  }

  /**
   * Runs one public call under its deadline and the caller's signal: `task` gets a signal whose
   * reason is the TimeoutError or AbortedError to throw. The call is tracked until it settles.
   */
  #run<T>(command: Command, callerSignal: AbortSignal | undefined, task: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.#closing) return Promise.reject(new ClosedError('PoloClient'));
    const call = this.#deadline(command, callerSignal, task);
    this.#calls.add(call);
    void call.then(
      () => this.#calls.delete(call),
      () => this.#calls.delete(call),
    );
    return call;
  }

  async #deadline<T>(command: Command, callerSignal: AbortSignal | undefined, task: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (callerSignal?.aborted) throw new AbortedError({ cause: callerSignal.reason });
    const controller = new AbortController();
    const stopListening = onAnyAbort(callerSignal ? [callerSignal] : [], (signal) => controller.abort(new AbortedError({ cause: signal.reason })));
    let timer: NodeJS.Timeout | undefined;
    if (this.timeout > 0 && Number.isFinite(this.timeout)) {
      const err = new TimeoutError(`polod at ${describeEndpoint(this.endpoint)} did not answer ${command} within ${this.timeout} ms`);
      timer = setTimeout(() => controller.abort(err), this.timeout);
      timer.unref(); // the connection keeps the process alive while a reply is awaited
    }
    try {
      // The whole call (token read and request included) takes its turn: calls reach polod in
      // the order they were made, so publish(x) then unpublish(x) never swap.
      return await this.#exclusive(controller.signal, () => task(controller.signal));
    } finally {
      clearTimeout(timer);
      stopListening();
    }
  }

  /**
   * Runs `send` with the token from the token file. If there is none, asks polod for it first.
   * If polod calls it a bad token (stale: polod's secret changed, or a reference AES token),
   * asks for a new one and, if the file then holds another token, tries once more.
   */
  async #withToken(signal: AbortSignal, send: (token: string) => Promise<Json>): Promise<Json> {
    // The token read last is reused (re-reading the file was half of a publish's CPU); a
    // "Bad token" reply drops it and the file is read again below.
    let token = this.#token ?? (await this.#readToken(signal));
    if (token === null) {
      await this.#requestToken(signal);
      token = await this.#readToken(signal);
      if (token === null) {
        throw new IoError(
          `polod wrote the token of uid ${this.uid}, but ${this.tokenFile} is still missing: ` +
            `is ${this.home} the home of uid ${this.uid}?`,
        );
      }
    }
    try {
      this.#token = token;
      return await send(token);
    } catch (err) {
      if (!(err instanceof RemoteError && err.message === 'Bad token')) throw err;
      this.#token = null;
      await this.#requestToken(signal);
      const fresh = await this.#readToken(signal);
      if (fresh === null || fresh === token) throw err;
      this.#token = fresh;
      return send(fresh);
    }
  }

  /** The token last read from the token file, reused until polod calls it bad. */
  #token: string | null = null;

  async #readToken(signal: AbortSignal): Promise<string | null> {
    const token = await readTokenFile(this.home, this.userDirName);
    if (signal.aborted) throw signal.reason;
    return token === '' ? null : token;
  }

  async #requestToken(signal: AbortSignal): Promise<'created' | 'existed'> {
    const ok = await this.#send('Request-token', { uid: this.uid }, signal);
    // Our polod answers the words; a reference polod answers 0 or 1.
    if (ok === 'created' || ok === 0) return 'created';
    if (ok === 'existed' || ok === 1) return 'existed';
    throw new UnexpectedReplyError(`polod's reply to Request-token is neither "created" nor "existed" (nor 0 or 1): ${short(ok)}`);
  }

  /**
   * Sends one request (within the caller's turn) and returns the `OK` value of its reply. A connection that failed is replaced; a reused connection found dead mid-request is
   * replaced and the request resent, for commands that may safely run twice.
   * @throws RemoteError for `{"Error": reason}`.
   */
  async #send(command: Command, args: JsonObject, signal: AbortSignal): Promise<Json> {
    return (await this.#exchange(command, args, signal))['OK'] as Json;
  }

  /**
   * Resolves when a connection that holds session services (publishService with `session`) has
   * closed, so at least one of them is withdrawn: polod stopped or restarted, or the connection
   * broke. Never resolves while no session service was published.
   */
  sessionEnded(): Promise<void> {
    return this.#sessionEnded;
  }

  /** As #send, but the whole reply object (with `OK`, and `Next` for List pages). */
  async #exchange(command: Command, args: JsonObject, signal: AbortSignal): Promise<JsonObject> {
    let reply: JsonObject | undefined;
    for (let attempt = 1; reply === undefined; attempt++) {
      if (this.#destroyed) throw new ClosedError('PoloClient');
      const connection = await this.#connect(signal);
      const reused = connection.answered > 0;
      try {
        reply = await connection.request({ Command: command, Args: args }, signal);
        if (command === 'Publish' && args['session'] === true && Object.hasOwn(reply, 'OK')) void connection.closed.then(this.#endSession);
      } catch (err) {
        if (this.#connection === connection && !connection.usable) this.#connection = undefined;
        const resendable = err instanceof ConnectionLostError && (err.notSent || IDEMPOTENT.has(command));
        if (resendable && reused && attempt === 1) continue;
        throw err;
      }
    }
    if (Object.hasOwn(reply, 'Error')) {
      const reason = reply['Error'];
      throw new RemoteError(typeof reason === 'string' ? reason : JSON.stringify(reason));
    }
    if (!Object.hasOwn(reply, 'OK')) throw new UnexpectedReplyError(`polod's reply to ${command} has neither OK nor Error: ${short(reply)}`);
    return reply;
  }

  /** The open connection, or a new one. */
  async #connect(signal: AbortSignal): Promise<PolodConnection> {
    if (this.#connection?.usable) return this.#connection;
    this.#connection?.destroy();
    this.#connection = undefined;
    const connection = await PolodConnection.open(this.endpoint, signal);
    if (this.#destroyed) {
      connection.destroy();
      throw new ClosedError('PoloClient');
    }
    this.#connection = connection;
    return connection;
  }

  /** Runs `task` after every task queued before it; gives up waiting when `signal` fires. */
  async #exclusive<T>(signal: AbortSignal, task: () => Promise<T>): Promise<T> {
    const before = this.#tail;
    let release = (): void => undefined;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.#tail = before.then(() => mine);
    try {
      await untilAborted(before, signal);
      return await task();
    } finally {
      release();
    }
  }
}

function endpointOf(options: PoloClientOptions): PolodEndpoint {
  if (options.tls !== undefined) {
    if (options.socketPath !== undefined || options.stateDir !== undefined) {
      throw new InvalidArgumentError('tls cannot be combined with socketPath or stateDir');
    }
    const port = options.tls.port ?? DEFAULT_TLS_PORT;
    if (!isPort(port)) {
      throw new InvalidArgumentError(`tls.port must be a port number from 1 to 65535, got ${String(port)}`);
    }
    const host = options.tls.host ?? DEFAULT_TLS_HOST;
    if (typeof host !== 'string' || host === '') throw new InvalidArgumentError('tls.host must be a non-empty host name');
    return { kind: 'tls', host, port };
  }
  if (options.socketPath !== undefined) {
    if (typeof options.socketPath !== 'string' || options.socketPath === '') {
      throw new InvalidArgumentError('socketPath must be a non-empty path');
    }
    return { kind: 'unix', path: options.socketPath };
  }
  if (options.stateDir !== undefined && (typeof options.stateDir !== 'string' || options.stateDir === '')) {
    throw new InvalidArgumentError('stateDir must be a non-empty path');
  }
  return { kind: 'unix', path: polodSocketPath(options.stateDir) };
}

function checkId(id: unknown): asserts id is string {
  if (typeof id !== 'string' || id === '') throw new InvalidArgumentError('the service id must be a non-empty string');
}

/** A check as sent (`{"target", "interval_ms", "failures"}`), validated as polod will. */
function checkHealthCheck(check: PublishOptions['check']): JsonObject | undefined {
  if (check === undefined) return undefined;
  const json: JsonObject = { target: check.target };
  if (check.intervalMs !== undefined) json['interval_ms'] = check.intervalMs;
  if (check.failures !== undefined) json['failures'] = check.failures;
  try {
    return checkToJson(checkFromJson(json, 'check'));
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** Groups as sent: dotted-quad IPv4 multicast addresses, without duplicates; [] = all. */
function checkGroups(groups: readonly string[] | undefined): string[] {
  if (groups === undefined) return [];
  if (!Array.isArray(groups)) throw new InvalidArgumentError('groups must be a list of multicast addresses');
  const out: string[] = [];
  for (const g of groups as unknown[]) {
    const grid = gridOf(g);
    if (grid === undefined) {
      throw new InvalidArgumentError(
        `invalid multicast group ${JSON.stringify(g) ?? String(g)}: expected a multicast address (IPv4 ${MULTICAST_RANGE})`,
      );
    }
    if (!out.includes(grid)) out.push(grid);
  }
  return out;
}

/** Params as sent: a JSON object that survives JSON.stringify unchanged (no NaN, no undefined). */
function checkParams(params: JsonObject | undefined): JsonObject {
  if (params === undefined) return {};
  if (!isJsonObject(params)) throw new InvalidArgumentError('params must be a JSON object');
  checkJson(params, 'params', 0);
  return params;
}

function checkJson(value: unknown, where: string, depth: number): void {
  if (depth >= MAX_JSON_DEPTH) throw new InvalidArgumentError(`${where} is nested deeper than ${MAX_JSON_DEPTH} levels (or is circular)`);
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new InvalidArgumentError(`${where} is ${value}, which JSON cannot carry`);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((item, i) => checkJson(item, `${where}[${i}]`, depth + 1));
    return;
  }
  if (isJsonObject(value) && [null, Object.prototype].includes(Object.getPrototypeOf(value) as object | null)) {
    for (const [key, item] of Object.entries(value)) checkJson(item, `${where}.${key}`, depth + 1);
    return;
  }
  throw new InvalidArgumentError(`${where} is not a JSON value (${typeof value})`);
}

function checkBool(value: boolean | undefined, name: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw new InvalidArgumentError(`${name} must be a boolean`);
  return value;
}

/** One entry of a List reply, checked. */
function listedService(entry: Json): PublishedService {
  const bad = (): never => {
    throw new UnexpectedReplyError(`polod's List reply has a malformed entry: ${short(entry)}`);
  };
  if (!isJsonObject(entry)) return bad();
  const { id, owner, groups, permanent, params, root, check } = entry;
  if (typeof id !== 'string' || typeof owner !== 'string' || typeof permanent !== 'boolean' || typeof root !== 'boolean') return bad();
  if (!Array.isArray(groups) || !groups.every((g): g is string => typeof g === 'string') || !isJsonObject(params)) return bad();
  if (check === undefined) return { id, owner, groups, permanent, params, root };
  if (!isJsonObject(check) || typeof check['target'] !== 'string' || typeof check['state'] !== 'string' || typeof check['failures'] !== 'number') return bad();
  return { id, owner, groups, permanent, params, root, check: { target: check['target'], state: check['state'], failures: check['failures'] } };
}

/** A value as shown in an error: JSON, cut to 80 characters. */
function short(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}
