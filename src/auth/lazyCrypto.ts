/**
 * node:crypto on first use, for the code `marco` loads: loading it (with the stream modules it
 * needs) costs the command about 2 ms of start-up, and a query on a grid without a key never
 * signs, verifies or opens sealed params. Daemon-only modules import node:crypto as usual.
 */
let cryptoModule: typeof import('node:crypto') | undefined;

export function crypto(): typeof import('node:crypto') {
  cryptoModule ??= process.getBuiltinModule('node:crypto');
  return cryptoModule;
}
