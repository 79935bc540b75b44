#!/usr/bin/env node
// Builds the installed `marco` command in dist/bin: marco.bundle.cjs, the compiled command
// (dist/src/cli/marco.js) bundled into one CommonJS file; marco.bundle.cache, a V8 code cache of
// it; and marco.cjs, the file package.json's "bin" runs, scripts/marco-loader.cjs, which compiles
// the bundle with that cache. marco's run time is mostly start-up; each step removes a cost
// measured by `npm run bench -- startup` (BENCHMARKS.md, "marco start-up"):
// - One CommonJS file: Node's ES module loader costs about 3 ms before the first line runs, plus
//   about half a millisecond per file it loads; a CommonJS file of one piece pays neither.
// - `marco doctor` and `marco dashboard` stay out of the bundle: they are imported from
//   dist/src/cli/ when used, so a query does not parse their code (about 2 ms).
// - The code cache: V8 compiles each function on its first call, and Node 20's CommonJS loader
//   keeps no cache between runs, so every run compiled again what a query runs (about 1.5 ms
//   of CPU). The cache is written after a training query on an in-memory network (below), so it
//   holds the functions a query calls, not just the top level; scripts/marco-loader.cjs says
//   why a stale cache is harmless.
// - Not minified: with the code cache, a bundle minified by esbuild (whitespace and syntax, 30%
//   fewer bytes) started no faster in CPU time, and its stack traces would be one long line.
// The unbundled dist/src/cli/marco.js stays importable (tests call its main()).
import { build } from 'esbuild';
import { Buffer } from 'node:buffer';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const root = path.resolve(import.meta.dirname, '..');
const bin = path.join(root, 'dist', 'bin');
const bundle = path.join(bin, 'marco.bundle.cjs');
const cache = path.join(bin, 'marco.bundle.cache');
const loader = path.join(bin, 'marco.cjs');

await build({
  entryPoints: [path.join(root, 'dist', 'src', 'cli', 'marco.js')],
  outfile: bundle,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // import.meta.url, which CommonJS lacks, is this file's URL (runIfMain and packageVersion use
  // it). The banner goes before esbuild's own "use strict", so it repeats it: the code was
  // written as modules, which are strict.
  banner: { js: "'use strict';\nconst import_meta_url = require('node:url').pathToFileURL(__filename).href;" },
  define: { 'import.meta.url': 'import_meta_url' },
  logLevel: 'warning',
  plugins: [
    {
      name: 'subcommands-on-demand',
      setup(b) {
        // marco.ts imports them as `(await import('./doctor.js')).main(...)`. Code compiled by
        // node:vm, as the bundle is, cannot use import() in Node 20 (it needs
        // --experimental-vm-modules, and a cached script loses even the experimental loader),
        // so each becomes a small module of the bundle whose main() has the loader import the
        // real one, from dist/bin ../src/cli/*, and calls its main().
        b.onResolve({ filter: /^\.\/(doctor|dashboard)\.js$/ }, (args) => ({ path: args.path.slice(2), namespace: 'on-demand' }));
        b.onLoad({ filter: /.*/, namespace: 'on-demand' }, (args) => ({
          contents: `export function main(...args) { return importFromLoader('../src/cli/${args.path}').then((m) => m.main(...args)); }`,
          loader: 'js',
        }));
      },
    },
  ],
});
// The loader wraps the bundle in a function, where a `#!` line would be a syntax error; the
// bundle is never run directly.
const text = readFileSync(bundle, 'utf8').replace(/^#!.*\n/, '');
if (/\bimport\(/.test(text)) throw new Error('bundle-marco: the bundle calls import(), which fails in code compiled by node:vm; import through the loader');
writeFileSync(bundle, text);
chmodSync(bundle, 0o644);
copyFileSync(path.join(root, 'scripts', 'marco-loader.cjs'), loader);
rmSync(cache, { force: true });
await writeCodeCache();

/**
 * Loads the command through its loader in this process, runs `marco discover` against one
 * answering node on an in-memory network (no socket is opened), and saves the code V8 compiled
 * for it. Then checks that a fresh Node process takes the cache (it is refused when this
 * process's V8 flags differ from a plain `node`'s, e.g. through NODE_OPTIONS).
 */
async function writeCodeCache() {
  const marco = createRequire(import.meta.url)(loader);
  const { MemoryNetwork } = await import(pathToFileURL(path.join(root, 'dist', 'src', 'transport', 'memory.js')).href);
  const net = new MemoryNetwork();
  const polo = await net.host('192.0.2.2').bindGroup('224.0.0.112', 1337, (_data, from) => {
    void polo.send(Buffer.from(JSON.stringify({ Command: 'Polo', Params: { hostname: 'build' } })), from.port, from.address);
  });
  polo.join();
  let out = '';
  const io = { stdout: { write: (s) => void (out += s) }, stderr: { write: (s) => void (out += s) } };
  const code = await marco.main(['discover', '--max-nodes', '1', '--timeout', '10000'], io, { transport: net.host('192.0.2.1') });
  if (code !== 0) throw new Error(`bundle-marco: the training query failed (exit ${code}): ${out}`);
  await polo.close();
  writeFileSync(cache, marco.codeCache.create());
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const check = spawnSync(process.execPath, ['-e', `process.stdout.write(require(${JSON.stringify(loader)}).codeCache.status)`], { env, encoding: 'utf8' });
  if (check.stdout !== 'accepted') console.warn(`bundle-marco: a fresh node did not take the code cache (${check.stdout || check.stderr}); marco works, only starts slower`);
}
