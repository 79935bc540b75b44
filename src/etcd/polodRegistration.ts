/**
 * polod's side of the grid registry: which address it registers at and what it offers in each
 * group it serves (the same content as its announcements: node params, services, failing checks).
 * In a keyed grid the entries are signed with the group's signing key, and in a sealed one the
 * params are sealed as in its datagrams (docs/protocol.md §10.1).
 */
import type { RegistrySettings } from '../config/registryConfig.js';
import type { GroupPresence } from '../membership/presence.js';
import type { ServiceRegistry } from '../registry/registry.js';
import type { Transport } from '../transport/transport.js';
import type { Logger } from '../util/log.js';
import type { JsonObject } from '../protocol/json.js';
import type { AuthGate } from '../responder/authGate.js';
import type { NodeRecord } from './layout.js';
import { EtcdClient } from './client.js';
import { RegistryRegistration } from './registration.js';

/** What of the daemon the registration reads. */
export interface RegisteredDaemon {
  readonly settings: { readonly groups: readonly string[]; readonly port: number; readonly interfaces: readonly string[]; readonly nodeParams: JsonObject };
  readonly registry: ServiceRegistry;
  readonly presences: ReadonlyMap<string, GroupPresence>;
  /** The keys and policy of each keyed group. */
  readonly gates: ReadonlyMap<string, AuthGate>;
}

/** Registers every group the daemon serves. */
export function gridRegistration(
  settings: RegistrySettings,
  daemon: RegisteredDaemon,
  transport: Transport,
  logger: Logger,
): RegistryRegistration {
  return new RegistryRegistration({
    client: new EtcdClient(settings),
    // Read at each write: polod following its interfaces refreshes the registration on a change.
    address: () => registeredAddress(settings, daemon.settings.interfaces, transport),
    leaseSeconds: settings.leaseSeconds,
    changes: daemon.registry,
    logger: logger.child({ registry: settings.endpoints.join(',') }),
    grids: daemon.settings.groups.map((group) => {
      const gate = daemon.gates.get(group);
      const record = (): Omit<NodeRecord, 'rev'> => {
        const view = daemon.registry.view(group);
        const failing = daemon.registry.failingChecks(group);
        return {
          instance: daemon.presences.get(group)?.instance ?? '',
          params: daemon.settings.nodeParams,
          services: (view?.listing() ?? []).map((s) => ({ id: s.id, params: s.params })),
          ...(failing.length > 0 && { failing: [...failing] }),
        };
      };
      return {
        group,
        port: daemon.settings.port,
        record,
        ...(gate !== undefined && { signer: gate.keys[0] }),
        ...(gate?.sealer !== undefined && { seal: (params: JsonObject) => gate.sealParams(params) }),
      };
    }),
  });
}

/**
 * The address other subnets reach this node at: `registry_address`, else the first configured
 * interface, else the first address of the host that is not loopback.
 */
function registeredAddress(settings: RegistrySettings, interfaces: readonly string[], transport: Transport): string {
  if (settings.address !== undefined) return settings.address;
  if (interfaces[0] !== undefined) return interfaces[0];
  return transport.localAddresses().find((a) => !a.startsWith('127.')) ?? '127.0.0.1';
}
