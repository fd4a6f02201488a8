import { defineConfig } from 'vitest/config'

// Native addons and worker_threads do not mix well with vitest's `threads` pool:
// every test file runs in its own child process instead.
export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['**/node_modules/**', 'fixtures/**'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
  },
})
