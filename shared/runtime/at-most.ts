/**
 * Runs `fn` on every item, at most `atOnce` at a time, in the items' order of
 * starting; resolves when all have finished, rejects with the first failure
 * (the others already started still run to their end). The one bounded-
 * concurrency loop of the code base: a control node making its RVIs, a
 * pingall over sources, a partition's ping sweep.
 */
export async function eachAtMost<T>(items: readonly T[], atOnce: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(atOnce, items.length)) }, worker));
}
