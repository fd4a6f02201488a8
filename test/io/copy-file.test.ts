// The copy-file example (examples/copy-file): a pipeline of overlapped reads and writes driven by
// workers blocked in get() on one port. The copy must be byte-identical to the source, for a file
// that is not a multiple of the block size and for an empty one.
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

interface CopyModule {
  copyFile(
    src: string,
    dst: string,
    options?: { workers?: number; blockSize?: number; depth?: number; onProgress?: (copied: number, size: number) => void },
  ): Promise<{ bytes: number; backend: string | null }>
}

const COPY = new URL('../../examples/copy-file/copy.mjs', import.meta.url)
const dir = mkdtempSync(join(tmpdir(), 'iocp-copy-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex')
}

describe('examples/copy-file', () => {
  it('copies a file that is not a multiple of the block size, byte for byte', async () => {
    const { copyFile } = (await import(COPY.href)) as CopyModule
    const src = join(dir, 'src.bin')
    const dst = join(dir, 'dst.bin')
    const size = 37 * 65536 + 12345
    writeFileSync(src, randomBytes(size))
    let last = 0
    const result = await copyFile(src, dst, { workers: 2, blockSize: 65536, depth: 3, onProgress: (copied) => (last = copied) })
    expect(result.bytes).toBe(size)
    expect(last).toBe(size)
    expect(sha256(dst)).toBe(sha256(src))
  })

  it('copies an empty file', async () => {
    const { copyFile } = (await import(COPY.href)) as CopyModule
    const src = join(dir, 'empty.bin')
    const dst = join(dir, 'empty-copy.bin')
    writeFileSync(src, '')
    writeFileSync(dst, 'stale contents')
    expect((await copyFile(src, dst)).bytes).toBe(0)
    expect(readFileSync(dst)).toHaveLength(0)
  })
})
