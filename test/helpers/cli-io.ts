/** Running a command's `main(argv, io, …)` in process, with an io that keeps what it writes. */
import type { CliIo } from '../../src/cli/common.js';

/** What a command wrote, and its exit code. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Calls `main` (given the io to write to) and returns its exit code with its stdout and stderr. */
export async function runMain(main: (io: CliIo) => Promise<number>): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await main({ stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } });
  return { code, stdout, stderr };
}
