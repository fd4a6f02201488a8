'use strict'

// Loads the addon (load.js: build/Release when it was compiled here, else prebuilds/) and gives it the
// shape native.d.ts describes: ports are small JS objects over the addon's External, whose
// methods call the addon's port functions (JIT-inlined; see src/binding/native_port.h for why
// this is not an ObjectWrap).
//
// It also installs the main thread's exit hook: Node joins worker threads before any native
// cleanup hook runs, so a worker asleep in get() would make process.exit() (or an uncaught
// error) hang. Closing every port on 'exit' wakes them all first.
const { isMainThread } = require('worker_threads')
const addon = require('./load').loadAddon(__dirname) // which binary, and the error when none fits

// The port functions, each called with the port's External first. This list is the one JS-side
// statement of them; it is checked against the addon's own at load (src/binding/native_port.cpp).
const PORT_FUNCTIONS = {
  post: 'portPost',
  postEx: 'portPostEx',
  postMany: 'portPostMany',
  get: 'portGet',
  getMany: 'portGetMany',
  getManyInto: 'portGetManyInto',
  getAsync: 'portGetAsync',
  cancelAsync: 'portCancelAsync',
  blockingEnter: 'portBlockingEnter',
  blockingLeave: 'portBlockingLeave',
  close: 'portClose',
  shutdown: 'portShutdown',
  stats: 'portStats',
  handle: 'portHandle',
  recoverHeld: 'portRecoverHeld',
  control: 'portControl',
  ring: 'portRing',
  wakeLock: 'portWakeLock',
}
// Module functions that @iocp/core's loader calls before anything else (src/loader.cts).
const MODULE_FUNCTIONS = ['setCodeCache', 'codeCache', 'codeCacheFromWorker']
for (const name of [...Object.values(PORT_FUNCTIONS), ...MODULE_FUNCTIONS]) {
  if (typeof addon[name] !== 'function') throw new Error(`@iocp/native: the addon lacks ${name} (stale build?)`)
}
for (const name of Object.keys(addon)) {
  if (name.startsWith('port') && !Object.values(PORT_FUNCTIONS).includes(name)) {
    throw new Error(`@iocp/native: index.js does not know the addon's ${name} (stale build?)`)
  }
}

// Plain methods rather than generated ones, so that V8 inlines each call into its caller.
class NativePort {
  constructor (external) { this.external = external }
  post (key, bytes, overlapped) { return addon.portPost(this.external, key, bytes, overlapped) }
  postEx (key, bytes, overlapped, data) { return addon.portPostEx(this.external, key, bytes, overlapped, data) }
  postMany (words, count, data) { return addon.portPostMany(this.external, words, count, data) }
  get (timeoutMs) { return addon.portGet(this.external, timeoutMs) }
  getMany (max, timeoutMs) { return addon.portGetMany(this.external, max, timeoutMs) }
  getManyInto (out, max, timeoutMs) { return addon.portGetManyInto(this.external, out, max, timeoutMs) }
  getAsync () { return addon.portGetAsync(this.external) }
  cancelAsync (id) { return addon.portCancelAsync(this.external, id) }
  blockingEnter () { addon.portBlockingEnter(this.external) }
  blockingLeave () { addon.portBlockingLeave(this.external) }
  close () { return addon.portClose(this.external) }
  shutdown () { return addon.portShutdown(this.external) }
  stats (out) { addon.portStats(this.external, out) }
  handle () { return addon.portHandle(this.external) }
  recoverHeld (threadId) { return addon.portRecoverHeld(this.external, threadId) }
  control () { return addon.portControl(this.external) }
  ring () { return addon.portRing(this.external) }
  wakeLock (word) { addon.portWakeLock(this.external, word) }
}
for (const method of Object.keys(PORT_FUNCTIONS)) {
  if (typeof NativePort.prototype[method] !== 'function') throw new Error(`@iocp/native: NativePort lacks ${method}`)
}

// Small payloads arrive through this per-thread buffer and are sliced out in JS: a
// Uint8Array made by JS costs a fraction of one made in C++ (see payloadResult in addon.cpp).
const dataScratch = new Uint8Array(16 * 1024)
addon.setDataScratch(dataScratch)

function sliced (taken) {
  return typeof taken === 'number' ? dataScratch.slice(0, taken) : taken
}
const takeData = (i) => sliced(addon.takeData(i))
const takePayload = (lo, hi) => sliced(addon.takePayload(lo, hi))
const takeAsyncData = () => sliced(addon.takeAsyncData())

const binding = {
  init: addon.init,
  setScratch: addon.setScratch,
  takeData,
  takePayload,
  takeAsyncData,
  setCodeCache: addon.setCodeCache,
  codeCache: addon.codeCache,
  codeCacheFromWorker: addon.codeCacheFromWorker,
  debugCounts: addon.debugCounts,
  debugNativeProducers: (port, first, producers, perProducer) =>
    addon.debugNativeProducers(port.external, first, producers, perProducer),
  debugJoinNativeProducers: addon.debugJoinNativeProducers,
  LAYOUT: addon.LAYOUT,
  createPort: (concurrency, capacity, spinNs, trackHeld) =>
    new NativePort(addon.createPort(concurrency, capacity, spinNs, trackHeld)),
  openPort: (id, pin) => {
    const opened = addon.openPort(id, pin)
    return typeof opened === 'number' ? opened : new NativePort(opened)
  },
  closeAllPorts: addon.closeAllPorts,
  // Overlapped file I/O (src/binding/io_binding.cpp): the port argument is a NativePort.
  ioConfigure: (port, preference) => addon.ioConfigure(port.external, preference),
  ioAssociate: (port, fd, key) => addon.ioAssociate(port.external, fd, key),
  ioDissociate: (port, fd) => addon.ioDissociate(port.external, fd),
  ioSubmit: (port, kind, fd, view, position, length, overlapped) =>
    addon.ioSubmit(port.external, kind, fd, view, position, length, overlapped),
  ioSubmitMany: (port, meta, views, count) => addon.ioSubmitMany(port.external, meta, views, count),
  ioCancel: (port, fd, overlapped) => addon.ioCancel(port.external, fd, overlapped),
  ioClosePort: (port) => addon.ioClosePort(port.external),
  ioStats: (port, out) => addon.ioStats(port.external, out),
  ioWhy: addon.ioWhy,
  ioTestPause: addon.ioTestPause,
  ioPageOffset: addon.ioPageOffset,
  FLAG_IO_ERROR: addon.FLAG_IO_ERROR,
  IO_META_WORDS: addon.IO_META_WORDS,
  PACKET_WORDS: addon.PACKET_WORDS,
  FLAG_KEY_BIGINT: addon.FLAG_KEY_BIGINT,
  FLAG_OVERLAPPED_BIGINT: addon.FLAG_OVERLAPPED_BIGINT,
  FLAG_HAS_DATA: addon.FLAG_HAS_DATA,
}

if (isMainThread) {
  process.on('exit', () => addon.closeAllPorts())
}

module.exports = binding
