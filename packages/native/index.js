'use strict'

// Loads the addon (prebuilds/ first, then build/Release) and installs the main thread's exit
// hook: Node joins worker threads before any native cleanup hook runs, so a worker asleep in
// get() would make process.exit() (or an uncaught error) hang. Closing every port on 'exit'
// wakes them all first.
const { isMainThread } = require('worker_threads')
const binding = require('node-gyp-build')(__dirname)

if (isMainThread) {
  process.on('exit', () => binding.closeAllPorts())
}

module.exports = binding
