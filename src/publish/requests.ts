/**
 * Validation of publish API requests (docs/protocol.md §5): from the text of one frame to typed
 * requests, or the one-line error the caller gets. Everything a request may carry is checked
 * here, once; the handler and the store trust the types.
 *
 * The order of checks follows the reference where it mattered to callers: the envelope, then the
 * token (done by the handler, so an unauthenticated caller learns nothing but "Need a token" or
 * "Bad token"), then the fields of Args.
 */
import { isJsonObject, type Json, type JsonObject } from '../protocol/json.js';
import { decodeObject, encodeReply } from '../protocol/codec.js';
import { MAX_DATAGRAM } from '../protocol/limits.js';
import { FrameTooLargeError } from '../errors.js';
import { MAX_SERVICE_ID_LENGTH } from '../config/serviceFile.js';
import { checkFromJson, type HealthCheck } from '../health/check.js';
import { segmentProblem } from '../util/safePath.js';
import { rootServiceIdProblem, userServiceIdProblem } from '../config/serviceId.js';
import { invalidGroup, invalidServiceName, mustBe, PublishErrors, PublishRefusal } from './errors.js';
import { gridOf, expandIPv6, isIPv4Address } from '../protocol/address.js';

/** The commands of the publish API. `List` is this project's extension. */
export type CommandName = 'Publish' | 'Unpublish' | 'Request-token' | 'List';

/** Wire names and aliases (the reference routed `Register` and `Publish` to one handler). */
export const COMMAND_ALIASES: Readonly<Record<string, CommandName>> = {
  Publish: 'Publish',
  Register: 'Publish',
  Unpublish: 'Unpublish',
  'Request-token': 'Request-token',
  List: 'List',
};

/** A request whose envelope is valid: a known command and its (unchecked) Args. */
export interface Envelope {
  readonly command: CommandName;
  /** The command as it came on the wire (`Register` or `Publish`, …), for logs. */
  readonly wireCommand: string;
  /** `Args`, or `{}` when absent. */
  readonly args: JsonObject;
}

/** Publish Args, checked. */
export interface PublishArgs {
  /** The service id as the caller gave it (bare: the user prefix is added for user services). */
  readonly service: string;
  /** Params answered to Request-For (the reference dropped them, B8). */
  readonly params: JsonObject;
  /** Groups asked for, without duplicates; empty = every served group. */
  readonly groups: readonly string[];
  /** Also write a service file. */
  readonly permanent: boolean;
  /** A root (system) service rather than one of the caller's. */
  readonly root: boolean;
  /** A health check (this project's extension): offered only while it passes. */
  readonly check?: HealthCheck;
  /** Tied to the connection (this project's extension): withdrawn when it closes. */
  readonly session: boolean;
}

/** Unpublish Args, checked. */
export interface UnpublishArgs {
  /** `id` (a root service) or `user:id` (a user service). */
  readonly service: string;
  /** Groups to unpublish from, without duplicates; empty = every served group. */
  readonly groups: readonly string[];
  /** Also delete the service file (or drop these groups from it). */
  readonly deleteFile: boolean;
}

/** Request-token Args, checked. */
export interface RequestTokenArgs {
  readonly uid: number;
}

/** What validation needs to know about this polod. */
export interface RequestRules {
  /** The groups this polod serves. */
  readonly servedGroups: readonly string[];
  /** What makes an id a user service `user:service` (config `verify_regexp`). */
  readonly verifyRegexp: RegExp;
}

/**
 * Parses one frame into an envelope. The datagram codec's decoder does the parsing: valid
 * UTF-8, nesting at most 64 deep (checked before JSON.parse, so a hostile frame never reaches
 * the parser's recursion; deeper params could not be decoded by clients anyway), a JSON object,
 * and `__proto__` only ever a plain own key.
 * @throws PublishRefusal with the reply's text.
 */
export function parseEnvelope(frame: Uint8Array): Envelope {
  let doc: JsonObject;
  try {
    doc = decodeObject(frame, Number.POSITIVE_INFINITY); // the size limit is the framing's
  } catch {
    throw new PublishRefusal(PublishErrors.malformedJson);
  }
  const command = own(doc, 'Command');
  if (command === undefined || command === null) throw new PublishRefusal(PublishErrors.missingCommand);
  const name = typeof command === 'string' && Object.hasOwn(COMMAND_ALIASES, command) ? COMMAND_ALIASES[command] : undefined;
  if (name === undefined) throw new PublishRefusal(PublishErrors.unknownCommand);
  const args = own(doc, 'Args');
  if (args !== undefined && args !== null && !isJsonObject(args)) throw new PublishRefusal(PublishErrors.argsNotObject);
  return { command: name, wireCommand: command as string, args: args ?? {} };
}

/**
 * The token of a request: undefined when absent, null or empty ("Need a token"); any other
 * value is handed to the verifier as it is (a non-string is simply a bad token).
 */
export function tokenOf(args: JsonObject): Json | undefined {
  const token = own(args, 'token');
  return token === null || token === '' ? undefined : token;
}

/** Checks Publish Args. @throws PublishRefusal naming the field. */
export function parsePublishArgs(args: JsonObject, rules: RequestRules): PublishArgs {
  const service = serviceName(own(args, 'service'));
  const groups = groupList(own(args, 'multicast_groups'), rules.servedGroups);
  const permanent = bool(args, 'permanent');
  const root = bool(args, 'root');
  const params = paramsOf(own(args, 'params'));
  const check = checkOf(own(args, 'check'));
  const session = bool(args, 'session');
  if (session && permanent) throw new PublishRefusal('A session service cannot be permanent: it ends with its connection');
  return { service, params, groups, permanent, root, session, ...(check ? { check } : {}) };
}

/** The optional `check` of Publish: a target string or `{"target", "interval_ms", "failures"}`. */
function checkOf(value: Json | undefined): HealthCheck | undefined {
  if (value === undefined || value === null) return undefined;
  try {
    return checkFromJson(value, 'check');
  } catch (err) {
    throw new PublishRefusal((err as Error).message);
  }
}

/** Checks Unpublish Args. @throws PublishRefusal naming the field. */
export function parseUnpublishArgs(args: JsonObject, rules: RequestRules): UnpublishArgs {
  const service = serviceName(own(args, 'service'));
  const groups = groupList(own(args, 'multicast_groups'), rules.servedGroups);
  const deleteFile = bool(args, 'delete_file');
  return { service, groups, deleteFile };
}

/**
 * Checks List Args: `offset` (entries to skip, default 0) and `limit` (entries per page, 1 to
 * `maxLimit`, default `maxLimit`). @throws PublishRefusal naming the field.
 */
export function parseListArgs(args: JsonObject, maxLimit: number): { offset: number; limit: number } {
  const count = (field: string, min: number, max: number, fallback: number): number => {
    const value = own(args, field);
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new PublishRefusal(mustBe(field, `an integer between ${min} and ${max}`));
    }
    return value;
  };
  return { offset: count('offset', 0, Number.MAX_SAFE_INTEGER, 0), limit: count('limit', 1, maxLimit, maxLimit) };
}

/** Checks Request-token Args. @throws PublishRefusal. */
export function parseRequestTokenArgs(args: JsonObject): RequestTokenArgs {
  const uid = own(args, 'uid');
  // The reference defaulted a missing uid to -1 and then crashed (B17): here it is an error.
  if (typeof uid !== 'number' || !Number.isInteger(uid) || uid < 0 || uid > 0xfffffffe) {
    throw new PublishRefusal(mustBe('uid', 'an integer between 0 and 4294967294'));
  }
  return { uid };
}

/**
 * Checks a service id for publishing, now that it is known whose it is: the reply, the
 * Request-For lookup and the file name must all work for it.
 * - root: not of the user form (`a:b` would be looked up among a's services, never found);
 * - user `u`: `u:id` must split back into `u` and `id` under verify_regexp (with the default
 *   pattern, word characters only), or Request-For could never find it (B25); `token` is the
 *   token file's name in `~/.polo`.
 * @returns the wire id (`id` or `u:id`).
 * @throws PublishRefusal
 */
export function checkPublishedId(id: string, owner: string | undefined, verifyRegexp: RegExp): string {
  const problem = owner === undefined ? rootServiceIdProblem(id, verifyRegexp) : userServiceIdProblem(id, owner, verifyRegexp);
  if (problem !== undefined) throw new PublishRefusal(invalidServiceName(id, problem));
  return owner === undefined ? id : `${owner}:${id}`;
}

/** An own property of a parsed object (never an inherited one). */
function own(obj: JsonObject, key: string): Json | undefined {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

/**
 * A service id: a non-empty string (reference texts), at most 255 characters, and one plain
 * path segment: no `/`, `\`, NUL or control characters, not `.` or `..`. Ids become file names
 * for permanent services; refusing these for every service keeps the rule simple, and no id can
 * make polod write or delete outside its folders.
 */
function serviceName(value: Json | undefined): string {
  if (typeof value !== 'string') throw new PublishRefusal(invalidServiceName(value ?? '', 'Service must be a string'));
  if (value.length < 1) throw new PublishRefusal(invalidServiceName(value, 'Must be larger than 1'));
  if (value.length > MAX_SERVICE_ID_LENGTH) {
    throw new PublishRefusal(invalidServiceName(value, `it is longer than ${MAX_SERVICE_ID_LENGTH} characters`));
  }
  const problem = segmentProblem(value);
  if (problem !== undefined) throw new PublishRefusal(invalidServiceName(value, problem));
  return value;
}

/**
 * `multicast_groups`: absent, null or empty = every served group. Each entry must be a group this
 * polod serves; the reference only checked it against the caller's own list (B13) and then
 * crashed on an unknown group, sending no reply.
 */
function groupList(value: Json | undefined, served: readonly string[]): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new PublishRefusal(mustBe('multicast_groups', 'a list of multicast group addresses'));
  const groups: string[] = [];
  for (const g of value) {
    if (typeof g !== 'string') throw new PublishRefusal(invalidGroup(g, 'IP must be a string'));
    // The reference's two texts: a malformed address, then one outside the range.
    if (!isIPv4Address(g) && expandIPv6(g) === undefined) throw new PublishRefusal(invalidGroup(g, 'Wrong IP format'));
    // An IPv6 twin names the same grid as its IPv4 group (src/protocol/address.ts).
    const grid = gridOf(g);
    if (grid === undefined) throw new PublishRefusal(invalidGroup(g, 'The IP is not in the multicast range'));
    if (!served.includes(grid)) throw new PublishRefusal(invalidGroup(g, 'The instance is not a member of this group'));
    if (!groups.includes(grid)) groups.push(grid);
  }
  return groups;
}

/** A boolean flag; absent or null = false (the reference's defaults). */
function bool(args: JsonObject, field: string): boolean {
  const value = own(args, field);
  if (value === undefined || value === null) return false;
  if (typeof value !== 'boolean') throw new PublishRefusal(mustBe(field, 'boolean'));
  return value;
}

/**
 * `params`: an object, default `{}` (a fresh one each time: the reference's shared mutable
 * default, B8). It must fit a Request-For reply in one datagram, or it could never be answered.
 */
function paramsOf(value: Json | undefined): JsonObject {
  if (value === undefined || value === null) return {};
  if (!isJsonObject(value)) throw new PublishRefusal(mustBe('params', 'an object'));
  try {
    encodeReply({ command: 'OK', params: value });
  } catch (err) {
    if (!(err instanceof FrameTooLargeError)) throw err;
    throw new PublishRefusal(
      `params too large: the Request-For reply would be ${err.size} bytes, over the ${MAX_DATAGRAM}-byte datagram limit`,
    );
  }
  return value;
}
