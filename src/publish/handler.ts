/**
 * What the publish API answers (docs/protocol.md §5): one frame in, one reply out. Transport-free,
 * so component tests drive it directly; the server (server.ts) only frames bytes and writes
 * replies. It authenticates by token, authorises, validates, and hands the change to a
 * ServiceStore.
 *
 * Rules, with the reference bug each one fixes:
 * - every request gets exactly one reply, never none and never two (B17, B27);
 * - the token is an HMAC token only polod can mint (src/auth/token.ts), so garbage,
 *   altered or foreign tokens are "Bad token" rather than a crash or another identity (B17);
 * - root services only for uid 0 and the `marcopolo` group; a user unpublishes only their own
 *   services, root services only a superuser; uid 0 may unpublish anyone's (B15);
 * - params are kept (B8); groups must be served ones (B13).
 */
import { issueToken, verifyToken } from '../auth/token.js';
import { writeTokenFile } from '../auth/tokenFile.js';
import { MarcoPoloError } from '../errors.js';
import type { Json, JsonObject } from '../protocol/json.js';
import { DEFAULT_USER_DIR, splitUserId } from '../registry/userId.js';
import type { UserDirectory, UserInfo } from '../system/userDb.js';
import { silentLogger, type Logger } from '../util/log.js';
import { PublishErrors, PublishRefusal } from './errors.js';
import { LIST_PAGE_ENTRIES, pageOf } from './listing.js';
import {
  checkPublishedId,
  parseEnvelope,
  parseListArgs,
  parsePublishArgs,
  parseRequestTokenArgs,
  parseUnpublishArgs,
  tokenOf,
  type Envelope,
  type RequestRules,
} from './requests.js';
import type { Session } from './session.js';
import { SessionLimit } from './sessionLimit.js';
import type { ServiceStore } from './store.js';

/** The session of the connection a request came on; a session publish needs one. */
function sessionOf(peer: PeerInfo): Session {
  if (!peer.session) throw new PublishRefusal('Sessions need a connection that stays open (not available here)');
  return peer.session;
}

/** A reply: `{"OK": …}` (List pages add `"Next"`, see listing.ts) or `{"Error": "<reason>"}`. */
export type PublishReply = { OK: Json; Next?: number } | { Error: string };

/** What the kernel told about the connected peer (server.ts); empty when it could not. */
export interface PeerInfo {
  /** The uid owning the peer's socket. */
  uid?: number;
  /** The connection's session: what it publishes with `"session": true` lives as long as it. */
  session?: Session;
}

/** Writes `token` into the user's token file (default: writeTokenFile). */
export type TokenWriter = (user: UserInfo, token: string, userDirName: string) => Promise<'created' | 'existed'>;

/** Collaborators of {@link PublishHandler}. */
export interface PublishHandlerOptions {
  /** The token secret (loadOrCreateSecret). */
  readonly secret: Uint8Array;
  /** The system's users (UserDb; fakeUserDirectory in tests). */
  readonly users: UserDirectory;
  readonly store: ServiceStore;
  /** What makes an id a user service (config verify_regexp). */
  readonly verifyRegexp: RegExp;
  /** The per-user folder (config polo_user_dir, default `.polo`). */
  readonly userDirName?: string;
  /** How Request-token writes the token file (tests may replace it). */
  readonly writeToken?: TokenWriter;
  readonly logger?: Logger;
  /** Most session connections of one user (sessionLimit.ts); default DEFAULT_SESSION_CONNECTIONS. */
  readonly maxSessionConnectionsPerUser?: number;
  /** Counts each request by command and result (polod's metrics, src/metrics/polod.ts). */
  readonly calls?: PublishCalls;
}

/** Requests by `command` (or `invalid`) and `result` (`ok`, `refused`, `error`). */
export class PublishCalls {
  readonly counts = new Map<string, { readonly command: string; readonly result: string; n: number }>();

  count(command: string, result: 'ok' | 'refused' | 'error'): void {
    const key = `${command} ${result}`;
    const entry = this.counts.get(key);
    if (entry) entry.n++;
    else this.counts.set(key, { command, result, n: 1 });
  }
}

/** Session connections one user may hold by default: as many as connections over TLS. */
export const DEFAULT_SESSION_CONNECTIONS = 32;

/** Decides the reply to each request of the publish API. */
export class PublishHandler {
  private readonly log: Logger;
  private readonly rules: RequestRules;
  private readonly writeToken: TokenWriter;
  private readonly userDirName: string;
  private readonly sessions: SessionLimit;

  constructor(private readonly options: PublishHandlerOptions) {
    this.log = options.logger ?? silentLogger;
    this.sessions = new SessionLimit(options.maxSessionConnectionsPerUser ?? DEFAULT_SESSION_CONNECTIONS);
    this.rules = { servedGroups: options.store.servedGroups, verifyRegexp: options.verifyRegexp };
    this.writeToken = options.writeToken ?? writeTokenFile;
    this.userDirName = options.userDirName ?? DEFAULT_USER_DIR;
  }

  /**
   * The reply to one request (the bytes of one frame). Never throws: a refused request gets its
   * reason, an unexpected failure (a user lookup, a disk) is logged and gets "Internal error".
   */
  async handle(frame: Uint8Array, peer: PeerInfo = {}): Promise<PublishReply> {
    const counted = { command: 'invalid' };
    const reply = await this.reply(frame, peer, counted);
    this.options.calls?.count(counted.command, 'OK' in reply ? 'ok' : reply.Error === PublishErrors.internal ? 'error' : 'refused');
    return reply;
  }

  private async reply(frame: Uint8Array, peer: PeerInfo, counted: { command: string }): Promise<PublishReply> {
    try {
      const envelope = parseEnvelope(frame);
      counted.command = envelope.command;
      switch (envelope.command) {
        case 'Publish':
          return { OK: await this.publish(envelope, peer) };
        case 'Unpublish':
          return { OK: await this.unpublish(envelope, peer) };
        case 'Request-token':
          return { OK: await this.requestToken(envelope) };
        case 'List':
          return await this.list(envelope);
      }
    } catch (err) {
      if (err instanceof PublishRefusal) return { Error: err.reason };
      this.log.error({ err }, 'publish API request failed');
      return { Error: PublishErrors.internal };
    }
  }

  /** The user a token proves, or a refusal ("Need a token", "Bad token", …). */
  private async authenticate(args: JsonObject, peer: PeerInfo): Promise<UserInfo> {
    const token = tokenOf(args);
    if (token === undefined) throw new PublishRefusal(PublishErrors.needToken);
    const verified = verifyToken(this.options.secret, token);
    if (!verified.ok) {
      await this.refreshToken(peer);
      throw new PublishRefusal(PublishErrors.badToken);
    }
    const user = await this.options.users.lookupUid(verified.uid);
    if (!user) throw new PublishRefusal(PublishErrors.badTokenUser);
    if (verified.legacy) await this.replaceLegacyToken(user);
    return user;
  }

  /**
   * A first-format token (52 characters for uid 1000 and up, more than the C++ binding reads)
   * was valid: the user's file gets the current token, so their next call, from any binding,
   * carries it. Best effort: the request goes on whatever happens, and the old token still works.
   */
  private async replaceLegacyToken(user: UserInfo): Promise<void> {
    try {
      const outcome = await this.writeToken(user, issueToken(this.options.secret, user.uid), this.userDirName);
      if (outcome === 'created') this.log.info({ user: user.name }, 'token file upgraded to the current format');
    } catch (err) {
      this.log.warn({ err, user: user.name }, 'could not upgrade a first-format token file');
    }
  }

  /** Publish/Register: returns the wire id (`id` for root services, `user:id` otherwise). */
  private async publish(envelope: Envelope, peer: PeerInfo): Promise<string> {
    const caller = await this.authenticate(envelope.args, peer);
    const args = parsePublishArgs(envelope.args, this.rules);
    if (args.root && !(await this.options.users.isSuperuser(caller))) {
      throw new PublishRefusal(PublishErrors.permissionDenied);
    }
    const wireId = checkPublishedId(args.service, args.root ? undefined : caller.name, this.options.verifyRegexp);
    const session = args.session ? sessionOf(peer) : undefined;
    const unadmit = session ? this.sessions.admit(caller, session) : undefined;
    try {
      await this.options.store.publish({
        id: args.service,
        wireId,
        publisher: caller,
        root: args.root,
        params: args.params,
        groups: args.groups,
        permanent: args.permanent,
        ...(args.check ? { check: args.check } : {}),
        ...(session ? { session } : {}),
      });
    } catch (err) {
      unadmit?.();
      throw err;
    }
    this.log.info(
      { command: envelope.wireCommand, service: wireId, user: caller.name, groups: args.groups, permanent: args.permanent, session: args.session },
      'service published',
    );
    return wireId;
  }

  /** Unpublish: `id` is a root service, `user:id` a user's. Returns 0. */
  private async unpublish(envelope: Envelope, peer: PeerInfo): Promise<number> {
    const caller = await this.authenticate(envelope.args, peer);
    const args = parseUnpublishArgs(envelope.args, this.rules);
    const split = splitUserId(args.service, this.options.verifyRegexp);
    const plan = { wireId: args.service, groups: args.groups, deleteFile: args.deleteFile };
    if (split) {
      // Permission before existence, so nobody learns which services others have.
      if (split.user !== caller.name && caller.uid !== 0) throw new PublishRefusal(PublishErrors.permissionDenied);
      const owner = split.user === caller.name ? caller : await this.options.users.lookupName(split.user);
      if (!owner) throw new PublishRefusal(PublishErrors.notFound);
      await this.options.store.unpublish({ ...plan, id: split.service, owner });
    } else {
      if (!(await this.options.users.isSuperuser(caller))) throw new PublishRefusal(PublishErrors.permissionDenied);
      await this.options.store.unpublish({ ...plan, id: args.service });
    }
    this.log.info(
      { service: args.service, user: caller.name, groups: args.groups, deleteFile: args.deleteFile },
      'service unpublished',
    );
    return 0;
  }

  /**
   * Request-token: writes the token of `uid` into that user's token file; the token itself is
   * never sent, so asking for anyone's token is harmless. Answers "created" or "existed": the
   * reference answered 0 or 1, on which the C++ binding's GetString() aborts (B24); a non-empty
   * string satisfies it, and the Python binding only looks for `Error`.
   */
  private async requestToken(envelope: Envelope): Promise<'created' | 'existed'> {
    const { uid } = parseRequestTokenArgs(envelope.args);
    const user = await this.options.users.lookupUid(uid);
    if (!user) throw new PublishRefusal(PublishErrors.userNotFound);
    let outcome: 'created' | 'existed';
    try {
      outcome = await this.writeToken(user, issueToken(this.options.secret, uid), this.userDirName);
    } catch (err) {
      if (!(err instanceof MarcoPoloError)) throw err;
      // The reference replied str(exception); ours name the folder and what is wrong with it.
      this.log.warn({ err, user: user.name }, 'could not write a token file');
      throw new PublishRefusal(`Could not write the token file: ${err.message.replace(/\s+/g, ' ').slice(0, 200)}`);
    }
    this.log.info({ user: user.name, outcome }, 'token file requested');
    return outcome;
  }

  /**
   * A refused token from a peer the kernel identified is most likely a stale token file (polod's
   * secret was replaced, or it holds a reference AES token): the peer's own token file is
   * rewritten, so their binding, which reads the file on each call, succeeds next time. It is
   * what Request-token for their own uid would do (and anyone may ask that for anyone); the
   * reply stays "Bad token". Failures are logged at debug only (a peer sending bad tokens in a
   * loop must not flood the log): the refusal is the answer either way.
   */
  private async refreshToken(peer: PeerInfo): Promise<void> {
    if (peer.uid === undefined) return;
    try {
      const user = await this.options.users.lookupUid(peer.uid);
      if (!user) return;
      const outcome = await this.writeToken(user, issueToken(this.options.secret, peer.uid), this.userDirName);
      if (outcome === 'created') this.log.info({ user: user.name }, 'bad token from this user: their token file was rewritten');
    } catch (err) {
      this.log.debug({ err, uid: peer.uid }, 'bad token: could not rewrite the token file of the peer');
    }
  }

  /**
   * List (this project's extension): every service this node offers, with its groups, one page
   * at a time (listing.ts). No token: it is read-only, and it shows what the node answers to
   * anyone on the LAN who asks (user services included: their ids are not secrets, only their
   * ownership is protected).
   */
  private async list(envelope: Envelope): Promise<PublishReply> {
    const request = parseListArgs(envelope.args, LIST_PAGE_ENTRIES);
    const store = this.options.store;
    const page = store.listPage ? await store.listPage(request) : pageOf(store.list(), request);
    const entries: Json = page.entries.map((s) => ({
      id: s.id,
      owner: s.owner,
      groups: [...s.groups],
      permanent: s.permanent,
      params: s.params,
      root: s.root,
      ...(s.check ? { check: { target: s.check.target, state: s.check.state, failures: s.check.failures } } : {}),
    }));
    return page.next === undefined ? { OK: entries } : { OK: entries, Next: page.next };
  }
}
