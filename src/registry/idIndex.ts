/**
 * An index by id over a live service list, so Request-For is O(1) with 10,000 services. The
 * lists are shared by reference (the seed's contract: modified in place, never replaced), so the
 * index must follow changes it did not make: the registry drops it on every change of its own,
 * and a lookup rebuilds it when the list's length moved or an indexed slot holds another service
 * (someone outside the registry changed the list in place). Rebuilding is O(n), once per change.
 */
import type { Service } from './service.js';

interface Entry {
  /** The list's length when indexed. */
  readonly length: number;
  /** Enabled services by id, with their slot: the first of each id wins, as the answer rule says. */
  readonly byId: Map<string, { readonly service: Service; readonly slot: number }>;
}

/** Indexes of many lists, built on demand and held weakly (a dropped list frees its index). */
export class IdIndex {
  private readonly entries = new WeakMap<readonly Service[], Entry>();

  /** The first enabled service with `id` in `list`, or undefined. */
  find(list: readonly Service[], id: string): Service | undefined {
    let entry = this.entries.get(list);
    if (!entry || entry.length !== list.length) entry = this.build(list);
    const hit = entry.byId.get(id);
    if (hit === undefined) return undefined;
    if (list[hit.slot] === hit.service) return hit.service;
    return this.build(list).byId.get(id)?.service;
  }

  /** Forgets the index of `list` after a change. */
  invalidate(list: readonly Service[]): void {
    this.entries.delete(list);
  }

  private build(list: readonly Service[]): Entry {
    const byId = new Map<string, { service: Service; slot: number }>();
    list.forEach((service, slot) => {
      if (!service.disabled && !byId.has(service.id)) byId.set(service.id, { service, slot });
    });
    const entry = { length: list.length, byId };
    this.entries.set(list, entry);
    return entry;
  }
}
