#!/usr/bin/env node
// The installed `marco` command: scripts/bundle-marco.mjs copies this file to dist/bin/marco.cjs,
// next to the bundled command (marco.bundle.cjs) and a V8 code cache of it (marco.bundle.cache).
//
// Why a loader: Node 20's CommonJS loader compiles a file from scratch on every run, and V8
// compiles each function lazily, on its first call. For a command that runs for a few
// milliseconds, that compiling is a large share of its own start-up (see BENCHMARKS.md, "marco
// start-up"). Compiled through vm.Script with cachedData, the bundle's top level and every
// function a query called when the build ran it (scripts/bundle-marco.mjs) come out of the
// cache instead. V8 checks the cache against the source, its own version and its flags and
// silently compiles as usual when the cache does not match (a Node upgraded after the build,
// other V8 flags), so a stale or missing cache costs time, never behaviour.
'use strict';
const { readFileSync } = require('node:fs');
const vm = require('node:vm');

const BUNDLE = `${__dirname}/marco.bundle.cjs`;
const CACHE = `${__dirname}/marco.bundle.cache`;

let cachedData;
try {
  cachedData = readFileSync(CACHE);
} catch {
  // No cache (a build that could not make one): compile as usual.
}
// The wrapper Node's CommonJS loader puts around a file, plus importFromLoader: code compiled by
// node:vm cannot call import() in Node 20, so the bundle imports `marco doctor` and `marco
// dashboard` through this file (scripts/bundle-marco.mjs).
const script = new vm.Script(`(function (exports, require, module, __filename, __dirname, importFromLoader) {${readFileSync(BUNDLE, 'utf8')}\n})`, {
  filename: BUNDLE,
  cachedData,
});
// The bundle runs as this file: its import.meta.url is this file's URL, so it knows it is the
// program being run (runIfMain in src/cli/common.ts) and finds package.json from here.
script.runInThisContext()(module.exports, require, module, __filename, __dirname, (specifier) => import(specifier));

// For the build (which writes the cache after a training run) and the tests (which check that
// this Node takes the cache): not part of marco's library interface.
Object.defineProperty(module.exports, 'codeCache', {
  value: {
    status: cachedData === undefined ? 'missing' : script.cachedDataRejected === true ? 'rejected' : 'accepted',
    create: () => script.createCachedData(),
  },
});
