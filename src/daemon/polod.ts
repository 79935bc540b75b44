/**
 * Runs polod until a stop signal: builds the daemon from a validated configuration, starts the
 * publish API (TLS 127.0.0.1:<polo_binding_port> and a Unix socket, see
 * src/publish/api.ts), wires the reload signals (SIGUSR1 as in the reference, and SIGHUP
 * as daemons conventionally do) and the stop signals (SIGTERM, SIGINT).
 *
 * The signal handlers are installed before anything starts: a signal that arrived during start
 * would otherwise kill polod (SIGHUP, SIGTERM) or open Node's inspector (SIGUSR1) in a process
 * that runs as root. Signals during start are remembered and acted on once start has finished.
 *
 * If the publish API cannot start (port in use, unreadable secret…), polod does not start at
 * all: a daemon that answers queries but refuses every publish would hide the error.
 */
import path from 'node:path';
import { startPublishApi } from '../publish/api.js';
import type { PublishServer } from '../publish/server.js';
import { PublishCalls } from '../publish/handler.js';
import type { MetricsServer } from '../metrics/server.js';
import type { PoloConfig } from '../config/poloConfig.js';
import { loadServiceDir } from '../config/serviceDir.js';
import { UserDb } from '../system/userDb.js';
import type { Logger } from '../util/log.js';
import { PoloDaemon } from './poloDaemon.js';

const RELOAD_SIGNALS = ['SIGUSR1', 'SIGHUP'] as const;
const STOP_SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/** Starts polod and resolves once it has stopped on SIGTERM or SIGINT. Rejects if it cannot start. */
export async function runPolod(config: PoloConfig, logger: Logger): Promise<void> {
  let running = false;
  let reloadPending = false;
  let stopRequested: (() => void) | undefined;
  const stopped = new Promise<void>((resolve) => (stopRequested = resolve));
  let stopAsked = false;

  const users = new UserDb({ superuserGroup: config.superuserGroup });
  // The record of users with services lives beside the token secret (the state folder).
  const usersFile = path.join(path.dirname(config.secretFile), 'users');
  const daemon = new PoloDaemon({ ...config, usersFile }, { logger, loadServices: loadServiceDir, users });
  let publish: PublishServer | undefined;
  let metrics: MetricsServer | undefined;
  const publishCalls = new PublishCalls();

  const reload = (signal: NodeJS.Signals): void => {
    if (!running) {
      reloadPending = true;
      return;
    }
    logger.info({ signal }, 'reloading services');
    daemon.reload().catch((err: unknown) => logger.error({ err }, 'reload failed'));
  };
  const stop = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'stopping');
    stopAsked = true;
    if (running) stopRequested?.();
  };
  for (const s of RELOAD_SIGNALS) process.on(s, reload);
  for (const s of STOP_SIGNALS) process.on(s, stop);
  const detach = (): void => {
    for (const s of RELOAD_SIGNALS) process.off(s, reload);
    for (const s of STOP_SIGNALS) process.off(s, stop);
  };

  try {
    await daemon.start();
    publish = await startPublishApi(config, {
      registry: daemon.registry,
      checkStatus: (id, user) => daemon.health.status(id, user),
      users,
      logger,
      calls: publishCalls,
    });
    // prom-client is loaded only when metrics are asked for (src/metrics/server.ts).
    if (config.metrics) {
      const { startPolodMetrics } = await import('../metrics/polod.js');
      metrics = await startPolodMetrics(config.metrics, { daemon, publishCalls }, logger);
    }
  } catch (err) {
    detach();
    await publish?.stop();
    await daemon.stop();
    throw err;
  }
  running = true;
  logger.info('polod ready');
  if (stopAsked) stopRequested?.();
  else if (reloadPending) reload('SIGHUP');

  await stopped;
  detach();
  await metrics?.stop();
  // The publish API first: requests in progress finish while the responders still run.
  await publish.stop();
  await daemon.stop();
  logger.info('polod stopped');
}
