/**
 * The echo task (./echo.cts), in a module that first loads what a PortPool worker loads of
 * @iocp/core before its first task: dist/worker-entry.cjs, which compiles dist/worker-start.cjs
 * with its code cache. Given to Piscina, it makes the reference row of the time to the first
 * result: Piscina's own path to a first result, plus the cost of PortPool's worker code, and
 * nothing else of PortPool (no boot offers, no side channel, no first worker up wins). So the
 * row shows, in every run, how much of PortPool's time to its first result is that code.
 *
 * CommonJS, as echo.cts is (see there).
 */
import { dirname, join } from 'node:path'

require(join(dirname(require.resolve('@iocp/core/package.json')), 'dist', 'worker-entry.cjs'))

import echo = require('./echo.cjs')

export = echo
