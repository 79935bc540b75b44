/**
 * What a benchmark hands back, and how it is shown: the same Markdown tables go to the terminal
 * and into BENCHMARKS.md, so what was printed is what gets committed.
 */

/** One table of figures. Cells are preformatted text. */
export interface Table {
  readonly caption?: string;
  readonly header: readonly string[];
  readonly rows: readonly (readonly string[])[];
}

/** An aim stated in the issue, and whether this run met it. */
export interface Aim {
  readonly what: string;
  readonly target: string;
  readonly measured: string;
  readonly met: boolean;
  /** The reference (Python) implementation's figure, as the issue gives it. */
  readonly reference?: string;
  /** Why the aim is met or not, from this run's own baselines (e.g. Node's start-up floor). */
  readonly why?: string;
}

/** A headline figure of a benchmark the issue sets no aim for, next to its same-run baseline. */
export interface KeyFigure {
  readonly what: string;
  readonly measured: string;
  readonly baseline: string;
}

/** The outcome of one benchmark. */
export interface Section {
  /** Short name, as given on the command line of bench/run.ts. */
  readonly id: string;
  readonly title: string;
  /** How the figures were made, in a sentence or two. */
  readonly method: string;
  readonly tables: readonly Table[];
  readonly aims: readonly Aim[];
  /** Headline figures for the summary, when the issue states no aim for this benchmark. */
  readonly keyFigures?: readonly KeyFigure[];
  /** Observations worth keeping next to the figures (loss, saturation, failures). */
  readonly notes: readonly string[];
  /** Wall time of the benchmark itself, in seconds. */
  readonly seconds: number;
}

/** A Markdown table, columns padded so it also reads well in a terminal. */
export function renderTable(table: Table): string {
  const widths = table.header.map((h, i) => Math.max(h.length, ...table.rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => `| ${widths.map((w, i) => (cells[i] ?? '').padEnd(w)).join(' | ')} |`;
  const out = [line(table.header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...table.rows.map(line)];
  return (table.caption === undefined ? '' : `${table.caption}\n\n`) + out.join('\n');
}

/** The aims as a table. */
export function aimsTable(aims: readonly Aim[]): Table {
  return {
    header: ['aim', 'target', 'measured', 'met', 'reference polod (issue)', 'why'],
    rows: aims.map((a) => [a.what, a.target, a.measured, a.met ? 'yes' : 'no', a.reference ?? '', a.why ?? '']),
  };
}

/** Key figures as a table. */
export function keyFiguresTable(figures: readonly KeyFigure[]): Table {
  return { header: ['figure (no aim in the issue)', 'measured', 'same-run baseline'], rows: figures.map((f) => [f.what, f.measured, f.baseline]) };
}

/** A section as Markdown (heading level 2). */
export function renderSection(s: Section): string {
  const parts = [`## ${s.title}`, s.method, ...s.tables.map(renderTable)];
  if (s.aims.length > 0) parts.push(renderTable({ ...aimsTable(s.aims), caption: 'Aims:' }));
  if (s.notes.length > 0) parts.push(s.notes.map((n) => `- ${n}`).join('\n'));
  return parts.join('\n\n');
}

/** 12345.6 → "12,346". */
export function fmtInt(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a';
}

/** Milliseconds with a precision that suits their size. */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  return `${Math.round(ms)} ms`;
}

/** A ratio such as 0.93. */
export function fmtRatio(r: number): string {
  return Number.isFinite(r) ? r.toFixed(2) : 'n/a';
}

/**
 * KiB (the unit of /proc/<pid>/status, which writes "kB") as MB of 10^6 bytes: the issue's
 * aims say MB, and the decimal unit is the stricter reading of them.
 */
export function fmtMB(kib: number): string {
  return Number.isFinite(kib) ? `${((kib * 1024) / 1e6).toFixed(1)} MB` : 'n/a';
}

/** A fraction as a percentage with enough digits to show small losses. */
export function fmtPct(f: number): string {
  if (!Number.isFinite(f)) return 'n/a';
  if (f === 0) return '0 %';
  return f < 0.001 ? `${(f * 100).toFixed(4)} %` : `${(f * 100).toFixed(2)} %`;
}
