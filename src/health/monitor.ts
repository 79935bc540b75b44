/**
 * Runs the health checks of every checked service in the registry and tells the registry the
 * outcome: a service is offered once its check passes, withdrawn after `failures` consecutive
 * failures, and offered again at the first pass after that (so within one interval).
 *
 * It follows every change of the registry's lists, so checks start and stop with their services
 * whatever the cause (files, reloads, the publish API, sessions).
 */
import { ClosedError } from '../errors.js';
import type { ServiceRegistry } from '../registry/registry.js';
import { wireId } from '../registry/userId.js';
import { silentLogger, type Logger } from '../util/log.js';
import type { Startable } from '../util/lifecycle.js';
import type { HealthCheck } from './check.js';
import { probe } from './probe.js';

/** What a check reports: `pending` until its first run ends. */
export type CheckState = 'pending' | 'passing' | 'failing';

/** The state of one running check, for listings (`polo list`). */
export interface CheckStatus {
  readonly target: string;
  readonly state: CheckState;
  /** Consecutive failures so far. */
  readonly failures: number;
}

/** Runs a probe; a seam for tests. */
export type Prober = (check: HealthCheck, timeoutMs: number) => Promise<boolean>;

interface Running {
  readonly id: string;
  readonly user: string | undefined;
  readonly check: HealthCheck;
  state: CheckState;
  failures: number;
  timer: NodeJS.Timeout | undefined;
  stopped: boolean;
}

/** The health checks of one polod. */
export class HealthMonitor implements Startable {
  private readonly running = new Map<string, Running>();
  private readonly log: Logger;
  private readonly probe: Prober;
  private unsubscribe: (() => void) | undefined;
  private syncQueued = false;
  private state: 'new' | 'started' | 'stopped' = 'new';

  constructor(
    private readonly registry: ServiceRegistry,
    options: { logger?: Logger; probe?: Prober } = {},
  ) {
    this.log = options.logger ?? silentLogger;
    this.probe = options.probe ?? probe;
  }

  async start(): Promise<void> {
    if (this.state === 'stopped') throw new ClosedError('HealthMonitor');
    if (this.state === 'started') return;
    this.state = 'started';
    // One sync per burst of changes: a reload of 10,000 services is one pass, not 10,000.
    this.unsubscribe = this.registry.onListChange(() => {
      if (this.syncQueued) return;
      this.syncQueued = true;
      queueMicrotask(() => {
        this.syncQueued = false;
        this.sync();
      });
    });
    this.sync();
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    this.unsubscribe?.();
    for (const run of this.running.values()) this.halt(run);
    this.running.clear();
  }

  /** The status of the check of `id` (bare for a user's), if it has one. */
  status(id: string, user: string | undefined): CheckStatus | undefined {
    const run = this.running.get(wireId(id, user));
    return run && { target: run.check.target, state: run.state, failures: run.failures };
  }

  /**
   * Starts the checks of services that appeared (or whose check changed) and stops those of
   * services that are gone. Cheap when nothing changed: one pass over the checked services.
   */
  sync(): void {
    if (this.state !== 'started') return;
    const wanted = new Map<string, { id: string; user: string | undefined; check: HealthCheck }>();
    for (const { service, user } of this.registry.checkedServices()) {
      if (service.check) wanted.set(wireId(service.id, user), { id: service.id, user, check: service.check });
    }
    for (const [key, run] of this.running) {
      const next = wanted.get(key);
      if (next && sameCheck(next.check, run.check)) continue;
      this.halt(run);
      this.running.delete(key);
      if (!next) this.registry.forgetHealth(run.id, run.user);
    }
    for (const [key, { id, user, check }] of wanted) {
      if (this.running.has(key)) continue;
      const run: Running = { id, user, check, state: 'pending', failures: 0, timer: undefined, stopped: false };
      this.running.set(key, run);
      void this.runOnce(run);
    }
  }

  private async runOnce(run: Running): Promise<void> {
    // A probe never outlives its interval, and never takes longer than 10 s.
    const passed = await this.probe(run.check, Math.min(run.check.intervalMs, 10_000));
    if (run.stopped) return;
    const before = run.state;
    if (passed) {
      run.failures = 0;
      run.state = 'passing';
    } else {
      run.failures++;
      // Pending stays pending (never offered) until the first pass; passing turns failing
      // only after `failures` consecutive failures.
      if (run.state === 'passing' && run.failures >= run.check.failures) run.state = 'failing';
      if (run.state === 'pending' && run.failures >= run.check.failures) run.state = 'failing';
    }
    if (run.state !== before) {
      const service = wireId(run.id, run.user);
      this.log.info({ service, check: run.check.target, state: run.state, failures: run.failures }, 'health check changed');
      this.registry.setHealth(run.id, run.user, run.state === 'passing');
    }
    run.timer = setTimeout(() => void this.runOnce(run), run.check.intervalMs);
    run.timer.unref();
  }

  private halt(run: Running): void {
    run.stopped = true;
    clearTimeout(run.timer);
  }
}

function sameCheck(a: HealthCheck, b: HealthCheck): boolean {
  return a.target === b.target && a.intervalMs === b.intervalMs && a.failures === b.failures;
}
