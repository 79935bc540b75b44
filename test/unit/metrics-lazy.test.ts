/**
 * prom-client is loaded only when a daemon is given --metrics: no static import chain leads to
 * it from the commands, so polod's memory and the commands' start-up do not pay for it
 * (src/daemon/polod.ts and src/daemon/marcod.ts import the metrics modules dynamically).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The compiled sources (this file runs as dist/test/unit/metrics-lazy.test.js). */
const SRC = path.resolve(here, '..', '..', 'src');

/** Every package a module reaches through static imports (relative ones followed). */
function staticPackages(entry: string): Set<string> {
  const packages = new Set<string>();
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    // tsc keeps static imports and re-exports as `import … from '…'` / `export … from '…'`
    // statements; `import('…')` (dynamic) has no `from`.
    for (const m of text.matchAll(/^(?:import|export)\s[^;]*?\sfrom\s+'([^']+)';/gms)) {
      const spec = m[1] ?? '';
      if (spec.startsWith('.')) visit(path.resolve(path.dirname(file), spec));
      else packages.add(spec);
    }
  };
  visit(entry);
  return packages;
}

test('the daemons reach prom-client only through a dynamic import', () => {
  for (const command of ['polod', 'marcod']) {
    const packages = staticPackages(path.join(SRC, 'cli', `${command}.js`));
    assert.ok(packages.has('commander'), `${command}: the import scan found its flag parser`);
    assert.ok(!packages.has('prom-client'), `${command} loads prom-client at start`);
  }
  // …and the metrics modules do reach it (the scan sees it when it is there).
  assert.ok(staticPackages(path.join(SRC, 'metrics', 'polod.js')).has('prom-client'));
  assert.ok(staticPackages(path.join(SRC, 'metrics', 'marcod.js')).has('prom-client'));
});
