/**
 * Where a Polo client reaches polod's publish API (docs/protocol.md §5), and how it connects: the
 * Unix socket `<stateDir>/polod.sock` (default /run/marcopolo/polod.sock), or TLS on
 * 127.0.0.1:1390 as the reference bindings do. Connection failures become one clear error
 * naming the endpoint, so "polod is not running" never shows up as a bare ECONNREFUSED.
 */
import { lstat } from 'node:fs/promises';
import net, { type Socket } from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { IoError } from '../errors.js';

/**
 * polod's Unix socket when no state folder is given. Mirrors DEFAULT_SOCKET_PATH of
 * src/publish/api.ts (not imported: that module pulls in the whole server side; a
 * component test keeps the two equal).
 */
export const DEFAULT_POLOD_SOCKET = '/run/marcopolo/polod.sock';
/** The TLS endpoint's address: loopback only, as in the reference. */
export const DEFAULT_TLS_HOST = '127.0.0.1';
/** The reference's `polo_binding_port`. */
export const DEFAULT_TLS_PORT = 1390;

/** One way to reach polod. */
export type PolodEndpoint =
  | { readonly kind: 'unix'; readonly path: string }
  | { readonly kind: 'tls'; readonly host: string; readonly port: number };

/** The socket of a polod started with `--state-dir stateDir` (or the default one). */
export function polodSocketPath(stateDir?: string): string {
  return stateDir === undefined ? DEFAULT_POLOD_SOCKET : path.join(stateDir, 'polod.sock');
}

/** The endpoint as shown in messages: the socket path, or `host:port (TLS)`. */
export function describeEndpoint(endpoint: PolodEndpoint): string {
  return endpoint.kind === 'unix' ? endpoint.path : `${endpoint.host}:${endpoint.port} (TLS)`;
}

/**
 * Nobody answers at the endpoint: no socket file, a stale one, or nothing listening on the TLS
 * port. Almost always means polod is not running (or runs with another `--state-dir`).
 */
export class PolodUnavailableError extends IoError {
  override name = 'PolodUnavailableError';
  constructor(
    /** The endpoint, as {@link describeEndpoint} shows it. */
    readonly endpoint: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * Opens a stream to polod: a plain Unix socket, or TLS without certificate verification (the
 * reference bindings never verified it either: identity comes from the token, and TLS only
 * covers the loopback hop). Resolves once the stream can carry a request (after the TLS
 * handshake).
 * @throws PolodUnavailableError when nothing listens there, IoError for other failures, or
 * `signal.reason` when the signal fires first (the socket is then destroyed).
 */
export function connectPolod(endpoint: PolodEndpoint, signal: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const socket: Socket =
      endpoint.kind === 'unix'
        ? net.connect({ path: endpoint.path })
        : tls.connect({ host: endpoint.host, port: endpoint.port, rejectUnauthorized: false });
    const ready = endpoint.kind === 'unix' ? 'connect' : 'secureConnect';
    const cleanup = (): void => {
      signal.removeEventListener('abort', onAbort);
      socket.off('error', onError);
      socket.off(ready, onReady);
    };
    const onAbort = (): void => {
      cleanup();
      socket.destroy();
      reject(signal.reason);
    };
    const onError = (err: NodeJS.ErrnoException): void => {
      cleanup();
      socket.destroy();
      connectError(endpoint, err).then(reject, reject);
    };
    const onReady = (): void => {
      cleanup();
      resolve(socket);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('error', onError);
    socket.once(ready, onReady);
  });
}

/** The error a failed connection attempt is reported as. */
async function connectError(endpoint: PolodEndpoint, err: NodeJS.ErrnoException): Promise<Error> {
  const where = describeEndpoint(endpoint);
  const options = { cause: err };
  if (endpoint.kind === 'unix') {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') {
      return new PolodUnavailableError(where, `polod is not running (no socket at ${where})`, options);
    }
    if (err.code === 'ECONNREFUSED') {
      // Also what connecting to a regular file gives: say which it is.
      const isSocket = await lstat(endpoint.path).then(
        (st) => st.isSocket(),
        () => true,
      );
      if (!isSocket) return new IoError(`cannot connect to polod: ${where} is not a socket`, options);
      return new PolodUnavailableError(where, `polod is not running (nobody listens on the socket at ${where})`, options);
    }
    if (err.code === 'EACCES') {
      return new IoError(`cannot connect to polod at ${where}: permission denied`, options);
    }
  } else if (err.code === 'ECONNREFUSED') {
    return new PolodUnavailableError(where, `polod is not running (nothing listens on ${where})`, options);
  }
  return new IoError(`cannot connect to polod at ${where}: ${err.message}`, options);
}
