/**
 * Change events of the service registry: one per service and group, whatever the cause, so
 * announcements, watchers and metrics follow the services without polling.
 */
import type { JsonObject } from '../protocol/json.js';

/** What happened to a service in a group. */
export type ServiceChangeKind =
  /** Now offered, and neither offered nor disabled before. */
  | 'added'
  /** Still offered, with other params. */
  | 'changed'
  /** No longer offered, and gone. */
  | 'removed'
  /** Offered again after being disabled (file `disabled`, or a health check passing again). */
  | 'enabled'
  /** No longer offered, but still known (file `disabled: true`, or a failing health check). */
  | 'disabled';

/** Why it happened. */
export type ServiceChangeCause =
  /** A service folder was read (start, reload, or a user's first load). */
  | 'file'
  /** The publish API published it. */
  | 'publish'
  /** The publish API unpublished it. */
  | 'unpublish'
  /** The program that held its session ended. */
  | 'session'
  /** Its health check changed state. */
  | 'check';

/** One change of one service in one group. */
export interface ServiceChange {
  readonly kind: ServiceChangeKind;
  /** The multicast group whose service list changed. */
  readonly group: string;
  /** The wire id (`web`, or `alice:web` for a user service). */
  readonly id: string;
  /** The params offered now; absent when the service is no longer offered. */
  readonly params?: JsonObject;
  readonly cause: ServiceChangeCause;
}

/** Anything that reports changes of the services per group. */
export interface ServiceChangeSource {
  /** Calls `listener` after every change; returns the function that unsubscribes it. */
  onChange(listener: (change: ServiceChange) => void): () => void;
}
