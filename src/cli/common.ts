/**
 * Plumbing shared by the commands (marco, polod, …): exit codes, the `main(argv, io)` runner
 * around commander, one-line error reporting, flag parsers that throw, and terminal-safe output.
 * Nothing here knows a particular command.
 *
 * commander is imported for its types only: `marco` parses its flags without it (src/cli/args.ts)
 * to start quickly, so nothing on its path may load commander (about 10 ms).
 */
import { isIPv4, isIPv6 } from '../util/ipv4.js';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { MarcoPoloError } from '../errors.js';
import type { Json } from '../protocol/json.js';
import { gridOf, isPort, MULTICAST_RANGE } from '../protocol/address.js';

/** Documented process exit codes of every command. */
export const ExitCode = {
  /** Success (for a query: something was found). */
  OK: 0,
  /** The command ran but found nothing (for a query: nobody answered). */
  NOT_FOUND: 1,
  /** Bad usage or an invalid value: one line naming it, then the short usage, on stderr. */
  USAGE: 2,
  /** A runtime failure (socket, network, file system): one line on stderr. */
  RUNTIME: 3,
} as const;

/** One of the ExitCode values. */
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** Where a command writes text; process.stdout or a test's collector. */
export interface TextSink {
  write(chunk: string): unknown;
}

/** The output streams of one command run. */
export interface CliIo {
  readonly stdout: TextSink;
  readonly stderr: TextSink;
}

/** A usage problem found after parsing (a combination of flags, say): exit 2 with the usage. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * A flag value a parser refused. The code is commander's own, so commander words it as
 * "option '--x <v>' argument 'y' is invalid. <reason>" (it matches errors by code, not class);
 * src/cli/args.ts words it the same way.
 */
export class FlagError extends Error {
  override name = 'FlagError';
  readonly code = 'commander.invalidArgument';
  readonly exitCode = ExitCode.USAGE;
}

/** commander's own errors (help shown, unknown option…), recognised without loading commander. */
function isCommanderError(err: unknown): err is Error & { code: string; exitCode: number } {
  const { code, exitCode } = err as { code?: unknown; exitCode?: unknown };
  return err instanceof Error && typeof code === 'string' && code.startsWith('commander.') && typeof exitCode === 'number';
}

/** The exit code an error maps to: invalid values and usage are 2, everything else 3. */
export function exitCodeFor(err: unknown): ExitCodeValue {
  if (isCommanderError(err)) return err.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
  if (err instanceof FlagError) return ExitCode.USAGE;
  if (err instanceof UsageError) return ExitCode.USAGE;
  if (err instanceof MarcoPoloError && (err.code === 'MP_ERR_INVALID_ARG' || err.code === 'MP_ERR_CONFIG')) {
    return ExitCode.USAGE;
  }
  return ExitCode.RUNTIME;
}

/** A message on one line: commander's "error: " prefix dropped, line breaks folded. */
export function oneLine(message: string): string {
  return terminalSafe(message.replace(/^error:\s*/i, '').replace(/\s*\n\s*/g, ' ').trim());
}

/**
 * Makes `program` testable: help goes to `io`, and commander throws instead of exiting. Call it
 * before adding subcommands (they inherit these settings) and run the program with runProgram.
 */
export function prepareProgram(program: Command, io: CliIo): Command {
  return program
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      // runProgram prints the one-line form itself, followed by the short usage.
      outputError: () => undefined,
    })
    .showHelpAfterError(false);
}

/**
 * Parses `argv` (the arguments after the command name) and runs the chosen action. Returns
 * undefined when the action completed (its exit code is the caller's business), or the exit
 * code of the error it printed: one line `name: message`, plus the short usage of the command
 * at fault for usage errors.
 */
export async function runProgram(program: Command, argv: readonly string[], io: CliIo): Promise<number | undefined> {
  let active: Command = program;
  program.hook('preSubcommand', (_parent, sub) => {
    active = sub;
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return undefined;
  } catch (err) {
    const code = exitCodeFor(err);
    // Help and help-on-error were already written by commander; nothing more to say.
    if (isCommanderError(err) && (err.code.startsWith('commander.help') || err.code === 'commander.version')) return code;
    io.stderr.write(`${program.name()}: ${oneLine(err instanceof Error ? err.message : String(err))}\n`);
    if (code === ExitCode.USAGE) io.stderr.write(shortUsage(program, active));
    return code;
  }
}

/** "Usage: …" of one command (or of every subcommand), and where the full help is. */
export function shortUsage(program: Command, command: Command = program): string {
  const help = program.createHelp();
  const lines =
    command === program && program.commands.length > 0
      ? program.commands.map((c) => help.commandUsage(c))
      : [help.commandUsage(command)];
  const helpCommand = command === program ? program.name() : `${program.name()} ${command.name()}`;
  return `Usage: ${lines.join('\n       ')}\nRun '${helpCommand} --help' for the options and exit codes.\n`;
}

/**
 * Runs a command's `main` when its module is the script node was started with (not when a test
 * imports it), writing to file descriptors 1 and 2, and sets its exit code. A reader that goes
 * away (`marco discover | head -1`) ends the command quietly instead of with an EPIPE stack trace.
 *
 * `exitAtOnce`: exit as soon as `main` returns rather than when the event loop drains. For a
 * query command: a host-name lookup its deadline gave up on still runs in libuv's thread pool
 * (getaddrinfo cannot be cancelled) and would keep the process alive for the resolver's own
 * timeouts. Never for a daemon, whose last writes (a file it rewrites at stop) must finish.
 */
export async function runIfMain(
  moduleUrl: string,
  main: (argv: readonly string[], io: CliIo) => Promise<number>,
  options: { exitAtOnce?: boolean } = {},
): Promise<void> {
  if (!isMainModule(moduleUrl)) return;
  const code = await main(process.argv.slice(2), { stdout: fdSink(1), stderr: fdSink(2) });
  // Everything was written synchronously, so exiting at once loses no output.
  if (options.exitAtOnce === true) process.exit(code);
  process.exitCode = code;
}

/**
 * Writes to file descriptor `fd` synchronously. Not process.stdout/stderr: creating those
 * streams loads Node's net, tty and stream modules (about 40 internal modules, a third of
 * `marco`'s start-up) to write a few lines. A pipe left non-blocking by the reader (EAGAIN) is
 * waited on; a reader gone (EPIPE) ends the command quietly with its exit code so far.
 */
export function fdSink(fd: number): TextSink {
  const { writeSync } = builtinFs();
  return {
    write(chunk: string): boolean {
      let bytes = Buffer.from(chunk);
      while (bytes.length > 0) {
        try {
          bytes = bytes.subarray(writeSync(fd, bytes));
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'EPIPE') process.exit(process.exitCode ?? 0);
          if (code !== 'EAGAIN') throw err;
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
        }
      }
      return true;
    },
  };
}

/**
 * The package's version, from the nearest package.json above this file named `marcopolo`: the
 * compiled file sits in dist/src/cli/, the bundled `marco` in dist/bin/ (scripts/bundle-marco.mjs).
 */
export function packageVersion(): string {
  const fs = builtinFs();
  let dir = new URL('.', import.meta.url);
  for (let depth = 0; depth < 6; depth++) {
    try {
      const doc = JSON.parse(fs.readFileSync(new URL('package.json', dir), 'utf8')) as { name?: unknown; version?: unknown };
      if (doc.name === 'marcopolo' && typeof doc.version === 'string') return doc.version;
    } catch {
      // no package.json at this level: look one folder up
    }
    dir = new URL('..', dir);
  }
  return 'unknown';
}

/**
 * node:fs without an ESM import: importing it as a module evaluates every export, `promises`
 * included, which loads Node's stream stack (about 30 internal modules) that `marco` never uses.
 */
function builtinFs(): typeof import('node:fs') {
  return process.getBuiltinModule('node:fs');
}

/** True when the module at `moduleUrl` is the script node was started with (not imported). */
export function isMainModule(moduleUrl: string): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    const file = fileURLToPath(moduleUrl);
    // Node made argv[1] absolute. The same path needs no resolving: realpathSync checks every
    // folder of both paths (about 0.3 ms of `marco`'s start-up).
    if (script === file) return true;
    // realpath: an npm bin is a symlink to the compiled file.
    const { realpathSync } = builtinFs();
    return realpathSync(script) === realpathSync(file);
  } catch {
    return false;
  }
}

// ---- Flag parsers: each returns the parsed value or throws commander's InvalidArgumentError,
// which commander turns into "option '--x <v>' argument 'y' is invalid. <reason>" (exit 2).

/** A decimal integer from 0 to Number.MAX_SAFE_INTEGER. */
export function parseNonNegativeInt(value: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n)) throw new FlagError('expected a non-negative integer.');
  return n;
}

/** A UDP/TCP port, 1–65535. */
export function parsePort(value: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!isPort(n)) throw new FlagError('expected a port number from 1 to 65535.');
  return n;
}

/** A dotted-quad IPv4 address. */
export function parseIPv4(value: string): string {
  if (!isIPv4(value)) throw new FlagError('expected an IPv4 address.');
  return value;
}

/** A node address: IPv4, or IPv6 as marco prints it (a link-local one with its zone, fe80::1%eth0). */
export function parseNodeAddress(value: string): string {
  if (!isIPv4(value) && !isIPv6(value)) throw new FlagError('expected an IPv4 or IPv6 address.');
  return value;
}

/** A multicast group address (224.0.0.0/4 or ff00::/8), in its grid's spelling (canonicalGroup). */
export function parseMulticastGroup(value: string): string {
  const grid = gridOf(value);
  if (grid === undefined) throw new FlagError(`expected a multicast address (IPv4 ${MULTICAST_RANGE}).`);
  return grid;
}

/**
 * `KEY=VALUE`, splitting at the first `=`. VALUE is taken as JSON when it parses as JSON
 * (`8080`, `true`, `null`, `"8080"`, `[1,2]`), otherwise as a plain string (`web`, `/index`).
 */
export function parseKeyValue(value: string): [string, Json] {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new FlagError('expected KEY=VALUE with a non-empty KEY.');
  const raw = value.slice(eq + 1);
  let parsed: Json;
  try {
    parsed = JSON.parse(raw) as Json;
  } catch {
    parsed = raw;
  }
  return [value.slice(0, eq), parsed];
}

/** Turns a single-value parser into one for a repeatable flag, collecting values in order. */
export function repeatable<T>(parse: (value: string) => T): (value: string, previous: T[] | undefined) => T[] {
  return (value, previous) => [...(previous ?? []), parse(value)];
}

// ---- Output

/**
 * Text from the network made safe for a terminal: control characters (C0, DEL, C1) and
 * invisible bidi/format characters become `\uXXXX`, so a hostile reply cannot move the cursor,
 * recolour the screen or reorder what is shown.
 */
export function terminalSafe(text: string): string {
  return text.replace(
    // eslint-disable-next-line no-control-regex
    /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/**
 * One JSON value for a table cell: plain strings as they are, anything that could be misread
 * (empty, spaces, quotes, `=`, control characters, or a string that looks like a number or a
 * boolean) as JSON, made terminal-safe.
 */
export function displayValue(value: Json): string {
  if (typeof value === 'string' && /^[^\s"'=\\]+$/.test(value) && terminalSafe(value) === value && !looksLikeJson(value)) {
    return value;
  }
  return terminalSafe(JSON.stringify(value));
}

/** Rows as aligned columns (two spaces apart; the last column is not padded), one line each. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, [...cell].length);
    });
  }
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - [...cell].length)))
        .join('  '),
    )
    .map((line) => `${line}\n`)
    .join('');
}

function looksLikeJson(value: string): boolean {
  try {
    return typeof JSON.parse(value) !== 'string';
  } catch {
    return false;
  }
}
