#!/usr/bin/env node
// The `iocp-bench` command: runs dist/cli.js (see src/cli.ts). When dist/ has not been built yet
// (a fresh clone right after `pnpm install`), it first compiles this package and @iocp/core
// with the workspace's TypeScript (`tsc -b` on this package's tsconfig, then @iocp/core's bundle
// script), so
// `pnpm exec iocp-bench --quick` works without a separate build step. After editing sources,
// rebuild with `pnpm build` (or run `pnpm bench`, which builds first).
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const pkgDir = dirname(dirname(fileURLToPath(import.meta.url)))
const cli = join(pkgDir, 'dist', 'cli.js')

if (!existsSync(cli)) {
  let tsc
  try {
    const manifest = createRequire(import.meta.url).resolve('typescript/package.json')
    const bin = JSON.parse(readFileSync(manifest, 'utf8')).bin
    tsc = join(dirname(manifest), typeof bin === 'string' ? bin : bin.tsc)
  } catch {
    process.stderr.write('iocp-bench: dist/ is not built and TypeScript was not found; run `pnpm install && pnpm build`\n')
    process.exit(1)
  }
  process.stderr.write('iocp-bench: building (tsc -b packages/bench) ...\n')
  const built = spawnSync(process.execPath, [tsc, '-b', join(pkgDir, 'tsconfig.json')], { stdio: 'inherit' })
  if (built.status !== 0 || !existsSync(cli)) {
    process.stderr.write('iocp-bench: the TypeScript build failed; see above\n')
    process.exit(1)
  }
  // tsc emits @iocp/core's declarations only; its JavaScript is one bundle made by its script.
  const core = dirname(createRequire(import.meta.url).resolve('@iocp/core/package.json'))
  const bundler = join(core, 'scripts', 'bundle.mjs')
  if (existsSync(bundler) && spawnSync(process.execPath, [bundler], { stdio: 'inherit' }).status !== 0) {
    process.stderr.write('iocp-bench: bundling @iocp/core failed; see above\n')
    process.exit(1)
  }
}

await import(pathToFileURL(cli).href)
