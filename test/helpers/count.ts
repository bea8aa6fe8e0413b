/** Counting at the partner, by X-Postback-Id: what arrived, twice, or never. */
import type { TestSink } from './sink.js';

export function tally(sink: TestSink, expected: Set<string>): { distinct: number; duplicates: number; lost: number } {
  const seen = new Map<string, number>();
  for (const r of sink.received) {
    const id = String(r.headers['x-postback-id']);
    seen.set(id, (seen.get(id) ?? 0) + 1);
  }
  let lost = 0;
  for (const id of expected) if (!seen.has(id)) lost++;
  return { distinct: seen.size, duplicates: sink.received.length - seen.size, lost };
}

/** Polls `cond` (sync or async) every 50 ms until it holds or `timeoutMs` passed; resolves with its last value. */
export async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}
