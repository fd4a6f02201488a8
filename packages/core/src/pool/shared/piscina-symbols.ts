/**
 * The three symbols of Piscina's that PortPool reads, taken from the global symbol registry
 * (Piscina makes them with `Symbol.for`), so that no worker and no `import '@iocp/core'` has to
 * load Piscina's module graph for them. test/pool/piscina-contract.test.ts checks that they are
 * still the ones Piscina exports.
 */

/** `Piscina.valueSymbol`: the value inside a `Piscina.move()` wrapper. */
export const PISCINA_VALUE = Symbol.for('Piscina.valueOf')

/** `Piscina.transferableSymbol`: the transferable inside a `Piscina.move()` wrapper. */
export const PISCINA_TRANSFERABLE = Symbol.for('Piscina.transferable')

/** `Piscina.queueOptionsSymbol`: where a task carries what a custom load balancer reads. */
export const PISCINA_QUEUE_OPTIONS = Symbol.for('Piscina.queueOptions')
