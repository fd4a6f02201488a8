/**
 * Argument validation. Every check throws a `TypeError` (wrong type) or a `RangeError` (right
 * type, wrong value) from {@link Errors}, whose message names the argument and what was expected,
 * e.g. `key must be an integer in [0, 2^53-1] or a bigint in [0, 2^64-1], got -1`. Nothing here
 * touches the addon: validation always completes before a native call, so a bad argument never
 * posts anything.
 */
import { isUint8Array } from 'node:util/types'
import { Errors } from './errors.js'

export { MAX_TIMEOUT_MS, MAX_U32, MAX_U64 } from './shared.js'
import { MAX_TIMEOUT_MS, MAX_U32, MAX_U64 } from './shared.js'

const U64_EXPECTED = 'an integer in [0, 2^53-1] or a bigint in [0, 2^64-1]'

/** `value` is an integer in [0, 2^53-1] (the number form of a key or overlapped value). */
export function isU53(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0
}

/** `value` is an integer in [0, 2^32-1] (a `bytes` value). */
export function isU32(value: unknown): value is number {
  return typeof value === 'number' && value >= 0 && value <= MAX_U32 && Number.isInteger(value)
}

/**
 * A key or overlapped value: a number integer in [0, 2^53-1] or a bigint in [0, 2^64-1].
 * @throws {TypeError} neither a number nor a bigint.
 * @throws {RangeError} out of range, fractional, NaN.
 */
export function validateU64(name: string, value: unknown): asserts value is number | bigint {
  if (typeof value === 'number') {
    if (!isU53(value)) throw Errors.outOfRange(name, U64_EXPECTED, value)
  } else if (typeof value === 'bigint') {
    if (value < 0n || value > MAX_U64) throw Errors.outOfRange(name, U64_EXPECTED, value)
  } else {
    throw Errors.invalidType(name, U64_EXPECTED, value)
  }
}

/**
 * A uint32 number.
 * @throws {TypeError} not a number.
 * @throws {RangeError} out of [0, 2^32-1], fractional, NaN.
 */
export function validateU32(name: string, value: unknown): asserts value is number {
  const expected = 'an integer in [0, 2^32-1]'
  if (typeof value !== 'number') throw Errors.invalidType(name, expected, value)
  if (!isU32(value)) throw Errors.outOfRange(name, expected, value)
}

/**
 * An integer in [min, max] (both safe integers).
 * @throws {TypeError} not a number.
 * @throws {RangeError} fractional, NaN or out of range.
 */
export function validateInteger(
  name: string,
  value: unknown,
  min: number,
  max: number,
  expected = `an integer in [${min}, ${max}]`,
): asserts value is number {
  if (typeof value !== 'number') throw Errors.invalidType(name, expected, value)
  if (!Number.isInteger(value) || value < min || value > max) {
    throw Errors.outOfRange(name, expected, value)
  }
}

/**
 * An optional payload: `undefined` or a `Uint8Array` (a `Buffer` is one).
 * @throws {TypeError} anything else, `null` included.
 */
export function validateData(name: string, value: unknown): asserts value is Uint8Array | undefined {
  if (value !== undefined && !isUint8Array(value)) {
    throw Errors.invalidType(name, 'a Uint8Array (or Buffer) or undefined', value)
  }
}

/**
 * Converts a timeout in milliseconds to the addon's form: `-1` for `Infinity` (and for finite
 * values above {@link MAX_TIMEOUT_MS}), otherwise a non-negative integer, fractions rounded up
 * so that a wait never ends before the time asked for.
 * @throws {TypeError} not a number.
 * @throws {RangeError} negative or NaN.
 */
export function toNativeTimeout(name: string, value: unknown): number {
  if (typeof value !== 'number') {
    throw Errors.invalidType(name, 'a non-negative number of milliseconds or Infinity', value)
  }
  // `!(value >= 0)` also catches NaN.
  if (!(value >= 0)) {
    throw Errors.outOfRange(name, 'a non-negative number of milliseconds or Infinity', value)
  }
  if (value > MAX_TIMEOUT_MS) return -1
  return Math.ceil(value)
}

/**
 * An options bag: `undefined` (treated as `{}`) or a non-null object whose own enumerable keys
 * are all in `known`, so that a misspelt option (`concurency`) is refused instead of silently
 * meaning its default.
 * @param name - the bag's name in messages (`'options'`).
 * @param owner - what the options are for, in messages (`'new CompletionPort()'`).
 * @param known - every key the bag may have.
 * @throws {TypeError} not an object (`ERR_INVALID_ARG_TYPE`), or an unknown key, named
 *   (`ERR_INVALID_ARG_VALUE`).
 */
export function validateOptions<T extends object>(
  name: string,
  value: unknown,
  owner: string,
  known: ReadonlyArray<keyof T & string>,
): Partial<T> {
  if (value === undefined) return {}
  if (value === null || typeof value !== 'object') {
    throw Errors.invalidType(name, 'an object or undefined', value)
  }
  for (const key of Object.keys(value)) {
    if (!known.includes(key as keyof T & string)) throw Errors.unknownOption(name, key, owner, known)
  }
  return value as Partial<T>
}

/**
 * A function.
 * @throws {TypeError} anything else.
 */
export function validateFunction(name: string, value: unknown): asserts value is (...args: never[]) => unknown {
  if (typeof value !== 'function') throw Errors.invalidType(name, 'a function', value)
}

/**
 * An optional `AbortSignal` (anything with a boolean `aborted` and `addEventListener`, so that
 * signals from another realm or a polyfill are accepted).
 * @throws {TypeError} anything else, `null` included.
 */
export function validateSignal(name: string, value: unknown): asserts value is AbortSignal | undefined {
  if (value === undefined) return
  if (
    value === null ||
    typeof value !== 'object' ||
    typeof (value as Partial<AbortSignal>).aborted !== 'boolean' ||
    typeof (value as Partial<AbortSignal>).addEventListener !== 'function' ||
    typeof (value as Partial<AbortSignal>).removeEventListener !== 'function'
  ) {
    throw Errors.invalidType(name, 'an AbortSignal or undefined', value)
  }
}
