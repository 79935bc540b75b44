/** Running a short program (an ES module's text) with this Node.js on a namespace host. */
import assert from 'node:assert/strict';
import type { LanHost } from './netns.js';

/** Runs `program` on `host`, asserts it exited 0, and returns what it printed, parsed as JSON. */
export async function runModule(host: LanHost, program: string, timeoutMs = 15_000): Promise<unknown> {
  const res = await host.run([process.execPath, '--input-type=module', '-e', program], { timeoutMs });
  assert.equal(res.code, 0, res.stderr);
  return JSON.parse(res.stdout) as unknown;
}
