/**
 * A whole polod (PoloDaemon) on a memory network, for component tests: group 224.0.0.112, port
 * 1337, fast live-discovery timing, root services from a fake folder, optionally a grid key.
 */
import type { GridKey } from '../../src/auth/gridAuth.js';
import { PoloDaemon, type PoloDaemonSettings } from '../../src/daemon/poloDaemon.js';
import { FAST_TIMING } from '../../src/membership/timing.js';
import type { Service } from '../../src/registry/service.js';
import { DEFAULT_VERIFY_REGEXP } from '../../src/responder/polo.js';
import type { MemoryNetwork } from '../../src/transport/memory.js';
import { silentLogger } from '../../src/util/log.js';
import { FakeFolders, FakeUsers } from './fakes.js';

const MEMORY_GROUP = '224.0.0.112';

/** The settings of such a polod on `hostname` (its node params name it). */
function memoryPolodSettings(hostname: string, key?: GridKey): PoloDaemonSettings {
  return {
    groups: [MEMORY_GROUP],
    port: 1337,
    interfaces: [],
    nodeParams: { hostname },
    servicesDir: '/etc/services',
    userDir: '.polo',
    verifyRegexp: DEFAULT_VERIFY_REGEXP,
    ttl: 1,
    joinRetries: -1,
    ...(key && { auth: { policy: 'required', keys: [key], groupKeys: new Map() } }),
  };
}

/** Starts one on the new host `address` of `net` (the caller stops it). */
export async function startMemoryPolod(net: MemoryNetwork, address: string, opts: { services?: readonly Service[]; key?: GridKey } = {}): Promise<PoloDaemon> {
  const folders = new FakeFolders();
  folders.dirs.set('/etc/services', [...(opts.services ?? [])]);
  const d = new PoloDaemon(memoryPolodSettings(address, opts.key), {
    logger: silentLogger,
    loadServices: folders.loader,
    users: new FakeUsers([]),
    transport: net.host(address),
    presenceTiming: FAST_TIMING,
  });
  await d.start();
  return d;
}
