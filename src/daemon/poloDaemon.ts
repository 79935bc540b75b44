/**
 * polod's composition root: the service registry (one owner of every group's service lists,
 * each group with its own lists as in the reference), one Polo per served group answering from
 * it, the unicast listeners, reload and stop. Signals and flags live in the CLI.
 */
import { ClosedError } from '../errors.js';
import type { JsonObject } from '../protocol/json.js';
import type { ServiceLoader, UserLookup } from '../registry/ports.js';
import { HealthMonitor } from '../health/monitor.js';
import { GroupPresence } from '../membership/presence.js';
import type { PresenceTiming } from '../membership/timing.js';
import { ServiceRegistry } from '../registry/registry.js';
import { UserRecord } from '../registry/userRecord.js';
import { DEFAULT_JOIN_RETRY, Polo } from '../responder/polo.js';
import { UnicastResponder } from '../responder/unicast.js';
import { Guard, type GuardSettings } from '../responder/guard.js';
import { AuthGate } from '../responder/authGate.js';
import { AUTH_RESERVE_BYTES, ReplayCache, type GridKey } from '../auth/gridAuth.js';
import { allKeys, keysOfGroup, type AuthSettings } from '../config/authConfig.js';
import { MAX_DATAGRAM } from '../protocol/limits.js';
import type { DatagramSocket, Transport } from '../transport/transport.js';
import { UdpTransport } from '../transport/udp.js';
import { DEFAULT_INTERFACE_POLL_MS, InterfaceWatcher, joinAddress, type NetInterface } from '../transport/interfaces.js';
import type { Logger } from '../util/log.js';
import { backoffDelay } from '../util/backoff.js';
import type { RegistrySettings } from '../config/registryConfig.js';
import { gridRegistration } from '../etcd/polodRegistration.js';
import { listedInterfaces, withZone } from '../membership/links.js';
import type { RegistryRegistration } from '../etcd/registration.js';

/** Where an interface's unicast listeners bind: each address, a link-local one with its zone. */
function unicastAddresses(iface: NetInterface): string[] {
  return [...iface.ipv4.map((a) => a.address), ...ipv6Addresses(iface)];
}

/** An interface's IPv6 addresses as listeners bind them: a link-local one with its zone. */
function ipv6Addresses(iface: NetInterface): string[] {
  return iface.ipv6.map((a) => withZone(a, iface.name));
}

/** What the daemon needs of the configuration (see src/config/poloConfig.ts). */
export interface PoloDaemonSettings {
  readonly groups: readonly string[];
  readonly port: number;
  /** Interface addresses to serve; empty = every multicast interface, followed as they change. */
  readonly interfaces: readonly string[];
  /** How often the interface list is read when following every interface (ms). */
  readonly interfacePollMs?: number;
  readonly nodeParams: JsonObject;
  readonly servicesDir: string;
  readonly userDir: string;
  readonly verifyRegexp: RegExp;
  readonly ttl: number;
  readonly joinRetries: number;
  /** Abuse limits (src/responder/guard.ts); unset fields take their defaults. */
  readonly guard?: Partial<GuardSettings>;
  /** Grid keys and policy (src/config/authConfig.ts); undefined = an unkeyed grid. */
  readonly auth?: AuthSettings;
  /**
   * The record of users with service files (src/registry/userRecord.ts): their services are
   * loaded at start. Undefined = none (users are loaded at their first query, as the reference).
   */
  readonly usersFile?: string;
  /** The grid registry (etcd) polod registers in; undefined = LAN only. */
  readonly registry?: RegistrySettings;
}

/** Everything polod runs, started and stopped as one. */
export class PoloDaemon {
  /** The one owner of the services of every group. */
  readonly registry: ServiceRegistry;
  /** Users with service files, loaded at start. */
  private readonly userRecord: UserRecord | undefined;
  /** Runs the services' health checks. */
  readonly health: HealthMonitor;
  /** One responder per group, in configuration order. */
  readonly polos: Polo[];
  /** Unicast listeners by local address. */
  private readonly unicastSockets = new Map<string, DatagramSocket>();
  /** True when no interface is configured: every multicast interface is served and followed. */
  private readonly follow: boolean;
  private watcher: InterfaceWatcher | undefined;
  private readonly pendingUnicast = new Set<string>();
  private unicast: UnicastResponder | undefined;
  private unicastAttempts = 0;
  private unicastTimer: NodeJS.Timeout | undefined;
  private readonly transport: Transport;
  /** Authentication of the unicast port (every key of the node), in a keyed daemon. */
  private readonly unicastAuth: AuthGate | undefined;
  /** The abuse limits every responder of this daemon shares. */
  readonly guard: Guard;
  /** Live discovery: one presence per group (announcements, membership view, Members hint). */
  readonly presences = new Map<string, GroupPresence>();
  /** The keys and policy of each keyed group (its datagrams and its registry entries). */
  readonly gates = new Map<string, AuthGate>();
  /** polod's entry in the grid registry, when one is configured (src/etcd/polodRegistration.ts). */
  private registration: RegistryRegistration | undefined;
  private state: 'new' | 'starting' | 'started' | 'stopped' = 'new';
  private starting: Promise<void> | undefined;

  constructor(
    readonly settings: PoloDaemonSettings,
    private readonly deps: {
      logger: Logger;
      loadServices: ServiceLoader;
      users: UserLookup;
      transport?: Transport;
      presenceTiming?: PresenceTiming;
    },
  ) {
    this.transport = deps.transport ?? new UdpTransport();
    this.follow = settings.interfaces.length === 0;
    this.guard = new Guard(deps.logger, settings.guard, {
      ...(this.transport.localNetworks && { networks: () => this.transport.localNetworks?.() ?? [] }),
    });
    this.userRecord = settings.usersFile === undefined ? undefined : new UserRecord(settings.usersFile, { logger: deps.logger });
    this.registry = new ServiceRegistry({
      groups: settings.groups,
      servicesDir: settings.servicesDir,
      userDirName: settings.userDir,
      verifyRegexp: settings.verifyRegexp,
      loadServices: deps.loadServices,
      users: deps.users,
      logger: deps.logger,
      ...(this.userRecord ? { userRecord: this.userRecord } : {}),
    });
    const auth = settings.auth;
    const policy = auth?.policy === 'off' ? undefined : auth?.policy;
    const replay = new ReplayCache();
    const gate = (keys: readonly GridKey[]): AuthGate | undefined =>
      policy === undefined || keys.length === 0 ? undefined : new AuthGate(policy, keys, replay);
    this.unicastAuth = auth && gate(allKeys(auth));
    // Signed replies carry up to AUTH_RESERVE_BYTES more: Services lists are cut to leave room.
    const replyLimit = this.unicastAuth ? MAX_DATAGRAM - AUTH_RESERVE_BYTES : MAX_DATAGRAM;
    this.health = new HealthMonitor(this.registry, { logger: deps.logger });
    this.polos = settings.groups.map((group) => {
      const groupAuth = auth && gate(keysOfGroup(auth, group));
      if (groupAuth !== undefined) this.gates.set(group, groupAuth);
      const view = this.registry.view(group);
      const presence = new GroupPresence({
        transport: this.transport,
        group,
        port: settings.port,
        interfaces: settings.interfaces,
        managedInterfaces: this.follow,
        ttl: settings.ttl,
        nodeParams: settings.nodeParams,
        // What the group offers, as Services lists it (root, then loaded users' as user:id).
        services: () => [...(view?.listing() ?? [])],
        failing: () => this.registry.failingChecks(group),
        changes: this.registry,
        logger: deps.logger,
        ...(deps.presenceTiming === undefined ? {} : { timing: deps.presenceTiming }),
        ...(groupAuth && { auth: groupAuth }),
      });
      this.presences.set(group, presence);
      return new Polo({
        registry: this.registry,
        multicastGroup: group,
        transport: this.transport,
        port: settings.port,
        interfaces: settings.interfaces,
        managedInterfaces: this.follow,
        ttl: settings.ttl,
        nodeParams: settings.nodeParams,
        joinRetry: { ...DEFAULT_JOIN_RETRY, retries: settings.joinRetries },
        logger: deps.logger,
        guard: this.guard,
        replyLimit,
        ...(groupAuth && { auth: groupAuth }),
        // Live discovery (src/membership/presence.ts): the Members hint and the group's announcements.
        poloReply: (to, scope) => presence.poloReply(to, scope),
        providersHint: (id, to, scope) => presence.providersHint(id, to, scope),
        tap: presence.tap,
      });
    });
  }

  /**
   * Starts every group, then the unicast listeners (on the configured interfaces, or on every
   * local IPv4 address). A group whose join fails keeps retrying while the others serve.
   */
  start(): Promise<void> {
    if (this.state === 'stopped') return Promise.reject(new ClosedError('PoloDaemon'));
    this.starting ??= this.startOnce();
    return this.starting;
  }

  private async startOnce(): Promise<void> {
    this.state = 'starting';
    // Each folder is read once for every group; then the groups start answering from it.
    await this.registry.reload();
    // Users known to have service files: listed and answered from the start, not from their
    // first query (their permanent services were acknowledged; they are offered at once).
    const known = (await this.userRecord?.load()) ?? [];
    await Promise.all(known.map((user) => this.registry.loadUser(user)));
    await this.health.start();
    // Every interface: the first reading lists the interfaces the groups join at start.
    if (this.follow) this.followInterfaces();
    await Promise.all(this.polos.map((polo) => polo.startProtocol()));
    if (this.stopped) return;
    this.state = 'started';
    this.unicast = new UnicastResponder(this.polos, this.registry, this.settings.nodeParams, this.guard, this.unicastAuth);
    const listed = this.settings.interfaces;
    // Listed interfaces: their IPv6 addresses too, where the twin is served (docs/protocol.md §9).
    const addresses =
      listed.length > 0 ? [...listed, ...listedInterfaces(this.transport.interfaces?.() ?? [], listed).flatMap(ipv6Addresses)] : this.transport.localAddresses();
    for (const address of new Set(addresses)) this.pendingUnicast.add(address);
    await this.bindPendingUnicast();
    // Live discovery once the responders answer: a node that announces itself can be asked.
    await Promise.all([...this.presences.values()].map((p) => p.start()));
    if (this.settings.registry !== undefined && !this.stopped) {
      // Keyed groups too: their entries are signed, and sealed where their datagrams are (§10.1).
      this.registration = gridRegistration(this.settings.registry, this, this.transport, this.deps.logger);
      this.registration.start();
    }
    this.deps.logger.info(
      { groups: this.settings.groups, port: this.settings.port, unicast: this.unicastSockets.size, replySpreadMs: this.guard.spreadMs, auth: this.unicastAuth?.policy ?? 'off' },
      'polod started',
    );
  }

  /**
   * Binds the unicast listeners still missing. An interface address that is not there yet (the
   * same situation as a failed group join) is retried with the join back-off, so Services by
   * unicast starts working when the address appears.
   */
  private async bindPendingUnicast(): Promise<void> {
    const unicast = this.unicast;
    if (!unicast || this.stopped) return;
    for (const address of [...this.pendingUnicast]) {
      try {
        const socket = await this.transport.bindUnicast(address, this.settings.port, (data, from) => {
          void unicast.datagramReceived(data, from, (bytes, to) => socket.send(bytes, to.port, to.address), address);
        });
        if (this.stopped) {
          await socket.close();
          return;
        }
        this.unicastSockets.get(address)?.close().catch(() => undefined);
        this.unicastSockets.set(address, socket);
        this.pendingUnicast.delete(address);
        if (this.unicastAttempts > 0 && !address.includes(':')) this.deps.logger.info({ address }, 'unicast listener bound');
        else if (this.unicastAttempts > 0) this.deps.logger.debug({ address }, 'unicast listener bound');
      } catch (err) {
        if (this.unicastAttempts === 0) {
          // A new IPv6 address is unusable until duplicate address detection ends (a second or
          // two): expected, so not a warning.
          const level = address.includes(':') ? 'debug' : 'warn';
          this.deps.logger[level]({ address, err: (err as Error).message }, 'no unicast listener on this address yet; will retry');
        }
      }
    }
    if (this.pendingUnicast.size === 0 || this.unicastTimer !== undefined) return;
    const limit = this.settings.joinRetries >= 0 ? this.settings.joinRetries : DEFAULT_JOIN_RETRY.retries;
    this.unicastAttempts++;
    if (limit >= 0 && this.unicastAttempts > limit) return;
    const delay = backoffDelay(this.unicastAttempts, DEFAULT_JOIN_RETRY);
    this.unicastTimer = setTimeout(() => {
      this.unicastTimer = undefined;
      void this.bindPendingUnicast();
    }, delay);
    this.unicastTimer.unref();
  }

  /**
   * Serves every up, multicast-capable, non-loopback interface and follows the list (polled:
   * src/transport/interfaces.ts): a new interface or address is joined, announced on and
   * listened on; a vanished one is left. A host with none yet waits for one.
   */
  private followInterfaces(): void {
    this.watcher = new InterfaceWatcher({
      intervalMs: this.settings.interfacePollMs ?? DEFAULT_INTERFACE_POLL_MS,
      ...(this.transport.interfaces && { list: () => this.transport.interfaces?.() ?? [] }),
      onChange: (now, before) => {
        // Called from a timer: a failure here must be logged, never crash the daemon.
        try {
          this.interfacesChanged(now, before);
        } catch (err) {
          this.deps.logger.error({ err }, 'following the interfaces failed; will try at the next change');
        }
      },
    });
    this.watcher.start();
  }

  private interfacesChanged(now: readonly NetInterface[], before: readonly NetInterface[]): void {
    if (this.stopped) return;
    const log = this.deps.logger;
    const joins = now.map(joinAddress).filter((a): a is string => a !== undefined);
    if (now.length === 0) log.warn('no multicast interface is up (loopback is not served); waiting for one');
    else log.info({ interfaces: now.map((i) => ({ name: i.name, ipv4: i.ipv4.map((a) => a.address), ipv6: i.ipv6 })) }, 'serving interfaces');
    // IPv6 (each group's twin, or an IPv6 group) on every interface with an IPv6 address.
    const names6 = now.filter((i) => i.ipv6.length > 0).map((i) => i.name);
    for (const polo of this.polos) polo.setInterfaces(joins, names6);
    for (const presence of this.presences.values()) presence.setInterfaces(now);
    // The address registered in the grid registry may be the one that changed.
    this.registration?.refresh();
    // Unicast listeners follow the interfaces' addresses, IPv6 ones included (loopback's, bound
    // at start, stay).
    const addresses = (list: readonly NetInterface[]): Set<string> => new Set(list.flatMap(unicastAddresses));
    const was = addresses(before);
    const is = addresses(now);
    for (const address of was) {
      if (is.has(address)) continue;
      this.pendingUnicast.delete(address);
      const socket = this.unicastSockets.get(address);
      this.unicastSockets.delete(address);
      void socket?.close();
    }
    let added = false;
    for (const address of is) {
      if (was.has(address) || this.unicastSockets.has(address)) continue;
      this.pendingUnicast.add(address);
      added = true;
    }
    if (added && this.unicast) {
      this.unicastAttempts = 0;
      clearTimeout(this.unicastTimer);
      this.unicastTimer = undefined;
      void this.bindPendingUnicast();
    }
  }

  /** True once stopped (a method, so checks after an await are not narrowed away). */
  private get stopped(): boolean {
    return this.state === 'stopped';
  }

  /** Re-reads every service folder; services published at run time are kept (SIGUSR1/SIGHUP). */
  async reload(): Promise<void> {
    if (this.stopped) throw new ClosedError('PoloDaemon');
    await this.registry.reload();
    this.deps.logger.info(
      { services: Object.fromEntries(this.settings.groups.map((g) => [g, this.registry.rootServices(g).length])) },
      'services reloaded',
    );
  }

  /** Stops every socket. Idempotent. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    this.guard.close();
    this.watcher?.stop();
    clearTimeout(this.unicastTimer);
    // Goodbyes first, while the responders still answer: watchers see the node leave at once.
    await Promise.all([...[...this.presences.values()].map((p) => p.stop()), this.registration?.stop()]);
    this.registry.close();
    await this.health.stop();
    await Promise.all([...this.polos.map((p) => p.stop()), ...[...this.unicastSockets.values()].map((s) => s.close())]);
  }
}
