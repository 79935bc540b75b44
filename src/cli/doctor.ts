import type { CliIo } from './common.js';
export async function main(_argv: readonly string[], _io: CliIo): Promise<number> {
  return 3;
}
