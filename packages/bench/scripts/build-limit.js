#!/usr/bin/env node
// Builds the C++ driver (native/limit.cpp + the engine, every .cpp in ../native/src/port) into
// build/limit: a plain C++ program, no Node, compiled with the flags the addon uses (-O2,
// C++17, -pthread). Skips the build when the binary is newer than every source.
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
const output = join(pkgDir, 'build', process.platform === 'win32' ? 'limit.exe' : 'limit')
// Every engine source (the engine is plain C++: its .cpp files are the whole of it).
const sources = [join(pkgDir, 'native', 'limit.cpp'), ...readdirSync(engineDir).filter((f) => f.endsWith('.cpp')).map((f) => join(engineDir, f))]
const inputs = [...sources, ...readdirSync(engineDir).filter((f) => f.endsWith('.h')).map((f) => join(engineDir, f))]

function log(message) {
  process.stderr.write(`@iocp/bench: ${message}\n`)
}

function stale() {
  if (!existsSync(output)) return true
  const built = statSync(output).mtimeMs
  return inputs.some((file) => statSync(file).mtimeMs > built)
}

if (!process.argv.includes('--force') && !stale()) process.exit(0)

mkdirSync(dirname(output), { recursive: true })
const flags = ['-O2', '-DNDEBUG', '-std=c++17', '-pthread', '-o', output, ...sources]
const compilers = process.env.CXX ? [process.env.CXX] : ['g++', 'clang++']
const tried = []
for (const cxx of compilers) {
  const result = spawnSync(cxx, flags, { stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8' })
  if (result.error) {
    tried.push(`${cxx}: ${result.error.message}`)
    continue
  }
  if (result.status === 0) {
    log(`built ${output} (${cxx} ${flags.slice(0, 4).join(' ')})`)
    process.exit(0)
  }
  process.stderr.write(result.stderr)
  log(`${cxx} failed to build the C++ driver (exit ${result.status})`)
  process.exit(1)
}
log(`no C++ compiler found to build the C++ driver (${tried.join('; ')}); set CXX`)
process.exit(1)
