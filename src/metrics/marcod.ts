/**
 * marcod's Prometheus metrics (docs/operations.md, "Metrics"): its request counters read at
 * scrape time (MarcodServer.stats), the warm views' sizes, and a latency histogram observed once
 * per request served (MarcodDeps.onServed; a request is a network query or a view lookup, so
 * one observation is small beside it).
 */
import { Histogram, Registry } from 'prom-client';
import { collected } from './collected.js';
import type { MarcodServer } from '../marcod/server.js';
import type { Logger } from '../util/log.js';
import type { MetricsAddress } from './address.js';
import { addProcessMetrics } from './process.js';
import { serveMetrics, type MetricsServer } from './server.js';

/**
 * Seconds: a warm view answers in well under a millisecond, a query takes its timeout (1 s by
 * default, up to what the request asks).
 */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2.5, 5, 10];

/** marcod's metrics: `observe` goes to MarcodDeps.onServed, `attach` gives the running server. */
export class MarcodMetrics {
  readonly registry = new Registry();
  private server: MarcodServer | undefined;
  private readonly latency: Histogram<'command' | 'outcome'>;

  constructor() {
    const registry = this.registry;
    const stats = (): MarcodServer['stats'] | undefined => this.server?.stats;
    const scalar = (name: string, help: string, read: (s: MarcodServer['stats']) => number): void =>
      collected(registry, 'counter', name, help, [], (sample) => {
        const s = stats();
        if (s) sample({}, read(s));
      });
    this.latency = new Histogram({
      name: 'marcopolo_marcod_request_duration_seconds',
      help: 'Time from a request to its reply, by command (invalid when it did not parse) and outcome (nodes, services, error).',
      labelNames: ['command', 'outcome'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    });
    scalar('marcopolo_marcod_requests_total', 'Request datagrams received, busy ones included.', (s) => s.requests);
    scalar('marcopolo_marcod_busy_total', 'Requests refused with "busy" (too many in progress, in all or for one client).', (s) => s.busy);
    scalar('marcopolo_marcod_error_replies_total', 'Error replies sent or attempted, busy ones included.', (s) => s.errors);
    scalar('marcopolo_marcod_truncated_replies_total', 'Replies that left entries out to fit frame_size.', (s) => s.truncated);
    scalar('marcopolo_marcod_unsent_replies_total', 'Replies not sent (send queue full, or the send failed).', (s) => s.unsent);
    const warm = (): MarcodServer['warm'] => this.server?.warm;
    collected(
      registry,
      'counter',
      'marcopolo_marcod_view_lookups_total',
      'Marco and Request-For requests looked up in a warm view, by result: answered from the view, or by query because the view could not be sure.',
      ['result'],
      (sample) => {
        const w = warm();
        if (!w) return;
        sample({ result: 'view' }, w.stats.fromView);
        sample({ result: 'query' }, w.stats.notSure);
      },
    );
    collected(
      registry,
      'gauge',
      'marcopolo_marcod_grid_members',
      'Nodes in each grid marcod keeps a warm view of (views not yet complete are left out).',
      ['group'],
      (sample) => {
        for (const [group, size] of warm()?.members() ?? []) sample({ group }, size);
      },
    );
    addProcessMetrics(registry);
  }

  /** Records one request served (MarcodDeps.onServed). */
  readonly observe = (command: string, outcome: string, seconds: number): void => {
    this.latency.observe({ command, outcome }, seconds);
  };

  /** The server whose counters are read at each scrape. */
  attach(server: MarcodServer): void {
    this.server = server;
  }

  serve(address: MetricsAddress, logger: Logger): Promise<MetricsServer> {
    return serveMetrics(address, this.registry, logger);
  }
}
