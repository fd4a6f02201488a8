// macOS has no prebuilt binary: `npm install` compiles there, with node-gyp and binding.gyp's
// xcode_settings. Nothing here can compile for macOS or run the result, so this checks what can be
// checked: that node-gyp turns binding.gyp into a macOS build with the settings the addon needs
// (C++17 and libc++, C++ exceptions on, macOS 10.15 or later, Node-API symbols left to the host
// process at load) and with every source of binding.gyp in it.
import { execFileSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'

const nativeDir = fileURLToPath(new URL('../packages/native', import.meta.url))
const require = createRequire(import.meta.url)
const { gypTarget } = require(join(nativeDir, 'scripts/gyp-target.js')) as {
  gypTarget(file: string, target: string, platform: string): { sources: string[] }
}
const scratch = mkdtempSync(join(tmpdir(), 'iocp-macos-gyp-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

/** A directory with include/node/common.gypi for the running node (node-gyp's --nodedir). */
function nodeDir(): string {
  for (let dir = dirname(realpathSync(process.execPath)); ; dir = dirname(dir)) {
    for (const candidate of [dir, join(dir, 'node_modules', `node-${process.platform}-${process.arch}`)]) {
      if (existsSync(join(candidate, 'include/node/common.gypi'))) return candidate
    }
    if (dirname(dir) === dir) throw new Error(`no include/node/common.gypi near ${process.execPath}`)
  }
}

describe('the macOS source build', () => {
  it('node-gyp makes a macOS build from binding.gyp: C++17, libc++, exceptions, macOS 10.15+, every source', () => {
    const copy = join(scratch, 'native')
    cpSync(join(nativeDir, 'binding.gyp'), join(copy, 'binding.gyp'))
    cpSync(join(nativeDir, 'src'), join(copy, 'src'), { recursive: true })
    symlinkSync(join(nativeDir, 'node_modules'), join(copy, 'node_modules'), 'dir')
    const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js', { paths: [nativeDir] })
    // `-f make-mac -DOS=mac`: gyp's make generator with its Xcode emulation, as on a Mac
    execFileSync(process.execPath, [nodeGyp, 'configure', `--nodedir=${nodeDir()}`, '--arch=arm64', '--', '-f', 'make-mac', '-DOS=mac'], {
      cwd: copy, stdio: ['ignore', 'pipe', 'pipe'],
    })
    const mk = readFileSync(join(copy, 'build/iocp.target.mk'), 'utf8')
    const block = (name: string) => /:= \\\n((?:\t.*\\?\n)+)/.exec(mk.slice(mk.indexOf(`${name} :=`)))![1]!.split(/\s*\\?\n\t?/).map((s) => s.trim()).filter(Boolean)
    expect(block('CFLAGS_CC_Release')).toEqual(expect.arrayContaining(['-std=c++17', '-stdlib=libc++']))
    expect(mk).not.toContain('-fno-exceptions')
    expect(block('CFLAGS_Release')).toEqual(expect.arrayContaining(['-mmacosx-version-min=10.15', '-O2', '-fvisibility=hidden']))
    expect(block('LDFLAGS_Release').join(' ')).toContain('-undefined dynamic_lookup')
    expect(block('DEFS_Release')).toEqual(expect.arrayContaining(["'-DNAPI_VERSION=8'", "'-DNAPI_CPP_EXCEPTIONS'"]))
    const sources = gypTarget(join(nativeDir, 'binding.gyp'), 'iocp', 'darwin').sources
    expect(sources.length).toBeGreaterThan(0)
    for (const source of sources) {
      const rel = source.slice(nativeDir.length + 1).replace(/\.cpp$/, '.o')
      expect(mk).toContain(`$(obj).target/$(TARGET)/${rel}`)
    }
  }, 120_000)
})
