import { setTimeout as delay } from 'node:timers/promises';

/** Polls `probe` every half second until it gives a value; after `timeoutMs`, fails saying what did not happen, with `context()`. */
export async function until<T>(what: string, timeoutMs: number, probe: () => T | undefined | Promise<T | undefined>, context: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs / 1000} s\n${context()}`);
    await delay(500);
  }
}
