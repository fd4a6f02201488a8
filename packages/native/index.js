'use strict'

// Loads the addon (build/Release when it was compiled here, else prebuilds/) and gives it the
// shape native.d.ts describes: ports are small JS objects over the addon's External, whose
// methods call the addon's port functions (JIT-inlined; see src/binding/native_port.h for why
// this is not an ObjectWrap).
//
// It also installs the main thread's exit hook: Node joins worker threads before any native
// cleanup hook runs, so a worker asleep in get() would make process.exit() (or an uncaught
// error) hang. Closing every port on 'exit' wakes them all first.
const { isMainThread } = require('worker_threads')
// IOCP_NATIVE_ADDON names an explicit .node file instead: CI uses it to run the suites against
// an AddressSanitizer build of the addon (see .ci/run).
const addon = process.env.IOCP_NATIVE_ADDON
  ? require(process.env.IOCP_NATIVE_ADDON)
  : require('node-gyp-build')(__dirname)

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
}

// Small payloads arrive through this per-thread buffer and are sliced out in JS: a
// Uint8Array made by JS costs a fraction of one made in C++ (see takeData in addon.cpp).
const dataScratch = new Uint8Array(16 * 1024)
addon.setDataScratch(dataScratch)

function takeData (i) {
  const taken = addon.takeData(i)
  return typeof taken === 'number' ? dataScratch.slice(0, taken) : taken
}

const binding = {
  init: addon.init,
  setScratch: addon.setScratch,
  takeData,
  createPort: (concurrency, capacity, spinNs) => new NativePort(addon.createPort(concurrency, capacity, spinNs)),
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
  ioSubmitMany: (port, meta, views, overlapped, count) => addon.ioSubmitMany(port.external, meta, views, overlapped, count),
  ioCancel: (port, fd, overlapped) => addon.ioCancel(port.external, fd, overlapped),
  ioClosePort: (port) => addon.ioClosePort(port.external),
  ioStats: (port, out) => addon.ioStats(port.external, out),
  ioWhy: addon.ioWhy,
  ioTestPause: addon.ioTestPause,
  ioPageOffset: addon.ioPageOffset,
  FLAG_IO_ERROR: addon.FLAG_IO_ERROR,
  PACKET_WORDS: addon.PACKET_WORDS,
  FLAG_KEY_BIGINT: addon.FLAG_KEY_BIGINT,
  FLAG_OVERLAPPED_BIGINT: addon.FLAG_OVERLAPPED_BIGINT,
  FLAG_HAS_DATA: addon.FLAG_HAS_DATA,
}

if (isMainThread) {
  process.on('exit', () => addon.closeAllPorts())
}

module.exports = binding
