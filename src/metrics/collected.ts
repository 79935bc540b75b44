/**
 * Metrics whose samples are copied from the daemon's own counts at each scrape: the daemons keep
 * plain numbers on their hot paths, and prom-client reads them only when asked.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

/** Sets one sample: its labels and value. */
export type Sample<L extends string> = (labels: Record<L, string>, n: number) => void;

/** A counter or gauge of `registry` whose samples `read` gives at each scrape (the earlier ones dropped). */
export function collected<L extends string>(
  registry: Registry,
  kind: 'counter' | 'gauge',
  name: string,
  help: string,
  labelNames: readonly L[],
  read: (sample: Sample<L>) => void,
): void {
  const config = { name, help, labelNames, registers: [registry] };
  if (kind === 'counter') {
    new Counter<L>({
      ...config,
      collect() {
        this.reset();
        read((labels, n) => this.inc(labels, n));
      },
    });
  } else {
    new Gauge<L>({
      ...config,
      collect() {
        this.reset();
        read((labels, n) => this.set(labels, n));
      },
    });
  }
}
