/**
 * Timed service changes on one polod, seen by a running `Marco.watch`: the watch rounds of
 * bench/child/liveClient.ts and bench/child/registryClient.ts. Each step writes the service file
 * (to `<id>.tmp`, then renamed, so polod never reads half a file) or removes it, sends polod
 * SIGUSR1 (the benchmark namespaces share pids and files) and times until the watch yields that
 * step's event for polod's address.
 */
import { rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

/** The part of a watch event the rounds look at. */
export interface ChangeEvent {
  readonly event: string;
  readonly address: string;
}

/** One step of a round: the event awaited, and the service's params (undefined: its file is removed). */
export type ChangeStep<E extends string> = readonly [E, Record<string, unknown> | undefined];

export interface ServiceChangeRounds<E extends string> {
  /** The running watch, and what ends it (aborted when an event is not seen in time). */
  readonly watch: AsyncIterator<ChangeEvent>;
  readonly controller: AbortController;
  readonly polodPid: number;
  readonly polodAddress: string;
  readonly servicesDir: string;
  /** The service id, also its file's name. */
  readonly id: string;
  /** Untimed rounds first (rounds -warmup … -1), then `runs` timed ones. */
  readonly warmup: number;
  readonly runs: number;
  /** How long one event may take. */
  readonly timeoutMs: number;
  /** The steps of one round, in order. */
  readonly steps: (round: number) => ReadonlyArray<ChangeStep<E>>;
  /** Where the timed rounds' figures go, ms per event. */
  readonly times: Record<E, number[]>;
}

/**
 * Runs the rounds; returns the failures: 0, or 1 when an event was not seen within timeoutMs (or
 * the watch ended), which stops the rounds since the watch is then aborted.
 */
export async function timeServiceChanges<E extends string>(o: ServiceChangeRounds<E>): Promise<number> {
  const file = path.join(o.servicesDir, o.id);
  const change = async (params: Record<string, unknown> | undefined): Promise<void> => {
    if (params === undefined) await rm(file, { force: true });
    else {
      await writeFile(`${file}.tmp`, JSON.stringify({ id: o.id, params }));
      await rename(`${file}.tmp`, file);
    }
  };
  /** Ms until the watch yields `event` for polod; undefined when it ended first (aborted at timeoutMs). */
  const until = async (event: E): Promise<number | undefined> => {
    const t0 = performance.now();
    process.kill(o.polodPid, 'SIGUSR1');
    const timer = setTimeout(() => o.controller.abort(), o.timeoutMs);
    try {
      for (;;) {
        const next = await o.watch.next();
        if (next.done === true) return undefined;
        if (next.value.event === event && next.value.address === o.polodAddress) return performance.now() - t0;
      }
    } finally {
      clearTimeout(timer);
    }
  };
  for (let round = -o.warmup; round < o.runs; round++) {
    for (const [event, params] of o.steps(round)) {
      await change(params);
      const ms = await until(event);
      if (ms === undefined) return 1;
      if (round >= 0) o.times[event].push(ms);
    }
  }
  return 0;
}
