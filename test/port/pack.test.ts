// The packages as they would be published: `pnpm pack` of @iocp/native (with its prebuilt
// binaries) and @iocp/core. The tarballs carry what a user needs and nothing else, install into a
// fresh project outside the workspace with install scripts off and no compiler on PATH, work
// there from ESM and from require(), and their types resolve for every TypeScript module mode.
// (test/platform/run.mjs goes further on each target: the suites under the target's node.)
import { execFileSync, spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, posix } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../..', import.meta.url))
const nativeDir = join(root, 'packages/native')
const require = createRequire(import.meta.url)
const { checkPrebuilds, EXPECTED } = require(join(nativeDir, 'scripts/check-prebuilds.js')) as {
  checkPrebuilds(dir: string): string[]
  EXPECTED: Record<string, string>
}
const COMPILERS: Record<string, string> = {
  'linux-x64': process.arch === 'x64' ? 'g++' : 'x86_64-linux-gnu-g++',
  'linux-arm64': process.arch === 'arm64' ? 'g++' : 'aarch64-linux-gnu-g++',
  'win32-x64': 'x86_64-w64-mingw32-g++-posix',
}
const host = `${process.platform}-${process.arch}`

const scratch = mkdtempSync(join(tmpdir(), 'iocp-pack-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync(command, args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

interface Tarball {
  dir: string // extracted: <dir>/package/...
  files: string[] // paths inside package/
  pkg: Record<string, unknown>
}
const tarballs: Record<'native' | 'core', Tarball & { tgz: string }> = {} as never

beforeAll(() => {
  // Every target whose compiler is here gets its prebuild made if it is missing; CI has all three.
  for (const [target, cxx] of Object.entries(COMPILERS)) {
    const file = Object.keys(EXPECTED).find((f) => f.startsWith(`${target}/`))!
    if (existsSync(join(nativeDir, 'prebuilds', file))) continue
    if (spawnSync(cxx, ['--version'], { stdio: 'ignore' }).error) continue
    run(process.execPath, ['scripts/prebuild.js', target], nativeDir)
  }
  for (const [name, dir] of [['native', nativeDir], ['core', join(root, 'packages/core')]] as const) {
    const before = new Set(readdirSync(scratch))
    run('pnpm', ['pack', '--pack-destination', scratch], dir)
    const tgz = join(scratch, readdirSync(scratch).find((f) => f.endsWith('.tgz') && !before.has(f))!)
    const out = join(scratch, `x-${name}`)
    mkdirSync(out)
    run('tar', ['-xzf', tgz, '-C', out], scratch)
    const files = run('tar', ['-tzf', tgz], scratch).trim().split('\n').map((f) => f.replace(/^package\//, ''))
    const pkg = JSON.parse(readFileSync(join(out, 'package/package.json'), 'utf8')) as Record<string, unknown>
    tarballs[name] = { tgz, dir: join(out, 'package'), files, pkg }
  }
}, 240_000)

describe('packed tarballs', () => {
  it('each carries the MIT LICENSE, a README and the metadata a registry shows', () => {
    const license = readFileSync(join(root, 'LICENSE'), 'utf8')
    for (const t of Object.values(tarballs)) {
      expect(readFileSync(join(t.dir, 'LICENSE'), 'utf8')).toBe(license)
      expect(t.files).toContain('README.md')
      expect(t.pkg).toMatchObject({
        license: 'MIT',
        repository: { type: 'git', url: expect.stringContaining('node-iocp') },
        bugs: { url: expect.stringContaining('/issues') },
        homepage: expect.stringContaining('node-iocp'),
        engines: { node: '^20.19.0 || >=22.12.0' },
      })
      expect((t.pkg.keywords as string[]).length).toBeGreaterThan(2)
    }
    expect(license).toMatch(/^MIT License/)
  })

  it('ship no tests, no build output of a local compile, and no node-gyp at run time', () => {
    for (const t of Object.values(tarballs)) {
      expect(t.files.filter((f) => /(^|\/)(test|tests|__tests__|cctest|fixtures)\/|\.test\.[cm]?[jt]s$/.test(f))).toEqual([])
      expect(t.files.filter((f) => f.startsWith('build/') || f.endsWith('.tsbuildinfo'))).toEqual([])
    }
    const deps = tarballs.native.pkg.dependencies as Record<string, string>
    expect(Object.keys(deps).sort()).toEqual(['node-addon-api', 'node-gyp-build'])
  })

  it('ship no dangling source maps: every map and every sourceMappingURL points at a shipped file', () => {
    for (const t of Object.values(tarballs)) {
      const shipped = new Set(t.files)
      const dangling: string[] = []
      for (const f of t.files) {
        if (f.endsWith('.map')) {
          const map = JSON.parse(readFileSync(join(t.dir, f), 'utf8')) as { sources: string[]; file?: string }
          for (const s of map.sources) {
            const target = posix.normalize(posix.join(posix.dirname(f), s))
            if (!shipped.has(target)) dangling.push(`${f} -> ${target}`)
          }
        } else if (/\.(c|m)?js$|\.d\.(c|m)?ts$/.test(f)) {
          const m = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(readFileSync(join(t.dir, f), 'utf8'))
          if (m) {
            const target = posix.normalize(posix.join(posix.dirname(f), m[1]!))
            if (!shipped.has(target)) dangling.push(`${f} -> ${target}`)
          }
        }
      }
      expect(dangling).toEqual([])
    }
    // @iocp/core's runtime is one bundle (packages/core/scripts/bundle.mjs), mapped to src/.
    expect(tarballs.core.files).toContain('dist/core.cjs.map')
  })

  it('@iocp/native carries a prebuilt binary for each target, made for its machine', () => {
    const problems = checkPrebuilds(join(tarballs.native.dir, 'prebuilds'))
    // Outside CI a target whose cross compiler is not installed may be missing; the host never is.
    const relevant = process.env.CI ? problems : problems.filter((p) => p.includes(host))
    expect(relevant).toEqual([])
    expect(tarballs.native.files).toContain(`prebuilds/${Object.keys(EXPECTED).find((f) => f.startsWith(`${host}/`))}`)
  })

  describe('in a fresh project installed with --ignore-scripts and no compiler on PATH', () => {
    const app = join(scratch, 'app')
    beforeAll(() => {
      const bin = join(scratch, 'bin')
      mkdirSync(bin)
      symlinkSync(process.execPath, join(bin, 'node'))
      symlinkSync(run('sh', ['-c', 'command -v npm'], scratch).trim(), join(bin, 'npm'))
      symlinkSync('/bin/sh', join(bin, 'sh')) // npm runs scripts through sh
      const env = { ...process.env, PATH: bin }
      for (const tool of ['cc', 'c++', 'g++', 'make', 'python3']) {
        expect(spawnSync(tool, ['--version'], { env, stdio: 'ignore' }).error).toBeDefined()
      }
      mkdirSync(app)
      writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }))
      run('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', tarballs.native.tgz, tarballs.core.tgz], app, env)
    }, 240_000)

    it('loads the prebuilt binary (nothing compiled) and runs a worker, from ESM and from require()', () => {
      expect(existsSync(join(app, 'node_modules/@iocp/native/build'))).toBe(false)
      for (const file of ['packed-app.mjs', 'packed-app.cjs']) {
        copyFileSync(fileURLToPath(new URL(`../fixtures/${file}`, import.meta.url)), join(app, file))
        const out = run(process.execPath, [file], app)
        expect(JSON.parse(out.trim())).toEqual([1, '18446744073709551615n', 3])
      }
      // The loader takes this machine's prebuild by its name, without node-gyp-build's lookup
      // (milliseconds in every new thread): node-gyp-build is not even loaded.
      const loaded = run(process.execPath, ['-e', "require('@iocp/native'); console.log(Object.keys(require.cache).filter((f) => /node-gyp-build|prebuilds/.test(f)).map((f) => f.split(/[\\\\/]node_modules[\\\\/]/).pop()).join(' '))"], app)
      expect(loaded.trim()).toBe(`@iocp/native/prebuilds/${host}/${host.startsWith('linux') ? 'iocp.napi.glibc.node' : 'iocp.napi.node'}`)
    })

    it('an install that runs the install script takes the prebuild too, with no compiler', () => {
      const withScripts = join(scratch, 'app-scripts')
      mkdirSync(withScripts)
      writeFileSync(join(withScripts, 'package.json'), JSON.stringify({
        name: 'app-scripts', private: true, type: 'module', allowScripts: { '@iocp/native': true },
      }))
      const env = { ...process.env, PATH: join(scratch, 'bin') }
      const r = spawnSync('npm', ['install', '--foreground-scripts', '--no-audit', '--no-fund', tarballs.native.tgz, tarballs.core.tgz], {
        cwd: withScripts, env, encoding: 'utf8',
      })
      expect({ status: r.status, out: r.stdout + r.stderr }).toMatchObject({ status: 0 })
      expect(r.stdout + r.stderr).toContain(`@iocp/native: using prebuild prebuilds/${host}/`)
      expect(existsSync(join(withScripts, 'node_modules/@iocp/native/build'))).toBe(false)
    }, 240_000)

    it('says what to install when no binary fits this machine', () => {
      // a platform that has no prebuild: the loader's one message, with its code
      const prebuilds = join(app, 'node_modules/@iocp/native/prebuilds')
      rmSync(prebuilds, { recursive: true })
      const r = spawnSync(process.execPath, ['-e', 'require("@iocp/native")'], { cwd: app, encoding: 'utf8' })
      expect(r.status).not.toBe(0)
      expect(r.stderr).toContain('ERR_IOCP_NATIVE_NO_BINARY')
      expect(r.stderr).toContain(`no binary of the addon fits ${host} glibc`)
      expect(r.stderr).toContain('npm rebuild @iocp/native')
      // and the install script, with no compiler on PATH, fails with one message, before node-gyp
      const env = { ...process.env, PATH: join(scratch, 'bin') }
      const build = spawnSync(process.execPath, ['scripts/build.js'], { cwd: join(app, 'node_modules/@iocp/native'), env, encoding: 'utf8' })
      expect(build.status).toBe(1)
      expect(build.stderr).toMatch(/cannot compile the addon for .*: python3, make, a C\+\+ compiler .* not found on PATH/)
      expect(build.stderr).toContain('build-essential')
      expect(build.stderr).not.toContain('gyp')
      expect(build.stderr.trim().split('\n')).toHaveLength(3)
    })

    it('types resolve for node16, nodenext and bundler, from .ts, .mts and .cts', () => {
      const esm = `import { CompletionPort, PortPool, type Packet } from '@iocp/core'
const port: CompletionPort = new CompletionPort({ concurrency: 1 })
const packet: Packet | null = port.get(0)
// @ts-expect-error: key must be a number or bigint
port.post('one')
export const used = [packet, PortPool]
`
      const cjs = esm.replace('export const used = ', 'export = ')
      const dir = join(app, 'types')
      mkdirSync(dir)
      writeFileSync(join(dir, 'esm.mts'), esm)
      writeFileSync(join(dir, 'cjs.cts'), cjs)
      writeFileSync(join(dir, 'plain.ts'), esm) // an ES module: the app's package.json says "type": "module"
      const modes = [
        { module: 'node16', moduleResolution: 'node16' },
        { module: 'nodenext', moduleResolution: 'nodenext' },
        { module: 'preserve', moduleResolution: 'bundler' },
      ]
      for (const mode of modes) {
        const tsconfig = join(dir, `tsconfig.${mode.moduleResolution}.json`)
        writeFileSync(tsconfig, JSON.stringify({
          compilerOptions: {
            ...mode, target: 'ES2022', strict: true, noEmit: true, skipLibCheck: false,
            types: ['node'], typeRoots: [join(root, 'node_modules/@types')],
          },
          files: ['esm.mts', 'cjs.cts', 'plain.ts'],
        }))
        const r = spawnSync(join(root, 'node_modules/.bin/tsc'), ['-p', tsconfig], { cwd: dir, encoding: 'utf8' })
        expect({ mode: mode.moduleResolution, out: r.stdout + r.stderr, status: r.status }).toEqual({ mode: mode.moduleResolution, out: '', status: 0 })
      }
    }, 120_000)
  })
})


