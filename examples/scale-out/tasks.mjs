// The task module every consumer machine runs in its local PortPool.

/** Counts the primes below `limit` (a small, CPU-bound task). */
export default function countPrimes({ limit }) {
  let count = 0
  for (let n = 2; n < limit; n++) {
    let prime = true
    for (let d = 2; d * d <= n; d++) {
      if (n % d === 0) {
        prime = false
        break
      }
    }
    if (prime) count++
  }
  return { limit, count, pid: process.pid }
}
