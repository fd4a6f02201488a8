/** Cutting queues into the batches that go to Redis in one call. */

/**
 * How many items from the head of `items` make the next batch: at most `max`, and no more bytes
 * (`size` of each) than `maxBytes`, except that the first item always goes, whatever its size.
 */
export function batchLength<T>(items: readonly T[], max: number, maxBytes: number, size: (item: T) => number): number {
  const n = Math.min(max, items.length)
  let bytes = 0
  for (let i = 0; i < n; i++) {
    bytes += size(items[i]!)
    if (bytes > maxBytes && i > 0) return i
  }
  return n
}
