/**
 * The setting of the grid-registry tests: two namespace LANs joined by a router that forwards
 * unicast only (subnets.ts), and an etcd cluster on some of their hosts (etcd.ts). Named after
 * `name`: LANs `<name>a` and `<name>b`, router `<name>rt`. The cluster and the router are
 * destroyed after the test file, the LANs by their fixtures.
 */
import assert from 'node:assert/strict';
import { after } from 'node:test';
import { etcdAvailable, startEtcdCluster, type EtcdCluster } from './etcd.js';
import { lanFixture, type LanFixture } from './lan-daemons.js';
import type { Lan, LanHost } from './netns.js';
import { joinLans } from './subnets.js';
import type { TestPki } from './test-pki.js';

export interface RegistrySubnets {
  readonly lanA: LanFixture;
  readonly lanB: LanFixture;
  /** Both LANs, joined by the router (made at the first call). */
  lans(): Promise<[Lan, Lan]>;
  /** Starts etcd on `members` (failing when etcd is not installed) and waits until every member is healthy, asked from `from`. */
  etcd(members: readonly LanHost[], opts: { token: string; tls?: TestPki }, from: LanHost): Promise<EtcdCluster>;
}

export function registrySubnets(name: string, a: { hosts: number; subnet: number }, b: { hosts: number; subnet: number }): RegistrySubnets {
  const lanA = lanFixture({ name: `${name}a`, ...a });
  const lanB = lanFixture({ name: `${name}b`, ...b });
  let joined: Promise<[Lan, Lan]> | undefined;
  let destroyRouter: (() => void) | undefined;
  let cluster: EtcdCluster | undefined;
  after(async () => {
    await cluster?.destroy();
    destroyRouter?.();
  });
  return {
    lanA,
    lanB,
    lans: () =>
      (joined ??= (async () => {
        const [A, B] = await Promise.all([lanA.lan(), lanB.lan()]);
        destroyRouter = (await joinLans(`${name}rt`, A, B)).destroy;
        return [A, B];
      })()),
    async etcd(members, opts, from) {
      assert.ok(etcdAvailable(), 'etcd is not installed: run scripts/install-test-deps.sh (Debian package etcd-server)');
      cluster = await startEtcdCluster(members, opts);
      await cluster.waitHealthy(from);
      return cluster;
    },
  };
}
