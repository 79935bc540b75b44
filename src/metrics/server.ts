/**
 * The HTTP endpoint Prometheus scrapes: `GET /metrics` in the text exposition format, 404 for
 * any other path, 405 for any other method. Loaded only when a daemon is given `--metrics`
 * (src/daemon/polod.ts, src/daemon/marcod.ts), with prom-client, so a daemon without it pays
 * neither the memory nor the start-up of the library.
 */
import http from 'node:http';
import type { Registry } from 'prom-client';
import { IoError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { formatMetricsAddress, type MetricsAddress } from './address.js';

/** Scrapers are few; more connections than this are refused rather than queued without end. */
const MAX_CONNECTIONS = 32;
/** A scrape is one small request: a client that takes longer to send it is dropped. */
const REQUEST_TIMEOUT_MS = 10_000;

export interface MetricsServer {
  /** The bound port (the configured one, or the system's choice for port 0 in tests). */
  readonly port: number;
  stop(): Promise<void>;
}

/** Serves `registry` on `address`; rejects with an IoError naming the address when it cannot bind. */
export async function serveMetrics(address: MetricsAddress, registry: Registry, logger: Logger): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(req.method === 'HEAD' ? undefined : text),
      (err: unknown) => {
        logger.error({ err }, 'metrics collection failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics collection failed\n');
      },
    );
  });
  server.maxConnections = MAX_CONNECTIONS;
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.headersTimeout = REQUEST_TIMEOUT_MS;
  server.on('clientError', (_err, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(new IoError(`--metrics ${formatMetricsAddress(address)}: cannot listen (${err.code ?? err.message})`, { cause: err }));
    });
    server.listen(address.port, address.host, () => resolve());
  });
  const bound = server.address();
  const port = typeof bound === 'object' && bound !== null ? bound.port : address.port;
  logger.info({ address: `${address.host}:${port}` }, 'serving metrics');
  return {
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
