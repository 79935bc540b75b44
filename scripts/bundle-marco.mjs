#!/usr/bin/env node
// Bundles the compiled `marco` command (dist/src/cli/marco.js) into one CommonJS file,
// dist/bin/marco.cjs, the file package.json's "bin" runs. marco's run time is mostly start-up:
// Node's ES module loader costs about 3 ms before the first line runs, plus about half a
// millisecond per file it loads, and a CommonJS file of one piece pays neither. The unbundled
// dist/src/cli/marco.js stays importable (tests call its main()). See BENCHMARKS.md, "marco
// start-up". `marco doctor` and `marco dashboard` stay out of the bundle: they are imported from
// dist/src/cli/ when used, so a query does not parse their code (about 2 ms of start-up).
import { build } from 'esbuild';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
await build({
  entryPoints: [path.join(root, 'dist', 'src', 'cli', 'marco.js')],
  outfile: path.join(root, 'dist', 'bin', 'marco.cjs'),
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
        // marco.ts imports them as `import('./doctor.js')`: from dist/bin they are ../src/cli/*.
        b.onResolve({ filter: /^\.\/(doctor|dashboard)\.js$/ }, (args) => ({ path: `../src/cli/${args.path.slice(2)}`, external: true }));
      },
    },
  ],
});
