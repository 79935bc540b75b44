/**
 * Every error text the publish API puts on the wire, in one place. Where the reference had a
 * text for the situation (docs/protocol.md §5), it is kept verbatim: bindings in the
 * wild show these strings to their users (the Python binding wraps them in
 * `PoloException("Error in publishing <svc>: '<reason>'")`).
 */
import { MarcoPoloError } from '../errors.js';

/** Fixed texts. */
export const PublishErrors = {
  /** The request is not a JSON object (reference text). */
  malformedJson: 'Malformed JSON',
  /** No `Command` key (reference text). */
  missingCommand: 'Missing command',
  /** A command polod does not know (`Service-info`, typos…). */
  unknownCommand: 'Unknown command',
  /** `Args` is present but not an object. */
  argsNotObject: 'Args must be an object',
  /** No token in a command that needs one (reference text). */
  needToken: 'Need a token',
  /** A token polod did not issue: garbage, altered, or minted under another secret (reference text). */
  badToken: 'Bad token',
  /** A valid token for a uid that has no account (any more) (reference text). */
  badTokenUser: 'Bad token. Could not find user',
  /** Root services for non-superusers; other users' services (reference text). */
  permissionDenied: 'Permission denied',
  /** Unpublish of a service that is not offered in the given groups (reference text). */
  notFound: 'Could not find service',
  /** Request-token for a uid without an account (reference text). */
  userNotFound: 'User not found',
  /** A file service whose file cannot be read back to rewrite its groups (reference text). */
  fileUnreadable: 'Internal error during processing of file',
  /** A request over the size limit; the connection is then closed. */
  tooLarge: 'Request too large',
  /** Half a request and then nothing for too long; the connection is then closed. */
  timedOut: 'Request timed out',
  /** polod failed (a user lookup, a disk): details are in its log, not on the wire. */
  internal: 'Internal error',
} as const;

/** Longest piece of caller input echoed back in an error: replies must stay one small recv. */
const MAX_SHOWN = 64;

/**
 * A value of the request, shown in an error as the reference did (`%s`): strings as they are,
 * other values as JSON; cut to 64 characters, since the reference Python binding reads a reply
 * with one `recv()` of 1024 bytes.
 */
export function shown(value: unknown): string {
  let text: string;
  if (typeof value === 'string') text = value;
  else {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = String(value);
    }
  }
  return text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN - 1)}…` : text;
}

/** `The name of the service <id> is invalid: <reason>` (reference text). */
export function invalidServiceName(id: unknown, reason: string): string {
  return `The name of the service ${shown(id)} is invalid: ${reason}`;
}

/** `Invalid multicast group address '<g>': <reason>` (reference text). */
export function invalidGroup(group: unknown, reason: string): string {
  return `Invalid multicast group address '${shown(group)}': ${reason}`;
}

/** `Service <id> already exists` (reference text), with the id as it is on the wire. */
export function alreadyExists(wireId: string): string {
  return `Service ${shown(wireId)} already exists`;
}

/** `Permanent service <id> already exists` (reference text): a file of that name is in the way. */
export function permanentExists(wireId: string): string {
  return `Permanent service ${shown(wireId)} already exists`;
}

/** `<field> must be <what>`, as the reference's `permanent must be boolean`. */
export function mustBe(field: string, what: string): string {
  return `${field} must be ${what}`;
}

/** `Could not write service file <id>` (reference text), plus the short reason. */
export function couldNotWrite(wireId: string, reason: string): string {
  return `Could not write service file ${shown(wireId)}: ${reason}`;
}

/** A request polod refuses; `reason` is the text of the `{"Error": …}` reply. */
export class PublishRefusal extends MarcoPoloError {
  override name = 'PublishRefusal';
  constructor(readonly reason: string) {
    super('MP_ERR_INVALID_ARG', reason);
  }
}
