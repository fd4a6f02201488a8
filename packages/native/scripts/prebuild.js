#!/usr/bin/env node
'use strict'

// Builds the prebuilt binary of one target, on this (Linux x64) machine, without node-gyp:
//
//   node scripts/prebuild.js linux-x64      prebuilds/linux-x64/iocp.napi.glibc.node    (g++)
//   node scripts/prebuild.js linux-arm64    prebuilds/linux-arm64/iocp.napi.glibc.node  (aarch64-linux-gnu-g++)
//   node scripts/prebuild.js win32-x64      prebuilds/win32-x64/iocp.napi.node          (x86_64-w64-mingw32-g++-posix)
//   node scripts/prebuild.js all            the three
//
// Every target compiles against the Node-API headers of the `node-api-headers` package (not the
// headers of whichever node runs this script): the addon uses Node-API only, whose ABI is the same
// for every Node version that has its NAPI_VERSION, so one set of headers fits all and nothing is
// looked for or downloaded. Windows links Node-API through an import library made from that
// package's node_api.def (the functions are exported by node.exe).
//
// What to compile, with which defines, flags and libraries, comes from binding.gyp (see
// gyp-target.js): binding.gyp is the one list for node-gyp and for these builds. What is here is
// only how each toolchain makes a shared library. $CXX_<target> (e.g. CXX_linux_arm64) overrides
// the compiler of a target.
//
// The file names carry node-gyp-build's tags (`napi`, and `glibc` on Linux), so that the loader
// picks them on the right platform only; a musl Linux, for example, falls back to compiling.

const fs = require('fs')
const path = require('path')
const { spawn, spawnSync } = require('child_process')
const { gypTarget } = require('./gyp-target')
const { PREBUILD_FILES } = require('../load')

const pkgDir = path.resolve(__dirname, '..')
const hostCxx = (arch) => (process.platform === 'linux' && process.arch === arch ? 'g++' : null)

const TARGETS = {
  'linux-x64': {
    platform: 'linux',
    cxx: hostCxx('x64') || 'x86_64-linux-gnu-g++',
    file: PREBUILD_FILES['linux-x64'],
    debian: 'g++',
  },
  'linux-arm64': {
    platform: 'linux',
    cxx: hostCxx('arm64') || 'aarch64-linux-gnu-g++',
    file: PREBUILD_FILES['linux-arm64'],
    debian: 'g++-aarch64-linux-gnu',
  },
  'win32-x64': {
    platform: 'win32',
    cxx: 'x86_64-w64-mingw32-g++-posix',
    dlltool: 'x86_64-w64-mingw32-dlltool',
    file: PREBUILD_FILES['win32-x64'],
    debian: 'g++-mingw-w64-x86-64',
  },
}

// How each toolchain makes a loadable Node-API module (not project settings: those are in
// binding.gyp). Linux: position-independent, libstdc++ and libgcc linked in so the binary does not
// depend on the builder's libstdc++ version. Windows: everything static (no libstdc++-6.dll or
// libwinpthread-1.dll to ship), Node-API imported from node.exe.
const COMPILE = {
  linux: ['-fPIC'],
  win32: ['-D_WIN32_WINNT=0x0A00', '-DWIN32_LEAN_AND_MEAN', '-DNOMINMAX'],
}
const LINK = {
  linux: ['-shared', '-static-libstdc++', '-static-libgcc', '-s'],
  win32: ['-shared', '-static', '-s'],
}

function log (msg) {
  process.stderr.write(`@iocp/native prebuild: ${msg}\n`)
}

function run (file, argv) {
  return new Promise((resolve, reject) => {
    const child = spawn(file, argv, { cwd: pkgDir, stdio: ['ignore', 'inherit', 'inherit'] })
    child.on('error', (error) => reject(new Error(`could not run ${file}: ${error.message}`)))
    child.on('exit', (code, signal) => {
      if (code === 0) resolve()
      else reject(new Error(`${file} ${argv.slice(-3).join(' ')} failed (${signal || `exit ${code}`})`))
    })
  })
}

function requireTool (tool, debian) {
  const r = spawnSync(tool, ['--version'], { stdio: 'ignore' })
  if (r.error) throw new Error(`${tool} is not on PATH (Debian/Ubuntu: apt-get install ${debian})`)
}

async function build (name) {
  const t = TARGETS[name]
  const cxx = process.env[`CXX_${name.replace('-', '_')}`] || t.cxx
  requireTool(cxx, t.debian)
  const started = Date.now()
  const gyp = gypTarget(path.join(pkgDir, 'binding.gyp'), 'iocp', t.platform)
  const headers = require(require.resolve('node-api-headers', { paths: [pkgDir] }))
  // not under build/: node-gyp rebuild deletes that
  const work = path.join(pkgDir, 'build-cross', name)
  fs.rmSync(work, { recursive: true, force: true })
  fs.mkdirSync(work, { recursive: true })

  const compileFlags = [
    ...gyp.cflags, ...gyp.cflags_cc, ...COMPILE[t.platform],
    '-DNODE_GYP_MODULE_NAME=iocp', '-DBUILDING_NODE_EXTENSION',
    ...gyp.defines.map((d) => `-D${d}`),
    `-I${headers.include_dir}`, ...gyp.include_dirs.map((d) => `-I${d}`),
  ]
  // two at a time: enough for the two cores this is built on, and a failure shows up early
  const objects = []
  const queue = gyp.sources.map((src, i) => ({ src, obj: path.join(work, `${i}-${path.basename(src, path.extname(src))}.o`) }))
  const worker = async () => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      await run(cxx, [...compileFlags, '-c', job.src, '-o', job.obj])
      objects.push(job.obj)
    }
  }
  await Promise.all([worker(), worker()])
  objects.sort()

  const linkInputs = [...objects]
  if (t.platform === 'win32') {
    requireTool(t.dlltool, t.debian)
    const implib = path.join(work, 'libnode_api.a')
    await run(t.dlltool, ['-d', headers.def_paths.node_api_def, '-l', implib, '-D', 'node.exe'])
    linkInputs.push(implib)
  }
  const outDir = path.join(pkgDir, 'prebuilds', name)
  fs.rmSync(outDir, { recursive: true, force: true })
  fs.mkdirSync(outDir, { recursive: true })
  const out = path.join(outDir, t.file)
  await run(cxx, ['-o', out, ...linkInputs, ...LINK[t.platform], ...gyp.ldflags, ...gyp.libraries])
  const kib = (fs.statSync(out).size / 1024).toFixed(0)
  log(`${path.relative(pkgDir, out)} (${kib} KiB, ${((Date.now() - started) / 1000).toFixed(1)} s, ${cxx})`)
}

async function main () {
  const wanted = process.argv.slice(2)
  const names = wanted.includes('all') ? Object.keys(TARGETS) : wanted
  if (names.length === 0 || names.some((n) => !TARGETS[n])) {
    log(`usage: node scripts/prebuild.js <${Object.keys(TARGETS).join('|')}|all>...`)
    process.exit(2)
  }
  for (const name of names) await build(name)
}

main().catch((error) => {
  log(error.message)
  process.exit(1)
})
