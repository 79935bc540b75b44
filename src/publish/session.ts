/**
 * A session: services that live as long as the connection that published them (`"session": true`
 * in Publish, this project's extension). When the program dies, however it dies (Ctrl-C,
 * SIGKILL, a crash), the kernel closes its socket, and polod withdraws what it held.
 */

/** The session of one publish API connection. */
export class Session {
  private readonly ends: (() => void)[] = [];
  /** Bookkeeping to run at the end, which does not count as holding (sessionLimit.ts). */
  private readonly watchers: (() => void)[] = [];
  private ended = false;

  /** @param closed resolves when the connection is closed. */
  constructor(closed: Promise<void>) {
    void closed.then(() => this.end());
  }

  /** True while the connection holds services: it is then never closed as idle. */
  get holding(): boolean {
    return !this.ended && this.ends.length > 0;
  }

  /** Runs `withdraw` when the connection closes (at once if it already has). */
  hold(withdraw: () => void): void {
    if (this.ended) withdraw();
    else this.ends.push(withdraw);
  }

  /** Runs `fn` when the connection closes (at once if it already has); not a hold. */
  whenEnded(fn: () => void): void {
    if (this.ended) fn();
    else this.watchers.push(fn);
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const withdraw of this.ends.splice(0)) withdraw();
    for (const fn of this.watchers.splice(0)) fn();
  }
}
