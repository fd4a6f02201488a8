'use strict'

// Finds and loads the addon's binary. Order:
//   1. $IOCP_NATIVE_ADDON, an explicit .node file (CI runs the suites against an
//      AddressSanitizer build this way, see .ci/run);
//   2. build/Release/iocp.node, when this package was compiled here (from source, or in the
//      repository);
//   3. prebuilds/<platform>-<arch>/, the binary whose tags (napi, glibc/musl) fit this process:
//      node-gyp-build's lookup, which prebuild.js names its files for.
// When none fits, or the one that fits does not load, the error says what to install and how to
// compile. Compiling is never attempted here: a require() must not run a compiler.
const fs = require('fs')
const path = require('path')

const PREBUILT = 'linux-x64 (glibc), linux-arm64 (glibc), win32-x64'
// The file each prebuilt target has in prebuilds/<target>/ (scripts/prebuild.js writes them,
// scripts/check-prebuilds.js checks them). The names carry node-gyp-build's tags: napi, and glibc
// on Linux.
const PREBUILD_FILES = {
  'linux-x64': 'iocp.napi.glibc.node',
  'linux-arm64': 'iocp.napi.glibc.node',
  'win32-x64': 'iocp.napi.node',
}

function howToCompile () {
  const toolchain = {
    linux: 'a C++17 compiler, make and python3 (Debian/Ubuntu: apt-get install build-essential python3; Alpine: apk add build-base python3; Fedora: dnf install gcc-c++ make python3)',
    darwin: 'the Xcode Command Line Tools (xcode-select --install) and python3',
    win32: 'Visual Studio Build Tools with the "Desktop development with C++" workload, and python3',
  }[process.platform] || 'a C++17 compiler, make and python3'
  return `To compile it from source, install ${toolchain}, then run \`npm rebuild @iocp/native\` ` +
    '(with pnpm: allow its build script, `allowBuilds: { "@iocp/native": true }` in pnpm-workspace.yaml, ' +
    'then `pnpm rebuild @iocp/native`).'
}

function describeProcess () {
  let libc = ''
  if (process.platform === 'linux') {
    const report = process.report && process.report.getReport && process.report.getReport()
    libc = report && report.header && report.header.glibcVersionRuntime ? ` glibc ${report.header.glibcVersionRuntime}` : ' (not glibc)'
  }
  return `${process.platform}-${process.arch}${libc}, Node ${process.versions.node} (Node-API ${process.versions.napi})`
}

function noBinary (cause, file) {
  const what = file
    ? `@iocp/native: the binary ${file} does not load on ${describeProcess()}: ${cause && cause.message}`
    : `@iocp/native: no binary of the addon fits ${describeProcess()}; prebuilt binaries exist for ${PREBUILT}.`
  const error = new Error(`${what}\n${howToCompile()}`, { cause })
  error.code = 'ERR_IOCP_NATIVE_NO_BINARY'
  return error
}

/**
 * The prebuild that node-gyp-build would pick in this process, if it is there: looked for first,
 * because node-gyp-build's lookup (loading it, a directory scan, parsing the tags) costs
 * milliseconds in every new thread, and each PortPool worker loads the addon on its way to its
 * first task. Its libc test is node-gyp-build's ($LIBC, else musl where /etc/alpine-release exists).
 */
function expectedPrebuild (dir) {
  const target = `${process.platform}-${process.arch}`
  const name = PREBUILD_FILES[target]
  if (name === undefined) return undefined
  if (process.platform === 'linux') {
    const libc = process.env.LIBC || (fs.existsSync('/etc/alpine-release') ? 'musl' : 'glibc')
    if (libc !== 'glibc') return undefined
  }
  const file = path.join(dir, 'prebuilds', target, name)
  return fs.existsSync(file) ? file : undefined
}

/** The addon's exports; throws ERR_IOCP_NATIVE_NO_BINARY with what to do when nothing loads. */
function loadAddon (dir) {
  if (process.env.IOCP_NATIVE_ADDON) return require(process.env.IOCP_NATIVE_ADDON)
  // build/Release is looked for here, not through node-gyp-build: requiring that package is a
  // module resolution and three files more for every new thread, and each PortPool worker loads
  // the addon on its way to its first task.
  let file = path.join(dir, 'build', 'Release', 'iocp.node')
  try {
    if (!fs.existsSync(file)) file = expectedPrebuild(dir) || require('node-gyp-build').resolve(dir)
  } catch (error) {
    throw noBinary(error)
  }
  try {
    return require(file)
  } catch (error) {
    throw noBinary(error, path.relative(dir, file))
  }
}

module.exports = { loadAddon, howToCompile, describeProcess, PREBUILT, PREBUILD_FILES }
