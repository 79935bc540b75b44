/**
 * A small command-line parser for `marco`, whose start-up time is most of a query's run time:
 * commander costs about 10 ms to load, more than the rest of the command. It knows subcommands,
 * `--flag`, `--flag value`, `--flag=value`, repeatable flags, `--` and positional arguments, and
 * words its errors as commander does (so every command reads alike), without loading anything.
 */
import { FlagError, UsageError } from './common.js';

/** One `--name [<value>]` flag. */
export interface FlagSpec {
  /** Without the dashes: `max-nodes`. Its value is stored under the camelCase key (`maxNodes`). */
  readonly name: string;
  /** Placeholder of the value, `<ms>`; undefined for a boolean flag. */
  readonly value?: string;
  readonly description: string;
  /** Checks and converts the value; throws FlagError with the reason. */
  readonly parse?: (value: string) => unknown;
  /** Values are collected in a list. */
  readonly repeatable?: boolean;
}

/** A subcommand: its positional arguments (all required) and flags. */
export interface CommandSpec {
  readonly name: string;
  readonly description: string;
  readonly args: ReadonlyArray<{ readonly name: string; readonly description: string }>;
  readonly flags: readonly FlagSpec[];
}

/** What parseCommand found. */
export interface Parsed {
  readonly flags: Record<string, unknown>;
  readonly args: string[];
  /** `--help` or `-h` was given: print the help instead of running. */
  readonly help: boolean;
}

const HELP_FLAG: FlagSpec = { name: 'help', description: 'display help for command' };

/** Parses the arguments after the subcommand's name. Throws UsageError worded as commander does. */
export function parseCommand(spec: CommandSpec, argv: readonly string[]): Parsed {
  const flags: Record<string, unknown> = {};
  const args: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '-h' || arg === '--help') {
      help = true;
      continue;
    }
    if (!arg.startsWith('-') || arg === '-') {
      args.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') ? arg.slice(2, eq > 0 ? eq : undefined) : '';
    const flag = spec.flags.find((f) => f.name === name);
    if (flag === undefined) throw new UsageError(unknownOption(arg.slice(0, eq > 0 ? eq : undefined), spec.flags));
    const key = camelCase(flag.name);
    if (flag.value === undefined) {
      if (eq > 0) throw new UsageError(`option '--${flag.name}' does not take a value`);
      flags[key] = true;
      continue;
    }
    const label = `option '--${flag.name} ${flag.value}'`;
    let raw: string | undefined;
    if (eq > 0) raw = arg.slice(eq + 1);
    else {
      raw = argv[i + 1];
      // As commander: a following flag is not taken as the value (negative numbers excepted).
      if (raw === undefined || (raw.startsWith('-') && !/^-\d/.test(raw))) {
        throw new UsageError(`${label} argument missing`);
      }
      i++;
    }
    let value: unknown = raw;
    if (flag.parse) {
      try {
        value = flag.parse(raw);
      } catch (err) {
        if (err instanceof FlagError) throw new UsageError(`${label} argument '${raw}' is invalid. ${err.message}`);
        throw err;
      }
    }
    flags[key] = flag.repeatable === true ? [...((flags[key] as unknown[] | undefined) ?? []), value] : value;
  }
  if (!help) {
    const missing = spec.args[args.length];
    if (missing !== undefined) throw new UsageError(`missing required argument '${missing.name}'`);
    if (args.length > spec.args.length) {
      const s = spec.args.length === 1 ? '' : 's';
      throw new UsageError(`too many arguments for '${spec.name}'. Expected ${spec.args.length} argument${s} but got ${args.length}.`);
    }
  }
  return { flags, args, help };
}

/** `marco discover [options]`, `marco request-for [options] <SERVICE>`. */
export function commandUsage(program: string, spec: CommandSpec): string {
  return [program, spec.name, '[options]', ...spec.args.map((a) => `<${a.name}>`)].join(' ');
}

/** The full help of one subcommand, laid out as commander lays it out. */
export function commandHelp(program: string, spec: CommandSpec, epilogue: string): string {
  const rows = [...spec.flags, HELP_FLAG].map((f): [string, string] => [
    f.value === undefined ? `--${f.name}` : `--${f.name} ${f.value}`,
    f.description,
  ]);
  const args = spec.args.map((a): [string, string] => [a.name, a.description]);
  const width = Math.max(...[...rows, ...args].map(([term]) => term.length));
  const table = (items: Array<[string, string]>): string =>
    items.map(([term, text]) => `  ${term.padEnd(width)}  ${text}\n`).join('');
  return (
    `Usage: ${commandUsage(program, spec)}\n\n${spec.description}\n\n` +
    (args.length > 0 ? `Arguments:\n${table(args)}\n` : '') +
    `Options:\n${table(rows)}${epilogue}\n`
  );
}

/** The top-level help: the subcommands and the program-wide flags. */
export function programHelp(
  program: string,
  description: string,
  commands: readonly CommandSpec[],
  epilogue: string,
): string {
  const terms = commands.map((c): [string, string] => [
    [c.name, '[options]', ...c.args.map((a) => `<${a.name}>`)].join(' '),
    c.description,
  ]);
  terms.push(['help [command]', 'display help for command']);
  const width = Math.max(...terms.map(([t]) => t.length), '-V, --version'.length);
  return (
    `Usage: ${program} [options] [command]\n\n${description}\n\n` +
    `Options:\n  ${'-V, --version'.padEnd(width)}  output the version number\n` +
    `  ${'-h, --help'.padEnd(width)}  display help for command\n\n` +
    `Commands:\n${terms.map(([t, d]) => `  ${t.padEnd(width)}  ${d}\n`).join('')}${epilogue}\n`
  );
}

function camelCase(name: string): string {
  return name.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

/** commander's wording, with its suggestion of the nearest known flag. */
function unknownOption(given: string, flags: readonly FlagSpec[]): string {
  const candidates = [...flags, HELP_FLAG].map((f) => `--${f.name}`);
  const near = candidates
    .map((c) => ({ c, d: distance(given, c) }))
    .filter(({ c, d }) => d <= Math.max(1, Math.floor(c.length * 0.4)) && d < c.length)
    .sort((a, b) => a.d - b.d)[0];
  return `unknown option '${given}'${near === undefined ? '' : ` (Did you mean ${near.c}?)`}`;
}

/** Edit distance (insert, delete, replace), for suggestions. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_v, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}
