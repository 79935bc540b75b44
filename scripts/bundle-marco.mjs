#!/usr/bin/env node
// Bundles the compiled `marco` command (dist/src/cli/marco.js) into dist/bin/marco.js, the file
// package.json's "bin" runs. marco's run time is mostly start-up, and Node's ES module loader
// pays for every file it loads (resolve, read, link: about half a millisecond each), so the
// command ships as one file; `marco doctor` and the client library it uses stay in a chunk
// loaded only when asked for. The unbundled dist/src/cli/marco.js stays importable (tests call
// its main()). See BENCHMARKS.md, "marco start-up".
import { build } from 'esbuild';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
await build({
  entryPoints: { marco: path.join(root, 'dist', 'src', 'cli', 'marco.js') },
  outdir: path.join(root, 'dist', 'bin'),
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
});
