/** Reading the delivery attempt log (`LOG_DIR/postback.log`) in tests. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AttemptLine } from '../../src/delivery/attempt-log.js';

/** A line of the attempt log as written (see src/delivery/attempt-log.ts). */
export type LogLine = AttemptLine;

export function attemptLines(logDir: string): LogLine[] {
  const file = join(logDir, 'postback.log');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as LogLine);
}

/** Polls the log (flushed at least every second) until `done` holds. */
export async function waitForLines(logDir: string, done: (lines: LogLine[]) => boolean, timeoutMs = 20_000): Promise<LogLine[]> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const lines = attemptLines(logDir);
    if (done(lines)) return lines;
    if (Date.now() > until) throw new Error(`log condition not met in ${timeoutMs} ms; ${lines.length} lines`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
