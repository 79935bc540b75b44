#!/usr/bin/env node
// Runs every compiled test file (unit, component, integration) in one node:test run, so the
// closing summary counts them all. Integration tests build network namespaces and need root;
// under CI they fail rather than skip when that is impossible (see test/helpers/netns.ts).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..', 'dist', 'test');
const only = process.argv.slice(2);

function collect(dir) {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const full = path.join(dir, name);
      if (statSync(full).isDirectory()) return name === 'helpers' ? [] : collect(full);
      return name.endsWith('.test.js') ? [full] : [];
    });
}

const files = collect(root).filter((f) => only.length === 0 || only.some((o) => f.includes(o)));
if (files.length === 0) {
  console.error('run-tests: no test files found under dist/test (did the build run?)');
  process.exit(1);
}
// Integration files share the machine's CPU and real sockets: run files one or two at a time.
const result = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
