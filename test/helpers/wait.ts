/**
 * Waiting in tests: one sleep and one waitFor for every test and helper
 * (integration tests poll real processes, unit tests in-memory pairs).
 */
import { setTimeout as delay } from 'node:timers/promises';

export async function sleep(ms: number): Promise<void> {
  await delay(ms);
}

/**
 * Polls `cond` every `intervalMs` until it holds; throws naming `what` after
 * `timeoutMs`. `cond` may be async (an admin request) and may throw to give up
 * early (a child that exited). `what` may be a function, called only on
 * timeout, to put the state of the moment in the message.
 */
export async function waitFor(what: string | (() => string), cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, intervalMs = 20): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await delay(intervalMs);
  }
}

/**
 * waitFor for in-memory conditions (the RVI and TCP pairs): polled every 2 ms,
 * since checking costs nothing and the states waited for can be short (a
 * TIME-WAIT of 200 ms, a leg dead after 100 ms) where a 20 ms poll would
 * step past part of them; 5 s by default.
 */
export function waitForFast(what: string | (() => string), cond: () => boolean, timeoutMs = 5000): Promise<void> {
  return waitFor(what, cond, timeoutMs, 2);
}
