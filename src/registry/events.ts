/**
 * The one thing live discovery needs of the service registry: to hear that the services of a
 * group changed (added, changed, removed, enabled, disabled, whatever the cause). The announcer
 * (src/membership/presence.ts) depends on this interface only, never on the service lists.
 */

/** A change of the services offered in one group. */
export interface ServiceChange {
  readonly group: string;
}

/** Something that reports service changes; `onChange` returns the unsubscribe function. */
export interface ServiceChangeSource {
  onChange(listener: (change: ServiceChange) => void): () => void;
}

/** A minimal ServiceChangeSource: the owner calls `emit` after each change. */
export class ServiceChangeEmitter implements ServiceChangeSource {
  private readonly listeners = new Set<(change: ServiceChange) => void>();

  onChange(listener: (change: ServiceChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(change: ServiceChange): void {
    for (const listener of [...this.listeners]) listener(change);
  }
}
