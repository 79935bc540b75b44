/**
 * `marco` usage errors and help, through main() with fake streams. None of these reaches the
 * network: every case fails before a socket is opened.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ExitCode } from '../../src/cli/common.js';
import { main } from '../../src/cli/marco.js';
import { runMain, type CliRun } from '../helpers/cli-io.js';

function run(...argv: string[]): Promise<CliRun> {
  return runMain((io) => main(argv, io));
}

/** Exit 2, nothing on stdout, one `marco: …` line matching `message`, then the short usage. */
function assertUsageError(result: CliRun, message: RegExp, usage: RegExp): void {
  assert.equal(result.code, ExitCode.USAGE, result.stderr);
  assert.equal(result.stdout, '');
  const [first, ...rest] = result.stderr.trimEnd().split('\n');
  assert.match(first ?? '', /^marco: /);
  assert.match(first ?? '', message);
  assert.match(rest[0] ?? '', /^Usage: /);
  assert.match(rest.join('\n'), usage);
  assert.match(rest.at(-1) ?? '', /--help' for the options and exit codes\.$/);
}

describe('marco usage errors exit 2 with one line and the usage', () => {
  const cases: Array<[string, string[], RegExp, RegExp]> = [
    ['no command', [], /missing command/, /marco discover.*\n.*marco request-for.*\n.*marco services/],
    ['unknown command', ['find'], /unknown command 'find'/, /marco discover/],
    ['unknown option', ['discover', '--verbose'], /unknown option '--verbose'/, /marco discover \[options\]/],
    ['near-miss option (suggestion kept on the same line)', ['discover', '--jsn'], /--jsn'.*--json/, /discover/],
    ['missing SERVICE', ['request-for'], /missing required argument 'SERVICE'/, /marco request-for \[options\] <SERVICE>/],
    ['missing NODE', ['services', '--json'], /missing required argument 'NODE'/, /marco services \[options\] <NODE>/],
    ['excess argument', ['discover', 'web'], /too many arguments/, /marco discover/],
    ['missing option value', ['discover', '--timeout'], /--timeout <ms>' argument missing/, /discover/],
    ['non-numeric timeout', ['discover', '--timeout', 'soon'], /--timeout <ms>' argument 'soon' is invalid/, /discover/],
    ['negative timeout', ['request-for', 'web', '--timeout', '-5'], /--timeout <ms>' argument '-5' is invalid/, /request-for/],
    ['timeout past the timer range', ['discover', '--timeout', '99999999999'], /timeout 99999999999/, /discover/],
    ['negative max-nodes', ['discover', '--max-nodes', '-1'], /--max-nodes <n>' argument '-1' is invalid/, /discover/],
    ['unicast group', ['discover', '--group', '10.0.0.1'], /--group <addr>' argument '10.0.0.1' is invalid/, /discover/],
    ['bad exclude', ['discover', '--exclude', '10.0.0.2', '--exclude', 'polo-a'], /--exclude <addr>' argument 'polo-a'/, /discover/],
    ['param without =', ['request-for', 'web', '--param', 'port'], /--param <key=value>' argument 'port' is invalid/, /request-for/],
    ['param with empty key', ['discover', '--param', '=1'], /--param <key=value>' argument '=1' is invalid/, /discover/],
    ['port out of range', ['services', '10.0.0.2', '--port', '70000'], /--port <n>' argument '70000' is invalid/, /services/],
    ['bad interface', ['discover', '--interface', 'eth0'], /--interface <addr>' argument 'eth0' is invalid/, /discover/],
    ['interface not on this host', ['discover', '--interface', '192.0.2.77'], /interface "192\.0\.2\.77"/, /discover/],
    ['too many retries', ['discover', '--retries', '1000'], /retries 1000/, /discover/],
    ['empty service', ['request-for', ''], /service ""/, /request-for/],
    ['max-nodes on services', ['services', '10.0.0.2', '--max-nodes', '1'], /unknown option '--max-nodes'/, /services/],
  ];
  for (const [name, argv, message, usage] of cases) {
    test(name, async () => assertUsageError(await run(...argv), message, usage));
  }

  test('an exclude that is no address is refused before any socket is opened', async () => {
    assertUsageError(await run('discover', '--exclude', 'fe80::zz'), /--exclude/, /discover/);
  });
});

describe('marco help', () => {
  test('--help prints the commands and the exit codes on stdout, exit 0', async () => {
    const { code, stdout, stderr } = await run('--help');
    assert.equal(code, ExitCode.OK);
    assert.equal(stderr, '');
    for (const text of ['discover', 'request-for', 'services', 'Exit codes:', '0  found', '1  nobody', '2  usage', '3  runtime']) {
      assert.ok(stdout.includes(text), `help mentions ${text}`);
    }
  });

  test('each subcommand documents its options and the exit codes', async () => {
    const discover = await run('discover', '--help');
    assert.equal(discover.code, ExitCode.OK);
    for (const flag of ['--group', '--timeout', '--max-nodes', '--exclude', '--param', '--interface', '--port', '--retries', '--json']) {
      assert.ok(discover.stdout.includes(flag), `discover --help lists ${flag}`);
    }
    assert.match(discover.stdout, /Exit codes:/);
    const services = await run('help', 'services');
    assert.equal(services.code, ExitCode.OK);
    assert.match(services.stdout, /Usage: marco services \[options\] <NODE>/);
  });
});
