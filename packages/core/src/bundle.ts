/**
 * The entry of @iocp/core's one runtime bundle (dist/core.cjs, built by scripts/bundle.mjs):
 * the public API of index.ts, the start of a pool worker's loop for pool/worker/start.cts, and
 * the hooks through which dist/loader.cjs hands over its code cache and its import()
 * (src/loader.cts).
 * Not part of the API: dist/index.js re-exports only index.ts's names.
 */
export * from './index.js'
export { default as startPoolLoop } from './pool/worker/loop.js'
export { setCodeCacheSharer } from './pool/shared/code-cache.js'
export { setDynamicImport } from './pool/worker/task-module.js'
