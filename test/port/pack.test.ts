// The packages are consumed separately: `pnpm pack` of @iocp/native (carrying a prebuilt binary
// for this platform) and @iocp/core gives tarballs that install into a fresh project outside
// the workspace, with no compiler step, and work there.
import { execFileSync } from 'node:child_process'
import { copyFileSync, cpSync, existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../..', import.meta.url))
const scratch = mkdtempSync(join(tmpdir(), 'iocp-pack-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

function run(command: string, args: string[], cwd: string): string {
  return execFileSync(command, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

describe('packed tarballs', () => {
  it('install into a fresh project and run there, from the prebuilt binary', () => {
    // prebuildify compiles in the package's own build/: do it in a copy, so that the suites
    // running beside this one keep loading the workspace's addon undisturbed.
    const source = join(root, 'packages/native')
    const native = join(scratch, 'native')
    cpSync(source, native, {
      recursive: true,
      filter: (path) => !/[/\\](build|prebuilds|node_modules)$/.test(path),
    })
    // Only node and npm run in the copy: a package manager that "verifies" dependencies there
    // would reinstall through this symlink into the workspace.
    symlinkSync(join(source, 'node_modules'), join(native, 'node_modules'), 'dir')
    run(process.execPath, ['scripts/build.js', '--prebuildify'], native)
    run('npm', ['pack', '--ignore-scripts', '--pack-destination', scratch], native)
    run('pnpm', ['pack', '--pack-destination', scratch], join(root, 'packages/core'))
    const tarballs = readdirSync(scratch).filter((f) => f.endsWith('.tgz'))
    const nativeTgz = tarballs.find((f) => f.includes('native'))!
    const coreTgz = tarballs.find((f) => f.includes('core'))!
    expect(run('tar', ['-tzf', join(scratch, nativeTgz)], scratch)).toMatch(/prebuilds\/linux-x64\/.*\.node/)

    const app = join(scratch, 'app')
    run('mkdir', ['-p', app], scratch)
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }))
    // --ignore-scripts: the prebuilt binary must be enough (no compiler, no node-gyp run).
    run('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', join(scratch, nativeTgz), join(scratch, coreTgz)], app)
    expect(existsSync(join(app, 'node_modules/@iocp/native/build'))).toBe(false)
    copyFileSync(fileURLToPath(new URL('../fixtures/packed-app.mjs', import.meta.url)), join(app, 'app.mjs'))
    const out = run(process.execPath, ['app.mjs'], app)
    expect(JSON.parse(out.trim())).toEqual([1, '18446744073709551615n', 3])
  }, 240_000)
})
