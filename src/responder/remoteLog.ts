/**
 * Log lines caused by remote input, bounded: whatever arrives on the network, polod writes at
 * most `perSecond` such lines a second (debug lines included), then one line saying how many it
 * left out. Lines carry the error's message, never its stack: a stack trace says nothing about
 * a datagram and costs a kilobyte of log per query.
 */
import type { Logger } from '../util/log.js';

/** Default lines per second written about remote input (docs/operations.md, "Abuse limits"). */
export const DEFAULT_REMOTE_LOG_LINES_PER_SECOND = 20;

/** The one home of every log line a remote sender can cause. */
export class RemoteLog {
  private windowStart = 0;
  private written = 0;
  private suppressed = 0;
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly log: Logger,
    readonly perSecond: number = DEFAULT_REMOTE_LOG_LINES_PER_SECOND,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Lines left out since the process started. */
  suppressedTotal = 0;

  /** A debug line; built only when debug is on and the budget allows. */
  debug(fields: () => Record<string, unknown>, msg: string): void {
    if (!(this.log.isLevelEnabled?.('debug') ?? true)) return;
    if (this.take()) this.log.debug(fields(), msg);
  }

  /** A warning; `err` is reduced to its message. */
  warn(fields: Record<string, unknown>, msg: string, err?: unknown): void {
    if (!this.take()) return;
    this.log.warn(err === undefined ? fields : { ...fields, err: errorText(err) }, msg);
  }

  /** Stops the pending summary timer (the summary line is then not written). */
  close(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
  }

  private take(): boolean {
    const now = this.clock();
    if (now - this.windowStart >= 1000) {
      this.flush();
      this.windowStart = now;
      this.written = 0;
    }
    if (this.written < this.perSecond) {
      this.written++;
      return true;
    }
    this.suppressed++;
    this.suppressedTotal++;
    // The summary is written when the window ends, even if nothing arrives after the burst.
    if (this.flushTimer === undefined) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = undefined;
        this.flush();
      }, Math.max(1, 1000 - (now - this.windowStart)));
      this.flushTimer.unref();
    }
    return false;
  }

  private flush(): void {
    if (this.suppressed === 0) return;
    const count = this.suppressed;
    this.suppressed = 0;
    this.log.warn({ suppressed: count, limitPerSecond: this.perSecond }, 'log lines about remote input suppressed');
  }
}

/** An error as one short line: its message (or its string form), never its stack. */
export function errorText(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
