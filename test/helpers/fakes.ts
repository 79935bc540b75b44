/** Fakes for component tests of the responder: an in-memory service folder tree and user database. */
import type { JsonObject } from '../../src/protocol/json.js';
import type { ServiceLoader, UserAccount, UserLookup } from '../../src/registry/ports.js';
import type { Service } from '../../src/registry/service.js';
import type { RemoteInfo } from '../../src/transport/transport.js';
import type { MemoryNetwork } from '../../src/transport/memory.js';

/** A file service as a loader would return it. */
export function fileService(id: string, params: JsonObject = {}, extra: Partial<Service> = {}): Service {
  return { id, params, disabled: false, permanent: true, origin: 'file', file: `/srv/${id}`, ...extra };
}

/** A service published at run time. */
export function publishedService(id: string, params: JsonObject = {}, extra: Partial<Service> = {}): Service {
  return { id, params, disabled: false, permanent: false, origin: 'published', ...extra };
}

/** Folders of services in memory; `loads` counts reads per folder. */
export class FakeFolders {
  readonly dirs = new Map<string, Service[]>();
  readonly loads = new Map<string, number>();

  readonly loader: ServiceLoader = async (dir) => {
    this.loads.set(dir, (this.loads.get(dir) ?? 0) + 1);
    return { services: [...(this.dirs.get(dir) ?? [])], warnings: [] };
  };
}

/** A user database of fixed accounts; `lookups` counts queries. */
export class FakeUsers implements UserLookup {
  lookups = 0;
  constructor(readonly accounts: UserAccount[]) {}

  async lookupName(name: string): Promise<UserAccount | undefined> {
    this.lookups++;
    return this.accounts.find((a) => a.name === name);
  }
}

/** Replies recorded by the memory network towards `to` (a client address and port), parsed. */
export function repliesTo(net: MemoryNetwork, to: RemoteInfo): Record<string, unknown>[] {
  return net.sent
    .filter((d) => d.to.address === to.address && d.to.port === to.port)
    .map((d) => JSON.parse(new TextDecoder().decode(d.data)) as Record<string, unknown>);
}

/** UTF-8 bytes of a string or of JSON. */
export function bytes(value: unknown): Uint8Array {
  return new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value));
}
