/**
 * polod's composition root: one Polo per served group (each with its own service lists, as in
 * the reference), the unicast listeners, reload and stop. Signals and flags live in the CLI.
 */
import { GroupPresence } from '../membership/presence.js';
import type { PresenceTiming } from '../membership/timing.js';
import type { JsonObject } from '../protocol/json.js';
import { ServiceChangeEmitter } from '../registry/events.js';
import { DEFAULT_JOIN_RETRY, Polo } from '../responder/polo.js';
import type { ServiceLoader, UserLookup } from '../responder/ports.js';
import { servedIn, type Service } from '../responder/service.js';
import { sharedLoader } from '../responder/sharedLoader.js';
import { UnicastResponder } from '../responder/unicast.js';
import type { DatagramSocket, Transport } from '../transport/transport.js';
import { UdpTransport } from '../transport/udp.js';
import type { Logger } from '../util/log.js';

/** What the daemon needs of the configuration (see src/config/poloConfig.ts). */
export interface PoloDaemonSettings {
  readonly groups: readonly string[];
  readonly port: number;
  readonly interfaces: readonly string[];
  readonly nodeParams: JsonObject;
  readonly servicesDir: string;
  readonly userDir: string;
  readonly verifyRegexp: RegExp;
  readonly ttl: number;
  readonly joinRetries: number;
}

/** Everything polod runs, started and stopped as one. */
export class PoloDaemon {
  /** One responder per group, in configuration order. */
  readonly polos: Polo[];
  /** Root services per group (the lists the Polo instances share by reference). */
  readonly offeredServices = new Map<string, Service[]>();
  /** User services per group and user. */
  readonly userServices = new Map<string, Map<string, Service[]>>();
  private readonly unicastSockets: DatagramSocket[] = [];
  private readonly pendingUnicast = new Set<string>();
  private unicast: UnicastResponder | undefined;
  private unicastAttempts = 0;
  private unicastTimer: NodeJS.Timeout | undefined;
  private readonly transport: Transport;
  /** Live discovery: one presence per group (announcements, membership view, Members hint). */
  readonly presences = new Map<string, GroupPresence>();
  /**
   * Service changes per group. Fired after every reload and publish-API change (they all run
   * through `exclusive`); the service registry takes this role over (src/registry/events.ts).
   */
  readonly serviceChanges = new ServiceChangeEmitter();
  private stopped = false;
  /** Tail of the queue of `exclusive` tasks. */
  private exclusiveTail: Promise<void> = Promise.resolve();

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
    const loadServices = sharedLoader(deps.loadServices);
    this.polos = settings.groups.map((group) => {
      const offered: Service[] = [];
      const users = new Map<string, Service[]>();
      this.offeredServices.set(group, offered);
      this.userServices.set(group, users);
      const presence = new GroupPresence({
        transport: this.transport,
        group,
        port: settings.port,
        interfaces: settings.interfaces,
        ttl: settings.ttl,
        nodeParams: settings.nodeParams,
        services: () => this.servicesOf(group),
        changes: this.serviceChanges,
        logger: deps.logger,
        ...(deps.presenceTiming === undefined ? {} : { timing: deps.presenceTiming }),
      });
      this.presences.set(group, presence);
      return new Polo({
        offeredServices: offered,
        userServices: users,
        multicastGroup: group,
        verifyRegexp: settings.verifyRegexp,
        transport: this.transport,
        port: settings.port,
        interfaces: settings.interfaces,
        ttl: settings.ttl,
        nodeParams: settings.nodeParams,
        servicesDir: settings.servicesDir,
        userDirName: settings.userDir,
        loadServices,
        users: deps.users,
        joinRetry: { ...DEFAULT_JOIN_RETRY, retries: settings.joinRetries },
        logger: deps.logger,
        // Live discovery (src/membership/presence.ts): the Members hint and the group's announcements.
        poloReply: () => presence.poloReply(),
        tap: presence.tap,
      });
    });
  }

  /** The services offered in `group` (root, then loaded users' as `user:id`), as announced. */
  private servicesOf(group: string): Array<{ id: string; params: JsonObject }> {
    const list = (this.offeredServices.get(group) ?? []).filter((s) => servedIn(s, group));
    const out = list.map((s) => ({ id: s.id, params: s.params }));
    for (const [user, services] of this.userServices.get(group) ?? []) {
      for (const s of services) if (servedIn(s, group)) out.push({ id: `${user}:${s.id}`, params: s.params });
    }
    return out;
  }

  /**
   * Starts every group, then the unicast listeners (on the configured interfaces, or on every
   * local IPv4 address). A group whose join fails keeps retrying while the others serve.
   */
  async start(): Promise<void> {
    // Concurrently: the groups' first loads of the same folders share one read (sharedLoader).
    await Promise.all(this.polos.map((polo) => polo.startProtocol()));
    this.unicast = new UnicastResponder(this.polos, this.deps.logger);
    const addresses = this.settings.interfaces.length > 0 ? this.settings.interfaces : this.transport.localAddresses();
    for (const address of new Set(addresses)) this.pendingUnicast.add(address);
    await this.bindPendingUnicast();
    // Live discovery once the responders answer: a node that announces itself can be asked.
    await Promise.all([...this.presences.values()].map((p) => p.start()));
    this.deps.logger.info(
      { groups: this.settings.groups, port: this.settings.port, unicast: this.unicastSockets.length },
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
          void unicast.datagramReceived(data, from, (bytes, to) => socket.send(bytes, to.port, to.address));
        });
        if (this.stopped) {
          await socket.close();
          return;
        }
        this.unicastSockets.push(socket);
        this.pendingUnicast.delete(address);
        if (this.unicastAttempts > 0) this.deps.logger.info({ address }, 'unicast listener bound');
      } catch (err) {
        if (this.unicastAttempts === 0) {
          this.deps.logger.warn({ address, err: (err as Error).message }, 'no unicast listener on this address yet; will retry');
        }
      }
    }
    if (this.pendingUnicast.size === 0) return;
    const { initialMs, maxMs, retries } = DEFAULT_JOIN_RETRY;
    const limit = this.settings.joinRetries >= 0 ? this.settings.joinRetries : retries;
    this.unicastAttempts++;
    if (limit >= 0 && this.unicastAttempts > limit) return;
    const delay = Math.min(maxMs, initialMs * 2 ** (this.unicastAttempts - 1));
    this.unicastTimer = setTimeout(() => void this.bindPendingUnicast(), delay);
    this.unicastTimer.unref();
  }

  /**
   * Runs `task` alone: reloads and changes by the publish API (src/publish/store.ts)
   * queue here. A reload reads the folders, then swaps the lists; a permanent publish landing
   * in between would be dropped from memory by the swap, though acknowledged and on disk.
   */
  exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.exclusiveTail.then(task).finally(() => {
      for (const group of this.settings.groups) this.serviceChanges.emit({ group });
    });
    this.exclusiveTail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Re-reads every service folder; services published at run time are kept (SIGUSR1/SIGHUP). */
  async reload(): Promise<void> {
    await this.exclusive(() => Promise.all(this.polos.map((p) => p.reloadServices())));
    this.deps.logger.info(
      { services: Object.fromEntries([...this.offeredServices].map(([g, list]) => [g, list.length])) },
      'services reloaded',
    );
  }

  /** Stops every socket. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.unicastTimer);
    // Goodbyes first, while the responders still answer: watchers see the node leave at once.
    await Promise.all([...this.presences.values()].map((p) => p.stop()));
    await Promise.all([...this.polos.map((p) => p.stop()), ...this.unicastSockets.map((s) => s.close())]);
  }
}
