/**
 * Child processes for tests: collect output line by line, wait for a line or a pino JSON log
 * record, stop politely then forcefully. Every live child is tracked so that a crashing or
 * interrupted test run never leaves daemons behind (see {@link registerCleanup}).
 */
import { spawn, type ChildProcess } from 'node:child_process';

/** Which output stream of a child. */
export type StreamName = 'stdout' | 'stderr';

/** How a child ended: exit code, or the signal that killed it. */
export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Options of {@link spawnProc}. `env` is merged over this process's environment. */
export interface SpawnOptions {
  env?: Record<string, string>;
  cwd?: string;
}

/** Options of {@link runProc}: kill the child after `timeoutMs` (default 10 s); feed it `input`. */
export interface RunOptions extends SpawnOptions {
  timeoutMs?: number;
  input?: string;
}

/** Result of {@link runProc}. `code` is null when a signal (or the timeout) ended the child. */
export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

interface Waiter {
  stream: StreamName;
  predicate: (line: string) => boolean;
  what: string;
  resolve: (line: string) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** Every child not yet reaped, for the exit-time kill. */
const live = new Set<Proc>();
/** Once a child has exited, how long to wait for its pipes to close (a grandchild may hold them). */
const PIPE_CLOSE_GRACE_MS = 2000;

/** A spawned child process with its output collected as lines. */
export class Proc {
  /** The wrapped child; its stdin is a pipe. */
  readonly child: ChildProcess;
  /** Resolves once the child has exited and its output has been fully read. Never rejects. */
  readonly exited: Promise<ExitInfo>;
  private readonly text: Record<StreamName, string> = { stdout: '', stderr: '' };
  private readonly partial: Record<StreamName, string> = { stdout: '', stderr: '' };
  private readonly done: Record<StreamName, string[]> = { stdout: [], stderr: [] };
  private waiters: Waiter[] = [];
  private exitInfo: ExitInfo | undefined;
  private spawnError: Error | undefined;
  /** True once 'close' fired: no more output can arrive. */
  private closed = false;

  constructor(readonly argv: readonly string[], opts: SpawnOptions = {}) {
    const [cmd, ...args] = argv;
    if (cmd === undefined) throw new Error('spawnProc: empty argv');
    this.child = spawn(cmd, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...opts.env },
      ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
    });
    live.add(this);
    for (const name of ['stdout', 'stderr'] as const) {
      const stream = this.child[name];
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => this.onData(name, chunk));
    }
    // A child that ignores stdin must not crash us with EPIPE when we write to it.
    this.child.stdin?.on('error', () => {});
    this.exited = new Promise((resolve) => {
      this.child.on('error', (err) => {
        this.spawnError = err;
      });
      this.child.on('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        live.delete(this);
        // 'close' waits for the pipes; a grandchild that inherited them could keep them open.
        setTimeout(() => {
          this.child.stdout?.destroy();
          this.child.stderr?.destroy();
        }, PIPE_CLOSE_GRACE_MS).unref();
      });
      this.child.on('close', (code, signal) => {
        live.delete(this);
        this.closed = true;
        for (const name of ['stdout', 'stderr'] as const) this.flush(name);
        const info = this.exitInfo ?? { code, signal };
        this.exitInfo = info;
        this.failWaiters();
        resolve(info);
      });
    });
  }

  /** The child's pid (under `ip netns exec`, the target program's own pid). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Everything received on stdout so far. */
  get stdout(): string {
    return this.text.stdout;
  }

  /** Everything received on stderr so far. */
  get stderr(): string {
    return this.text.stderr;
  }

  /** Complete lines received so far on `stream` (a final unterminated line counts after exit). */
  lines(stream: StreamName = 'stdout'): readonly string[] {
    return this.done[stream];
  }

  /** The JSON-object lines (pino records) received on stderr so far; other lines are skipped. */
  jsonLogs(): Record<string, unknown>[] {
    return this.done.stderr.map(parseObject).filter((o) => o !== undefined);
  }

  /**
   * Resolves with the first line on `stream` (already received or to come) matching
   * `predicate`. Rejects naming `what` on timeout or if the child exits first.
   */
  waitForLine(
    predicate: (line: string) => boolean,
    what: string,
    timeoutMs = 5000,
    stream: StreamName = 'stdout',
  ): Promise<string> {
    return new Promise((resolve, reject) => {
      try {
        const seen = this.done[stream].find(predicate);
        if (seen !== undefined) return resolve(seen);
      } catch (err) {
        return reject(err instanceof Error ? err : new Error(String(err)));
      }
      if (this.closed) return reject(this.exitedError(what));
      const waiter: Waiter = {
        stream,
        predicate,
        what,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} from ${this.describe()}${this.tail()}`));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** Like {@link waitForLine} for pino JSON records on stderr; resolves with the parsed record. */
  async waitForJsonLog(
    predicate: (obj: Record<string, unknown>) => boolean,
    what: string,
    timeoutMs = 5000,
  ): Promise<Record<string, unknown>> {
    const line = await this.waitForLine(
      (l) => {
        const obj = parseObject(l);
        return obj !== undefined && predicate(obj);
      },
      what,
      timeoutMs,
      'stderr',
    );
    return parseObject(line) ?? {};
  }

  /** Sends `signal` (default SIGTERM); false when the child is already gone. */
  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    if (this.exitInfo !== undefined) return false;
    return this.child.kill(signal);
  }

  /** SIGTERM, then SIGKILL if still alive after `graceMs` (default 3 s); resolves on exit. */
  async stop(graceMs = 3000): Promise<ExitInfo> {
    if (this.kill('SIGTERM')) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), graceMs)));
      if ((await Promise.race([this.exited, late])) === 'late') this.kill('SIGKILL');
      clearTimeout(timer);
    }
    return this.exited;
  }

  private onData(stream: StreamName, chunk: string): void {
    this.text[stream] += chunk;
    const parts = (this.partial[stream] + chunk).split('\n');
    this.partial[stream] = parts.pop() ?? '';
    for (const line of parts) this.addLine(stream, line.replace(/\r$/, ''));
  }

  private flush(stream: StreamName): void {
    const rest = this.partial[stream];
    this.partial[stream] = '';
    if (rest !== '') this.addLine(stream, rest.replace(/\r$/, ''));
  }

  private addLine(stream: StreamName, line: string): void {
    this.done[stream].push(line);
    for (const w of [...this.waiters]) {
      if (w.stream !== stream) continue;
      let hit: boolean;
      try {
        hit = w.predicate(line);
      } catch (err) {
        this.settle(w);
        w.reject(err instanceof Error ? err : new Error(String(err)));
        continue;
      }
      if (hit) {
        this.settle(w);
        w.resolve(line);
      }
    }
  }

  private settle(w: Waiter): void {
    clearTimeout(w.timer);
    this.waiters = this.waiters.filter((x) => x !== w);
  }

  private failWaiters(): void {
    for (const w of [...this.waiters]) {
      this.settle(w);
      w.reject(this.exitedError(w.what));
    }
  }

  private exitedError(what: string): Error {
    const how = this.spawnError?.message ?? `code ${this.exitInfo?.code}, signal ${this.exitInfo?.signal}`;
    return new Error(`${this.describe()} exited (${how}) before ${what}${this.tail()}`);
  }

  private describe(): string {
    const shown = this.argv.map((a) => (a.length > 60 ? `${a.slice(0, 57)}...` : a)).join(' ');
    return `[pid ${this.pid}] ${shown}`;
  }

  /**
   * The last stderr lines, so a failed wait shows why the child misbehaved; the last stdout lines
   * when stderr is empty (a child under `script` writes both to its terminal, read as stdout).
   */
  private tail(): string {
    const err = this.done.stderr.slice(-10).join('\n');
    if (err !== '') return `\n--- stderr tail ---\n${err}`;
    const out = this.done.stdout.slice(-10).join('\n');
    return out === '' ? '' : `\n--- stdout tail ---\n${out}`;
  }
}

function parseObject(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const v: unknown = JSON.parse(line);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Spawns `argv` (argv[0] is the program) as a tracked {@link Proc}. */
export function spawnProc(argv: readonly string[], opts: SpawnOptions = {}): Proc {
  return new Proc(argv, opts);
}

/** Runs `argv` to completion, SIGKILLing it after `timeoutMs`, and returns its output. */
export async function runProc(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const { timeoutMs = 10_000, input, ...spawnOpts } = opts;
  return finishRun(spawnProc(argv, spawnOpts), timeoutMs, input);
}

/** Feeds `input` to an already spawned proc and waits for it (shared with the netns harness). */
export async function finishRun(proc: Proc, timeoutMs: number, input?: string): Promise<RunResult> {
  proc.child.stdin?.end(input ?? '');
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill('SIGKILL');
  }, timeoutMs);
  const { code, signal } = await proc.exited;
  clearTimeout(timer);
  return { code, signal, stdout: proc.stdout, stderr: proc.stderr, timedOut };
}

/** SIGKILLs every tracked child still running (synchronous: safe in an 'exit' handler). */
export function killAllProcs(): void {
  for (const p of live) {
    live.delete(p);
    try {
      if (p.pid !== undefined) process.kill(p.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

const cleanups: (() => void)[] = [killAllProcs];
let installed = false;

/**
 * Registers a synchronous cleanup run when this process exits or gets SIGINT/SIGTERM, after
 * every tracked child has been killed. Cleanups must be idempotent: they may run twice.
 */
export function registerCleanup(fn: () => void): void {
  cleanups.push(fn);
  installHandlers();
}

function runCleanups(): void {
  for (const fn of cleanups) {
    try {
      fn();
    } catch {
      // Keep going: the remaining cleanups matter more than one failure.
    }
  }
}

function installHandlers(): void {
  if (installed) return;
  installed = true;
  process.on('exit', runCleanups);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = (): void => {
      runCleanups();
      process.removeListener(sig, onSignal);
      // Listening to a signal cancels its default action; when nobody else handles it, re-raise
      // it so the process still dies of it (and reports that to its parent).
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

// Even tests that never call registerCleanup must not leak children.
installHandlers();
