/**
 * Runs polod until a stop signal: builds the daemon from a validated configuration, wires the
 * reload signals (SIGUSR1 as in the reference, and SIGHUP as daemons conventionally do) and the
 * stop signals (SIGTERM, SIGINT).
 */
import type { PoloConfig } from '../config/poloConfig.js';
import { loadServiceDir } from '../config/serviceDir.js';
import { UserDb } from '../system/userDb.js';
import type { Logger } from '../util/log.js';
import { PoloDaemon } from './poloDaemon.js';

/** Starts polod and resolves once it has stopped on SIGTERM or SIGINT. Rejects if it cannot start. */
export async function runPolod(config: PoloConfig, logger: Logger): Promise<void> {
  const daemon = new PoloDaemon(config, { logger, loadServices: loadServiceDir, users: new UserDb() });
  try {
    await daemon.start();
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
      void daemon.stop().then(() => {
        logger.info('polod stopped');
        resolve();
      });
    };
    for (const s of ['SIGUSR1', 'SIGHUP'] as const) process.on(s, reload);
    for (const s of ['SIGTERM', 'SIGINT'] as const) process.on(s, stop);
  });
}
