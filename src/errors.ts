/**
 * Typed errors. Every error the library raises is a MarcoPoloError with a stable `code`; the
 * CLIs map them to one-line messages and documented exit codes.
 */
export type ErrorCode =
  | 'MP_ERR_PROTOCOL'
  | 'MP_ERR_INVALID_ARG'
  | 'MP_ERR_CONFIG'
  | 'MP_ERR_CLOSED'
  | 'MP_ERR_TIMEOUT'
  | 'MP_ERR_ABORTED'
  | 'MP_ERR_JOIN'
  | 'MP_ERR_FRAME_TOO_LARGE'
  | 'MP_ERR_REMOTE'
  | 'MP_ERR_IO';

/** Base class of every error this package throws on purpose. */
export class MarcoPoloError extends Error {
  override name = 'MarcoPoloError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Why a datagram could not be decoded. */
export type ProtocolErrorReason =
  | 'too-large'
  | 'invalid-utf8'
  | 'invalid-json'
  | 'too-deep'
  | 'not-object'
  | 'no-command'
  | 'unknown-command'
  | 'bad-field';

/** A datagram that is not a valid MarcoPolo message. Raised only by the protocol codec. */
export class ProtocolError extends MarcoPoloError {
  override name = 'ProtocolError';
  constructor(
    readonly reason: ProtocolErrorReason,
    message: string,
  ) {
    super('MP_ERR_PROTOCOL', message);
  }
}

/** A caller passed a value the API cannot use (names the argument). */
export class InvalidArgumentError extends MarcoPoloError {
  override name = 'InvalidArgumentError';
  constructor(message: string) {
    super('MP_ERR_INVALID_ARG', message);
  }
}

/** A configuration file, key or flag holds a value polod cannot use (names the key and value). */
export class ConfigError extends MarcoPoloError {
  override name = 'ConfigError';
  constructor(message: string) {
    super('MP_ERR_CONFIG', message);
  }
}

/** The object was stopped; it cannot be used any more. */
export class ClosedError extends MarcoPoloError {
  override name = 'ClosedError';
  constructor(what: string) {
    super('MP_ERR_CLOSED', `${what} is closed`);
  }
}

/** An encoded message would not fit in one datagram. */
export class FrameTooLargeError extends MarcoPoloError {
  override name = 'FrameTooLargeError';
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super('MP_ERR_FRAME_TOO_LARGE', `message of ${size} bytes exceeds the ${limit}-byte frame limit`);
  }
}

/** Joining a multicast group failed (the responder retries with back-off). */
export class JoinError extends MarcoPoloError {
  override name = 'JoinError';
  constructor(
    readonly group: string,
    readonly iface: string | undefined,
    options?: ErrorOptions,
  ) {
    super('MP_ERR_JOIN', `could not join group ${group}${iface ? ` on ${iface}` : ''}`, options);
  }
}

/** A deadline passed before an answer came. */
export class TimeoutError extends MarcoPoloError {
  override name = 'TimeoutError';
  constructor(message: string) {
    super('MP_ERR_TIMEOUT', message);
  }
}

/** The caller's AbortSignal fired. */
export class AbortedError extends MarcoPoloError {
  override name = 'AbortedError';
  constructor(options?: ErrorOptions) {
    super('MP_ERR_ABORTED', 'the operation was aborted', options);
  }
}

/** A daemon answered with an error reply (`{"Error": ...}`). */
export class RemoteError extends MarcoPoloError {
  override name = 'RemoteError';
  constructor(message: string) {
    super('MP_ERR_REMOTE', message);
  }
}

/** A file, folder or system command polod depends on failed (names the path or command). */
export class IoError extends MarcoPoloError {
  override name = 'IoError';
  constructor(message: string, options?: ErrorOptions) {
    super('MP_ERR_IO', message, options);
  }
}

/**
 * polod refused to trust or touch a file or folder: it is a symlink, has the wrong type or
 * owner, or is readable or writable by people who must not read or write it. Names the path
 * and what is wrong, so the administrator can fix it.
 */
export class UnsafeFileError extends IoError {
  override name = 'UnsafeFileError';
  constructor(
    readonly path: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
