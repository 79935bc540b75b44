/**
 * polod's Prometheus metrics (docs/operations.md, "Metrics"). Every value is read at scrape time
 * from counters polod keeps anyway (each Polo's stats, src/responder/stats.ts; the publish API's
 * PublishCalls, src/publish/handler.ts) and from the live state (membership views, the service
 * registry): the query path makes no library call, so metrics cost nothing between scrapes.
 */
import { Registry } from 'prom-client';
import { collected, type Sample } from './collected.js';
import type { PoloDaemon } from '../daemon/poloDaemon.js';
import type { PublishCalls } from '../publish/handler.js';
import type { PoloStats } from '../responder/stats.js';
import type { Logger } from '../util/log.js';
import type { MetricsAddress } from './address.js';
import { addProcessMetrics } from './process.js';
import { serveMetrics, type MetricsServer } from './server.js';

/** What polod's metrics read. */
export interface PolodMetricsSources {
  readonly daemon: PoloDaemon;
  readonly publishCalls: PublishCalls;
}

/** A registry with polod's metrics, read from `sources` at each scrape. */
export function polodRegistry(sources: PolodMetricsSources): Registry {
  const registry = new Registry();
  const { daemon } = sources;
  const groups = (): Array<[string, PoloStats]> => daemon.polos.map((polo) => [polo.multicastGroup, polo.stats]);

  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[], read: (set: Sample<L>) => void): void =>
    collected(registry, 'counter', name, help, labelNames, read);
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[], read: (set: Sample<L>) => void): void =>
    collected(registry, 'gauge', name, help, labelNames, read);

  counter('marcopolo_polod_datagrams_received_total', 'Datagrams received on the group port, valid or not.', ['group'], (set) => {
    for (const [group, stats] of groups()) set({ group }, stats.received);
  });
  counter('marcopolo_polod_queries_received_total', 'Valid queries received, by command.', ['group', 'command'], (set) => {
    for (const [group, stats] of groups()) for (const [command, n] of Object.entries(stats.queries)) set({ group, command }, n);
  });
  counter('marcopolo_polod_queries_answered_total', 'Queries answered: replies handed to the socket, by the command of the query.', ['group', 'command'], (set) => {
    for (const [group, stats] of groups()) for (const [command, n] of Object.entries(stats.replies)) set({ group, command }, n);
  });
  counter('marcopolo_polod_queries_unanswered_total', 'Valid queries answered with silence (a service not offered, an unknown user).', ['group'], (set) => {
    for (const [group, stats] of groups()) set({ group }, stats.silent);
  });
  counter('marcopolo_polod_malformed_datagrams_total', 'Datagrams that were not valid queries, by reason.', ['group', 'reason'], (set) => {
    for (const [group, stats] of groups()) for (const [reason, n] of Object.entries(stats.malformed)) set({ group, reason }, n);
  });
  counter('marcopolo_polod_replies_sent_total', 'Replies the socket reported sent.', ['group'], (set) => {
    for (const [group, stats] of groups()) set({ group }, stats.answered);
  });
  counter('marcopolo_polod_reply_bytes_total', 'Bytes of the replies handed to the socket.', ['group'], (set) => {
    for (const [group, stats] of groups()) set({ group }, stats.replyBytes);
  });
  counter('marcopolo_polod_send_errors_total', 'Replies the socket failed to send.', ['group'], (set) => {
    for (const [group, stats] of groups()) set({ group }, stats.sendErrors);
  });
  counter('marcopolo_polod_replies_oversize_total', 'Replies not sent because they do not fit one datagram.', ['group'], (set) => {
    for (const [group, stats] of groups()) set({ group }, stats.oversize);
  });
  counter('marcopolo_polod_join_failures_total', 'Failed attempts to join the multicast group (each retry counts).', ['group'], (set) => {
    for (const [group, stats] of groups()) set({ group }, stats.joinFailures);
  });
  counter('marcopolo_polod_publish_requests_total', 'Publish API requests, by command and result (ok, refused, error).', ['command', 'result'], (set) => {
    for (const { command, result, n } of sources.publishCalls.counts.values()) set({ command, result }, n);
  });
  gauge('marcopolo_polod_grid_members', 'Nodes in the grid, this one included, from the live membership view.', ['group'], (set) => {
    for (const [group, presence] of daemon.presences) set({ group }, presence.view.nodes);
  });
  gauge('marcopolo_polod_services', 'Services this node offers in the group (root services and those of loaded users), as Services lists them.', ['group'], (set) => {
    for (const group of daemon.settings.groups) set({ group }, daemon.registry.view(group)?.listing().length ?? 0);
  });
  // Process metrics (memory, CPU, file descriptors, event loop lag), read at scrape time too.
  addProcessMetrics(registry);
  return registry;
}

/** Serves polod's metrics on `address` until stopped. */
export function startPolodMetrics(address: MetricsAddress, sources: PolodMetricsSources, logger: Logger): Promise<MetricsServer> {
  return serveMetrics(address, polodRegistry(sources), logger);
}
