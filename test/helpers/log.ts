/** Reading the delivery attempt log (`LOG_DIR/postback.log`) in tests. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface LogLine {
  id: string;
  method: string | null;
  url: string;
  attempt: number;
  requestTime: number;
  deliveryTime: number | null;
  responseTime: number | null;
  latencyMs: number | null;
  status: number | null;
  body: string | null;
  outcome: 'delivered' | 'retry' | 'dead' | 'expired';
  error: string | null;
  errorCode: string | null;
  nextAttemptAt?: number;
}

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
