/**
 * The process metrics of both daemons: prom-client's defaults (memory, CPU, file descriptors,
 * event-loop lag, heap, GC), read at scrape time, less the three gauges whose `_total` names
 * Prometheus' own linter (`promtool check metrics`) rejects; the same counts stay available by
 * type as nodejs_active_handles, nodejs_active_requests and nodejs_active_resources.
 */
import { collectDefaultMetrics, type Registry } from 'prom-client';

const MISNAMED = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export function addProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  for (const name of MISNAMED) registry.removeSingleMetric(name);
}
