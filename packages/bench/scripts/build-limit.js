#!/usr/bin/env node
// Builds the C++ drivers: build/limit (native/limit.cpp + the engine, every .cpp in
// ../native/src/port) and build/io-limit (native/io-limit.cpp), each a plain C++
// program, no Node, compiled with the flags the addon uses (-O2, C++17, -pthread). Skips a build
// when its binary is newer than every source.
//
//   node scripts/build-limit.js            build if stale
//   node scripts/build-limit.js --force    always build
//
// The compiler is $CXX, else g++, else clang++. Exit status 1 with a message if none works.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const pkgDir = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const engineDir = resolve(pkgDir, '..', 'native', 'src', 'port')
const exe = (name) => join(pkgDir, 'build', process.platform === 'win32' ? `${name}.exe` : name)
// The engine's limit, and the io scenario's (native/io-limit.cpp: a pread loop, raw io_uring,
// the mincore residency probe; no engine code).
const targets = [
  {
    output: exe('limit'),
    sources: [join(pkgDir, 'native', 'limit.cpp'), ...readdirSync(engineDir).filter((f) => f.endsWith('.cpp')).map((f) => join(engineDir, f))],
    headers: readdirSync(engineDir).filter((f) => f.endsWith('.h')).map((f) => join(engineDir, f)),
  },
  { output: exe('io-limit'), sources: [join(pkgDir, 'native', 'io-limit.cpp')], headers: [] },
]

function log(message) {
  process.stderr.write(`@iocp/bench: ${message}\n`)
}

function stale({ output, sources, headers }) {
  if (!existsSync(output)) return true
  const built = statSync(output).mtimeMs
  return [...sources, ...headers].some((file) => statSync(file).mtimeMs > built)
}

const compilers = process.env.CXX ? [process.env.CXX] : ['g++', 'clang++']
for (const target of targets) {
  if (!process.argv.includes('--force') && !stale(target)) continue
  mkdirSync(dirname(target.output), { recursive: true })
  const flags = ['-O2', '-DNDEBUG', '-std=c++17', '-pthread', '-o', target.output, ...target.sources]
  const tried = []
  let built = false
  for (const cxx of compilers) {
    const result = spawnSync(cxx, flags, { stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8' })
    if (result.error) {
      tried.push(`${cxx}: ${result.error.message}`)
      continue
    }
    if (result.status === 0) {
      log(`built ${target.output} (${cxx} ${flags.slice(0, 4).join(' ')})`)
      built = true
      break
    }
    process.stderr.write(result.stderr)
    log(`${cxx} failed to build ${target.output} (exit ${result.status})`)
    process.exit(1)
  }
  if (!built) {
    log(`no C++ compiler found to build the C++ driver (${tried.join('; ')}); set CXX`)
    process.exit(1)
  }
}
