/**
 * Runs polod until a stop signal: builds the daemon from a validated configuration, starts the
 * publish API (TLS 127.0.0.1:<polo_binding_port> and a Unix socket, see
 * src/binding/publish/api.ts), wires the reload signals (SIGUSR1 as in the reference, and SIGHUP
 * as daemons conventionally do) and the stop signals (SIGTERM, SIGINT).
 *
 * If the publish API cannot start (port in use, unreadable secret…), polod does not start at
 * all: a daemon that answers queries but refuses every publish would hide the error.
 */
import { startPublishApi } from '../binding/publish/api.js';
import type { PublishServer } from '../binding/publish/server.js';
import type { PoloConfig } from '../config/poloConfig.js';
import { loadServiceDir } from '../config/serviceDir.js';
import { UserDb } from '../system/userDb.js';
import type { Logger } from '../util/log.js';
import { PoloDaemon } from './poloDaemon.js';

/** Starts polod and resolves once it has stopped on SIGTERM or SIGINT. Rejects if it cannot start. */
export async function runPolod(config: PoloConfig, logger: Logger): Promise<void> {
  const users = new UserDb();
  const daemon = new PoloDaemon(config, { logger, loadServices: loadServiceDir, users });
  let publish: PublishServer;
  try {
    await daemon.start();
    publish = await startPublishApi(config, { daemon, users, logger });
  } catch (err) {
    await daemon.stop();
    throw err;
  }
  await new Promise<void>((resolve) => {
    const reload = (signal: NodeJS.Signals): void => {
      logger.info({ signal }, 'reloading services');
      daemon.reload().catch((err: unknown) => logger.error({ err }, 'reload failed'));
    };
    const stop = (signal: NodeJS.Signals): void => {
      logger.info({ signal }, 'stopping');
      for (const s of ['SIGUSR1', 'SIGHUP'] as const) process.off(s, reload);
      for (const s of ['SIGTERM', 'SIGINT'] as const) process.off(s, stop);
      // The publish API first: requests in progress finish while the responders still run.
      void publish
        .stop()
        .then(() => daemon.stop())
        .then(() => {
          logger.info('polod stopped');
          resolve();
        });
    };
    for (const s of ['SIGUSR1', 'SIGHUP'] as const) process.on(s, reload);
    for (const s of ['SIGTERM', 'SIGINT'] as const) process.on(s, stop);
  });
}
