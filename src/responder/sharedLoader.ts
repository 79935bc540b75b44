/**
 * polod runs one Polo per group, and each reloads the same folders: without sharing, a reload
 * with N groups read every service file N times. This wraps a ServiceLoader so that calls for
 * the same folder made while a read is in flight share that read. Warnings go to the first
 * caller only, so each skipped file is reported once.
 */
import type { ServiceLoader } from './ports.js';

/** A loader that shares in-flight reads of the same folder and options. */
export function sharedLoader(load: ServiceLoader): ServiceLoader {
  const inFlight = new Map<string, ReturnType<ServiceLoader>>();
  return (dir, options) => {
    const key = JSON.stringify([dir, options.userService, options.owner ?? null, options.missingOk ?? false]);
    const running = inFlight.get(key);
    if (running) return running.then(({ services }) => ({ services, warnings: [] }));
    const read = load(dir, options).finally(() => inFlight.delete(key));
    inFlight.set(key, read);
    return read;
  };
}
