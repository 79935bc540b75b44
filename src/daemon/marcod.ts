/**
 * Runs marcod until a stop signal: the local API server (src/marcod/) on real UDP,
 * built from a validated configuration, stopped cleanly on SIGTERM or SIGINT (requests still in
 * progress get an error reply instead of silence). marcod has nothing to reload: SIGHUP is
 * ignored rather than left to kill it.
 */
import type { MarcoConfig } from '../config/marcoConfig.js';
import { MarcodServer, type MarcodDeps } from '../marcod/server.js';
import type { Logger } from '../util/log.js';

/** Starts marcod and resolves once it has stopped on SIGTERM or SIGINT. Rejects if it cannot start. */
export async function runMarcod(config: MarcoConfig, logger: Logger, deps: Omit<MarcodDeps, 'logger'> = {}): Promise<void> {
  const server = new MarcodServer(config, { warmViews: true, ...deps, logger });
  try {
    await server.start();
  } catch (err) {
    await server.stop();
    throw err;
  }
  await new Promise<void>((resolve) => {
    const ignore = (): void => logger.info('SIGHUP ignored: marcod has nothing to reload');
    const stop = (signal: NodeJS.Signals): void => {
      logger.info({ signal }, 'stopping');
      for (const s of ['SIGTERM', 'SIGINT'] as const) process.off(s, stop);
      process.off('SIGHUP', ignore);
      void server.stop().then(resolve);
    };
    for (const s of ['SIGTERM', 'SIGINT'] as const) process.on(s, stop);
    process.on('SIGHUP', ignore);
  });
}
