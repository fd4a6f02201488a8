#!/usr/bin/env node
// Builds @iocp/core's runtime JavaScript with esbuild; tsc emits only the declarations.
//
//   dist/core.cjs          every module of src/, in one CommonJS file (src/bundle.ts)
//   dist/loader.cjs        loads core.cjs once per thread, with the process's V8 code cache in a
//                          thread that is not the main one (src/loader.cts)
//   dist/index.js          the package's ES entry: re-exports the public names of core.cjs
//   dist/worker-entry.cjs  the file Piscina loads in a pool's workers (src/pool/worker/entry.cts):
//                          it runs dist/worker-start.cjs (src/pool/worker/start.cts) with the
//                          V8 code cache dist/worker-start-v8-<V8 version>.cache, made here
//
// Why one file: a PortPool worker is a new thread that loads the package from scratch. As thirty
// ES modules that took it ~45 ms under load (resolving, reading and linking each, and starting
// Node's ES module loader at all); one CommonJS file takes a fraction of that, and the pool's
// first result comes sooner by as much. Why CommonJS under an ES entry: the main thread imports
// '@iocp/core' as before and gets the same module instance (loader.cjs's) as the workers'
// require, so the package's per-thread state (thread-state.ts) exists once per thread.
//
// esbuild rather than hand-concatenation or tsc's outFile (which cannot emit modules as one
// CommonJS file with node: imports kept): it is small, fast (~100 ms here) and well kept.
// Run after `tsc -b` (the root scripts do); it removes JavaScript that older builds left in
// dist/ so that nothing can load a stale per-file module, and the declarations of sources that
// no longer exist (tsc -b leaves them, and the package would ship them).
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Script } from 'node:vm'
import { build } from 'esbuild'

const root = fileURLToPath(new URL('..', import.meta.url))
const dist = join(root, 'dist')
const OUTPUTS = new Set([
  'core.cjs',
  'core.cjs.map',
  'loader.cjs',
  'loader.cjs.map',
  'index.js',
  'worker-entry.cjs',
  'worker-entry.cjs.map',
  'worker-start.cjs',
  'worker-start.cjs.map',
  `worker-start-v8-${process.versions.v8}.cache`,
])
/** The bundle's export that is not API: the workers' entry takes it (src/bundle.ts). */
const INTERNAL = new Set(['startPoolLoop', 'setCodeCacheSharer', 'setDynamicImport'])

/** A declaration file (tsc's, or cjs-types.mjs's copy of it) whose source is gone: tsc -b leaves those. */
function orphanDeclaration(file) {
  const declared = /^(.*)\.d\.c?ts(\.map)?$/.exec(relative(dist, file))
  if (declared === null) return false
  return !['.ts', '.cts'].some((ext) => existsSync(join(root, 'src', `${declared[1]}${ext}`)))
}

function* stale(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = join(dir, entry.name)
    if (entry.isDirectory()) yield* stale(file)
    else if (/\.(c?js)(\.map)?$|\.cache$/.test(entry.name) && !OUTPUTS.has(relative(dist, file))) yield file
    else if (orphanDeclaration(file)) yield file
  }
}
for (const file of stale(dist)) rmSync(file)

const common = {
  absWorkingDir: root,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: 'linked',
  sourcesContent: false,
  charset: 'ascii',
  logLevel: 'warning',
}

await build({
  ...common,
  entryPoints: ['src/bundle.ts'],
  outfile: 'dist/core.cjs',
  bundle: true,
  packages: 'external',
  // The sources use import.meta.url (createRequire, the worker entry's path); in the CommonJS
  // bundle it is this file's URL.
  define: { 'import.meta.url': 'bundleUrl' },
  // ('use strict' first: esbuild's own comes after the banner, where it is no directive.)
  banner: { js: "'use strict';\nconst bundleUrl = require('node:url').pathToFileURL(__filename).href;" },
})

// The loader reads the bundle as latin1 (faster than UTF-8, and V8 keeps it one byte per
// character), which equals UTF-8 only for ASCII. esbuild escapes every other character of the
// code (charset: 'ascii') but keeps comments as written: there, each one becomes '?', as many
// as its UTF-16 length, so that no column of the source map moves.
const bundled = readFileSync(join(dist, 'core.cjs'), 'utf8')
writeFileSync(join(dist, 'core.cjs'), bundled.replace(/[^\x00-\x7f]/gu, (char) => '?'.repeat(char.length)))

// What the workers run carries what a boot task needs (src/pool/worker/boot-task.ts: the task
// module's loading, the codec, the task context), and takes the rest from the bundle through
// ./loader.cjs, when the start needs it.
await build({
  ...common,
  entryPoints: ['src/pool/worker/start.cts'],
  outfile: 'dist/worker-start.cjs',
  bundle: true,
  packages: 'external',
  external: ['./loader.cjs'],
  // Less to compile for a new worker (names are kept, for stack traces; the source map has the rest).
  minifyWhitespace: true,
  minifySyntax: true,
})
const workerStart = join(dist, 'worker-start.cjs')
writeFileSync(workerStart, readFileSync(workerStart, 'utf8').replace(/[^\x00-\x7f]/gu, (char) => '?'.repeat(char.length)))
await build({ ...common, entryPoints: ['src/pool/worker/entry.cts'], outfile: 'dist/worker-entry.cjs' })
// The code cache that dist/worker-entry.cjs compiles worker-start.cjs with (see
// src/pool/worker/entry.cts): made by the Node that builds, from the source wrapped exactly as
// the entry wraps it (test/pool/worker-start-cache.test.ts checks that a worker uses it).
const WRAPPER = ['(function (exports, require, module, __filename, __dirname, __import) {', '\n})']
const startScript = new Script(`${WRAPPER[0]}${readFileSync(workerStart, 'latin1')}${WRAPPER[1]}`, { filename: workerStart })
writeFileSync(join(dist, `worker-start-v8-${process.versions.v8}.cache`), startScript.createCachedData())
await build({ ...common, entryPoints: ['src/loader.cts'], outfile: 'dist/loader.cjs' })

// esbuild lists an output's export names only for ES output: the same entry, as ESM, unwritten.
const listed = await build({ ...common, entryPoints: ['src/bundle.ts'], outfile: 'dist/names.mjs', format: 'esm', bundle: true, packages: 'external', metafile: true, write: false, sourcemap: false })
const names = listed.metafile.outputs['dist/names.mjs'].exports.filter((name) => !INTERNAL.has(name)).sort()
if (names.length === 0) throw new Error('bundle: dist/core.cjs exports nothing')
writeFileSync(
  join(dist, 'index.js'),
  `// Generated by scripts/bundle.mjs: the public API, from the one bundle (see there).\nexport {\n${names.map((n) => `  ${n},`).join('\n')}\n} from './loader.cjs'\n`,
)
// loader.cjs's exports are the bundle's, set at run time; Node finds a CommonJS module's names
// for an ES import by reading its source, so they are written out (as esbuild does for its own).
const loader = readFileSync(join(dist, 'loader.cjs'), 'utf8')
const mapComment = /\n\/\/# sourceMappingURL=.*\n?$/.exec(loader)
writeFileSync(
  join(dist, 'loader.cjs'),
  `${loader.slice(0, mapComment?.index ?? loader.length)}\n// The bundle's public names, for Node's ES module loader.\n0 && (module.exports = { ${names.join(', ')} });${mapComment?.[0] ?? ''}`,
)
console.log(`bundle: dist/core.cjs (${names.length} exports), dist/index.js, dist/worker-entry.cjs, dist/worker-start.cjs (+ .cache)`)
