/**
 * Runs marcod until a stop signal: the local API server (src/marcod/) on real UDP,
 * built from a validated configuration, stopped cleanly on SIGTERM or SIGINT (requests still in
 * progress get an error reply instead of silence). marcod has nothing to reload: SIGHUP is
 * ignored rather than left to kill it.
 */
import type { MarcoConfig } from '../config/marcoConfig.js';
import { MarcodServer, type MarcodDeps } from '../marcod/server.js';
import type { MetricsServer } from '../metrics/server.js';
import type { Logger } from '../util/log.js';

/**
 * Starts marcod and resolves once it has stopped on SIGTERM or SIGINT. Rejects if it cannot start.
 * The signal handlers are installed before the start: a SIGTERM just after 'marcod started' was
 * logged (a service manager stopping a fresh unit) would otherwise kill the process outright.
 */
export async function runMarcod(config: MarcoConfig, logger: Logger, deps: Omit<MarcodDeps, 'logger'> = {}): Promise<void> {
  // prom-client is loaded only when metrics are asked for (src/metrics/server.ts).
  const metrics = config.metrics === undefined ? undefined : new (await import('../metrics/marcod.js')).MarcodMetrics();
  const server = new MarcodServer(config, { warmViews: true, ...deps, logger, ...(metrics && { onServed: metrics.observe }) });
  metrics?.attach(server);
  let metricsServer: MetricsServer | undefined;
  let stopAsked = false;
  let wake: (() => void) | undefined;
  const ignore = (): void => logger.info('SIGHUP ignored: marcod has nothing to reload');
  const stop = (signal: NodeJS.Signals): void => {
    if (stopAsked) return;
    stopAsked = true;
    logger.info({ signal }, 'stopping');
    wake?.();
  };
  const detach = (): void => {
    for (const s of ['SIGTERM', 'SIGINT'] as const) process.off(s, stop);
    process.off('SIGHUP', ignore);
  };
  for (const s of ['SIGTERM', 'SIGINT'] as const) process.on(s, stop);
  process.on('SIGHUP', ignore);
  try {
    await server.start();
    if (metrics && config.metrics) metricsServer = await metrics.serve(config.metrics, logger);
  } catch (err) {
    detach();
    await server.stop();
    throw err;
  }
  await new Promise<void>((resolve) => {
    wake = resolve;
    if (stopAsked) resolve();
  });
  detach();
  await metricsServer?.stop();
  await server.stop();
}
