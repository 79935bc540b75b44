/**
 * polod's publish API, assembled: the token secret and TLS certificate (made at first start),
 * the store over the daemon's service registry, the handler and the two listeners.
 *
 * Paths follow the reference unless a state folder is given (`polod --state-dir DIR`), which
 * holds everything polod writes, so it runs unprivileged for tests and demos:
 *
 * | what | default | with --state-dir DIR |
 * |---|---|---|
 * | secret | /etc/marcopolo/polo/secret (config secret_file) | DIR/secret |
 * | TLS key + certificate | /etc/marcopolo/certs/polossl.{key,crt} | DIR/certs/ |
 * | Unix socket | /run/marcopolo/polod.sock | DIR/polod.sock |
 * | root service files | /etc/marcopolo/polo/services (config services_dir) | DIR/services |
 */
import path from 'node:path';
import { loadOrCreateCertificate } from '../auth/certificate.js';
import { loadOrCreateSecret } from '../auth/secret.js';
import type { UserDirectory } from '../system/userDb.js';
import type { Logger } from '../util/log.js';
import { PublishHandler, type PublishCalls } from './handler.js';
import { PublishServer, type ServerLimits } from './server.js';
import type { CheckStatusOf } from '../registry/listing.js';
import type { ServiceRegistry } from '../registry/registry.js';
import { DaemonServiceStore } from './store.js';

/** Where the reference kept its TLS key and certificate. */
export const DEFAULT_CERT_DIR = '/etc/marcopolo/certs';
/** The Unix socket when no state folder is given. */
export const DEFAULT_SOCKET_PATH = '/run/marcopolo/polod.sock';
/** The TLS endpoint's address: loopback only, as in the reference. */
export const BINDING_HOST = '127.0.0.1';

/** The settings the publish API reads (a subset of PoloConfig). */
export interface PublishApiSettings {
  readonly bindingPort: number;
  readonly secretFile: string;
  readonly servicesDir: string;
  readonly userDir: string;
  readonly verifyRegexp: RegExp;
  readonly stateDir?: string;
  readonly maxServicesPerUser: number;
  readonly maxServiceBytesPerUser: number;
  readonly publishMaxConnections: number;
  readonly publishMaxConnectionsPerUser: number;
  readonly publishIdleTimeoutMs: number;
}

/** The certificate folder and socket path for these settings (see the module comment). */
export function publishPaths(settings: { readonly stateDir?: string }): { certDir: string; socketPath: string } {
  if (settings.stateDir === undefined) return { certDir: DEFAULT_CERT_DIR, socketPath: DEFAULT_SOCKET_PATH };
  return { certDir: path.join(settings.stateDir, 'certs'), socketPath: path.join(settings.stateDir, 'polod.sock') };
}

/** Collaborators of {@link startPublishApi}. */
export interface PublishApiDeps {
  /** The services of the running daemon (PoloDaemon.registry). */
  readonly registry: ServiceRegistry;
  /** The state of each service's health check (PoloDaemon.health), for `List`. */
  readonly checkStatus?: CheckStatusOf;
  readonly users: UserDirectory;
  readonly logger: Logger;
  readonly limits?: Partial<ServerLimits>;
  /** Counts the requests for polod's metrics. */
  readonly calls?: PublishCalls;
}

/**
 * Starts the publish API of a running daemon on TLS 127.0.0.1:<bindingPort> and the Unix socket.
 * @throws IoError (port in use, socket taken, unreadable secret…) or UnsafeFileError/ConfigError
 * from the secret and certificate checks; nothing is left listening then.
 */
export async function startPublishApi(settings: PublishApiSettings, deps: PublishApiDeps): Promise<PublishServer> {
  const logger = deps.logger.child({ component: 'publish' });
  const secret = await loadOrCreateSecret(settings.secretFile);
  const { certDir, socketPath } = publishPaths(settings);
  const { key, cert } = await loadOrCreateCertificate(certDir);
  const store = new DaemonServiceStore(deps.registry, {
    servicesDir: settings.servicesDir,
    userDirName: settings.userDir,
    logger,
    ...(deps.checkStatus ? { checkStatus: deps.checkStatus } : {}),
    quota: { maxServices: settings.maxServicesPerUser, maxBytes: settings.maxServiceBytesPerUser },
  });
  const swept = await store.sweepTemporaryFiles();
  if (swept > 0) logger.info({ files: swept, dir: settings.servicesDir }, 'removed temporary files of interrupted writes');
  const handler = new PublishHandler({
    secret,
    users: deps.users,
    store,
    verifyRegexp: settings.verifyRegexp,
    userDirName: settings.userDir,
    logger,
    maxSessionConnectionsPerUser: settings.publishMaxConnectionsPerUser,
    ...(deps.calls ? { calls: deps.calls } : {}),
  });
  const server = new PublishServer({
    handle: (frame, peer) => handler.handle(frame, peer),
    tls: { host: BINDING_HOST, port: settings.bindingPort, key, cert },
    socketPath,
    limits: {
      maxConnections: settings.publishMaxConnections,
      maxConnectionsPerUser: settings.publishMaxConnectionsPerUser,
      idleTimeoutMs: settings.publishIdleTimeoutMs,
      ...deps.limits,
    },
    logger,
  });
  await server.start();
  return server;
}
