#!/usr/bin/env node
/**
 * `polo`: publish and unpublish services at run time through the local polod's publish API
 * (docs/protocol.md §5). A thin shell over PoloClient: parse flags, send one request, print the
 * result or JSON, return a documented exit code (see EXIT_CODES_HELP).
 */
import { userInfo } from 'node:os';
import { Command, InvalidArgumentError as FlagError, Option } from 'commander';
import { DEFAULT_POLO_TIMEOUT_MS, PoloClient, type PoloClientOptions, type PublishedService } from '../client/poloClient.js';
import { DEFAULT_POLOD_SOCKET, DEFAULT_TLS_HOST, DEFAULT_TLS_PORT } from '../client/polodEndpoint.js';
import { IoError, RemoteError } from '../errors.js';
import { isJsonObject, type Json, type JsonObject } from '../protocol/json.js';
import {
  displayValue,
  ExitCode,
  packageVersion,
  formatTable,
  runIfMain,
  oneLine,
  parseKeyValue,
  parseMulticastGroup,
  parseNonNegativeInt,
  parsePort,
  prepareProgram,
  repeatable,
  runProgram,
  shortUsage,
  terminalSafe,
  type CliIo,
} from './common.js';

/** Exit code when polod refused the request (its reason is printed). */
export const EXIT_REFUSED = 1;

/** The exit codes, as printed at the end of every `--help`. */
export const EXIT_CODES_HELP = `
Exit codes:
  ${ExitCode.OK}  done
  ${EXIT_REFUSED}  polod refused the request; its reason on one line (e.g. "polo: Permission denied")
  ${ExitCode.USAGE}  usage error or invalid value (one line naming it, then the usage, on stderr)
  ${ExitCode.RUNTIME}  runtime error: polod not running, no reply within --timeout, token file unreadable`;

/** What `main` may be given instead of the process's own identity (tests use a scratch home). */
export interface PoloCliDeps {
  /** The home whose `.polo/token` is used (default: the user's home). */
  readonly home?: string;
  /** The uid sent in Request-token (default: the effective uid). */
  readonly uid?: number;
  /** This user's name, for hints naming their services (default: the process's user). */
  readonly userName?: string;
}

/** Flags of every subcommand (the global ones included, as optsWithGlobals gives them). */
interface Flags {
  stateDir?: string;
  socket?: string;
  tls?: boolean;
  tlsPort?: number;
  timeout?: number;
  json?: boolean;
  // publish
  param?: Array<[string, Json]>;
  params?: JsonObject;
  group?: string[];
  permanent?: boolean;
  root?: boolean;
  check?: string;
  session?: boolean;
  checkInterval?: number;
  checkFailures?: number;
  // unpublish
  deleteFile?: boolean;
}

/**
 * Runs `polo` with `argv` (the arguments after the command name) and returns its exit code.
 * Never calls process.exit and writes only to `io`, so tests call it directly.
 */
export async function main(argv: readonly string[], io: CliIo, deps: PoloCliDeps = {}): Promise<number> {
  let exitCode: number = ExitCode.RUNTIME;
  /** Runs `action` with a client made from the flags; a refusal by polod is exit 1. */
  const withClient =
    (action: (client: PoloClient, flags: Flags, id: string) => Promise<void>) =>
    async (...args: unknown[]): Promise<void> => {
      const command = args.at(-1) as Command;
      const id = typeof args[0] === 'string' ? args[0] : '';
      const flags = command.optsWithGlobals<Flags>();
      const client = new PoloClient(clientOptions(flags, deps));
      try {
        await action(client, flags, id);
        exitCode = ExitCode.OK;
      } catch (err) {
        if (!(err instanceof RemoteError)) throw err;
        io.stderr.write(`polo: ${oneLine(err.message)}\n`);
        exitCode = EXIT_REFUSED;
      } finally {
        await client.close();
      }
    };

  const program = prepareProgram(new Command('polo'), io)
    .version(packageVersion())
    .configureHelp({ showGlobalOptions: true })
    .description('Publish and unpublish MarcoPolo services through the local polod.')
    .addOption(
      new Option('--state-dir <dir>', "polod's --state-dir: talk to <dir>/polod.sock").conflicts(['socket', 'tls', 'tlsPort']),
    )
    .addOption(
      new Option('--socket <path>', `polod's Unix socket (default ${DEFAULT_POLOD_SOCKET})`).conflicts(['tls', 'tlsPort']),
    )
    .option('--tls', `use TLS on ${DEFAULT_TLS_HOST}:${DEFAULT_TLS_PORT} (as the reference bindings) instead of the Unix socket`)
    .option('--tls-port <n>', `the TLS port (implies --tls; default ${DEFAULT_TLS_PORT})`, parsePort)
    .option('--timeout <ms>', `deadline of the request in ms, 0 = none (default ${DEFAULT_POLO_TIMEOUT_MS})`, parseNonNegativeInt)
    .addHelpText('after', EXIT_CODES_HELP);

  program
    .command('publish')
    .description('publish service ID; prints the id it gets (ID, or <user>:ID for a user service)')
    .argument('<ID>', 'service id')
    .option(
      '--param <key=value>',
      'a service param; VALUE is JSON when it parses as JSON, else a string (repeatable; wins over --params)',
      repeatable(parseKeyValue),
    )
    .option('--params <json>', 'the service params as one JSON object', parseJsonObject)
    .option('--group <addr>', 'publish in this multicast group only (repeatable; default: every group polod serves)', repeatable(parseMulticastGroup))
    .option('--permanent', 'also write a service file, so the service outlives a polod restart')
    .option('--root', 'a root (system) service; needs root or the marcopolo group')
    .option('--session', 'keep the service only while this command runs: it stays in the foreground, and Ctrl-C, SIGTERM, SIGKILL or a crash withdraw it')
    .option('--check <target>', 'offer it only while this check passes: tcp:PORT or http://127.0.0.1:PORT/PATH (run by polod)')
    .option('--check-interval <ms>', 'time between two checks (default 5000)', parseNonNegativeInt)
    .option('--check-failures <n>', 'consecutive failures that withdraw it (default 3)', parseNonNegativeInt)
    .option('--json', 'print {"id": "..."} instead of the bare id')
    .addHelpText('after', EXIT_CODES_HELP)
    .action(
      withClient(async (client, flags, id) => {
        const params: JsonObject = { ...flags.params, ...Object.fromEntries(flags.param ?? []) };
        const published = await client.publishService(id, {
          params,
          ...(flags.group && { groups: flags.group }),
          permanent: flags.permanent === true,
          root: flags.root === true,
          ...(flags.session === true && { session: true }),
          ...(flags.check !== undefined && {
            check: {
              target: flags.check,
              ...(flags.checkInterval !== undefined && { intervalMs: flags.checkInterval }),
              ...(flags.checkFailures !== undefined && { failures: flags.checkFailures }),
            },
          }),
        });
        io.stdout.write(flags.json === true ? `${JSON.stringify({ id: published })}\n` : `${terminalSafe(published)}\n`);
        if (flags.session === true && (await holdSession(client)) === 'lost') {
          throw new IoError(`the connection to polod closed; ${published} is withdrawn`);
        }
      }),
    );

  program
    .command('unpublish')
    .description('unpublish service ID (ID for a root service, <user>:ID for a user service); prints nothing')
    .argument('<ID>', 'service id')
    .option('--group <addr>', 'unpublish from this multicast group only (repeatable; default: every group)', repeatable(parseMulticastGroup))
    .option('--delete-file', 'also delete its service file (or drop these groups from it)')
    .option('--json', 'print {"id": "...", "unpublished": true}')
    .addHelpText('after', EXIT_CODES_HELP)
    .action(
      withClient(async (client, flags, id) => {
        // What polod offers, read first: the hints below name the service the user likely meant,
        // and a file-backed one needs a warning. List needs no token and costs one local call.
        const offered = await client.list().catch(() => undefined);
        try {
          await client.unpublishService(id, { ...(flags.group && { groups: flags.group }), deleteFile: flags.deleteFile === true });
        } catch (err) {
          if (!(err instanceof RemoteError)) throw err;
          throw new RemoteError(explainUnpublishRefusal(err.message, id, offered, deps.userName ?? currentUserName()));
        }
        const entry = offered?.find((s) => s.id === id);
        if (entry?.permanent === true && flags.deleteFile !== true) {
          io.stderr.write(
            `polo: warning: ${terminalSafe(id)} is kept in a service file, so it comes back at polod's next reload or restart; ` +
              'unpublish it with --delete-file to remove it for good\n',
          );
        }
        if (flags.json === true) io.stdout.write(`${JSON.stringify({ id, unpublished: true })}\n`);
      }),
    );

  program
    .command('list')
    .description('list the services polod offers: ID, OWNER, GROUPS, PERMANENT, PARAMS')
    .option('--json', 'print a JSON array of {id, owner, groups, permanent, params, root}')
    .addHelpText('after', EXIT_CODES_HELP)
    .action(
      withClient(async (client, flags) => {
        printList(await client.list(), flags, io);
      }),
    );

  program
    .command('token')
    .description("ask polod to write this user's token file (~/.polo/token); prints created or existed")
    .option('--json', 'print {"token": "created"|"existed", "file": "..."}')
    .addHelpText('after', EXIT_CODES_HELP)
    .action(
      withClient(async (client, flags) => {
        const outcome = await client.requestToken();
        io.stdout.write(flags.json === true ? `${JSON.stringify({ token: outcome, file: client.tokenFile })}\n` : `${outcome}\n`);
      }),
    );

  if (argv.length === 0) {
    io.stderr.write(`polo: missing command\n${shortUsage(program)}`);
    return ExitCode.USAGE;
  }
  return (await runProgram(program, argv, io)) ?? exitCode;
}

/**
 * `polo publish --session`: stays until SIGINT or SIGTERM ('stopped': exit 0, the service is
 * withdrawn as the connection closes) or until polod closes the connection ('lost').
 */
async function holdSession(client: PoloClient): Promise<'stopped' | 'lost'> {
  // The connection's socket does not keep Node running (a finished program must exit): this does.
  const keepAlive = setInterval(() => {}, 1 << 30);
  let onSignal: () => void = () => {};
  const stopped = new Promise<'stopped'>((resolve) => (onSignal = () => resolve('stopped')));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await Promise.race([stopped, client.sessionEnded().then(() => 'lost' as const)]);
  } finally {
    clearInterval(keepAlive);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/**
 * polod's refusal of an Unpublish (its wire texts are the reference's, kept for the bindings),
 * with the id and the likely intended one named: a bare `web` from alice, who owns `alice:web`,
 * means hers.
 */
export function explainUnpublishRefusal(
  reason: string,
  id: string,
  offered: readonly PublishedService[] | undefined,
  userName: string | undefined,
): string {
  const shownId = `'${terminalSafe(id)}'`;
  const own = userName !== undefined && !id.includes(':') ? `${userName}:${id}` : undefined;
  const ownExists = own !== undefined && offered?.some((s) => s.id === own) === true;
  const intended = ownExists ? `; your service is '${terminalSafe(own)}': polo unpublish ${terminalSafe(own)}` : '';
  if (reason === PERMISSION_DENIED) {
    if (id.includes(':')) return `${reason}: ${shownId} is another user's service; only its owner or root may unpublish it`;
    return `${reason}: ${shownId} names a root service, which only root or the marcopolo group may unpublish${intended}`;
  }
  if (reason === NOT_FOUND) return `${reason}: no service ${shownId} is offered${intended === '' ? '' : intended}`;
  return reason;
}

/** polod's wire texts (src/publish/errors.ts), as the client sees them. */
const PERMISSION_DENIED = 'Permission denied';
const NOT_FOUND = 'Could not find service';

function currentUserName(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    return undefined;
  }
}

function clientOptions(flags: Flags, deps: PoloCliDeps): PoloClientOptions {
  return {
    ...(flags.tls === true || flags.tlsPort !== undefined ? { tls: { port: flags.tlsPort ?? DEFAULT_TLS_PORT } } : {}),
    ...(flags.socket !== undefined && { socketPath: flags.socket }),
    ...(flags.stateDir !== undefined && { stateDir: flags.stateDir }),
    ...(flags.timeout !== undefined && { timeout: flags.timeout }),
    ...(deps.home !== undefined && { home: deps.home }),
    ...(deps.uid !== undefined && { uid: deps.uid }),
  };
}

function printList(services: readonly PublishedService[], flags: Flags, io: CliIo): void {
  if (flags.json === true) {
    io.stdout.write(`${JSON.stringify(services)}\n`);
    return;
  }
  if (services.length === 0) {
    io.stderr.write('polo: polod offers no services\n');
    return;
  }
  // The CHECK column appears only when some service has a health check.
  const checks = services.some((s) => s.check !== undefined);
  const rows = services.map((s) => [
    displayValue(s.id),
    displayValue(s.owner),
    s.groups.length > 0 ? s.groups.map((g) => displayValue(g)).join(',') : '-',
    s.permanent ? 'yes' : 'no',
    ...(checks ? [s.check ? `${displayValue(s.check.target)} ${displayValue(s.check.state)}` : '-'] : []),
    formatParams(s.params),
  ]);
  const header = ['ID', 'OWNER', 'GROUPS', 'PERMANENT', ...(checks ? ['CHECK'] : []), 'PARAMS'];
  io.stdout.write(formatTable([header, ...rows]));
}

/** Params as compact `key=value` pairs, values shown as displayValue does; `-` when empty. */
function formatParams(params: JsonObject): string {
  const pairs = Object.entries(params).map(([key, value]) => `${displayValue(key)}=${displayValue(value)}`);
  return pairs.length > 0 ? pairs.join(' ') : '-';
}

function parseJsonObject(value: string): JsonObject {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new FlagError('expected a JSON object, e.g. {"port":8080}.');
  }
  if (!isJsonObject(parsed)) throw new FlagError('expected a JSON object, e.g. {"port":8080}.');
  return parsed as JsonObject;
}

await runIfMain(import.meta.url, main);
