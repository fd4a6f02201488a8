/** Small waiting helpers shared by the package. */

/** Resolves when `p` settles or after `ms`, whichever comes first (never rejects). */
export async function settledWithin(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  await Promise.race([p.catch(() => {}), new Promise((r) => (timer = setTimeout(r, ms)))])
  clearTimeout(timer)
}
