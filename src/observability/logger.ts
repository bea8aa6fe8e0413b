/**
 * Loggers (pino). Two kinds:
 * - the process log: stdout (for PM2/systemd) plus `LOG_DIR/error.log` for
 *   warnings and errors, with `role` on every line;
 * - the attempt log: `LOG_DIR/postback.log`, one line per delivery attempt,
 *   written only by the delivery main thread (single writer).
 * Both write through asynchronous SonicBoom destinations with a buffer;
 * `flushLogs()` must run before exit (the lifecycle does it).
 */
import { mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import pino, { type Logger, type DestinationStream } from 'pino';
import type { Config } from '../config/index.js';

export type { Logger } from 'pino';

type Boom = DestinationStream & { flushSync(): void; end(): void };
const destinations: Boom[] = [];

/**
 * An asynchronous SonicBoom on a file opened here, synchronously: a
 * destination left to open its file itself is "not ready" for a moment, and
 * a process that exits in that moment (a port already in use, say) would
 * die in pino's exit flush instead of saying why.
 */
function destination(opts: { fd?: number; dest?: string; minLength?: number; maxWrite?: number; contentMode?: 'buffer' }): Boom {
  const { dest, ...rest } = opts;
  const fd = dest === undefined ? (opts.fd as number) : openSync(dest, 'a');
  const d = pino.destination({ ...rest, fd, sync: false }) as unknown as Boom;
  destinations.push(d);
  return d;
}

export function createLogger(config: Config, role: string): Logger {
  mkdirSync(config.log.dir, { recursive: true });
  const level = config.log.level;
  const streams: pino.StreamEntry[] = [
    { level: level === 'silent' ? 'fatal' : level, stream: destination({ fd: 1 }) },
    { level: 'warn', stream: destination({ dest: join(config.log.dir, 'error.log') }) },
  ];
  return pino(
    {
      level: level === 'silent' ? 'warn' : level,
      base: { role, pid: process.pid },
      redact: { paths: ['authorization', 'headers.authorization', 'token', 'password'], censor: '[redacted]' },
    },
    pino.multistream(streams),
  );
}

/** How often a buffered attempt log is written out even when quiet. */
const ATTEMPT_FLUSH_MS = 1_000;

/** Writes one attempt line; see {@link createAttemptLog}. */
export interface AttemptLog {
  /** One line: its fields as JSON members without the braces (delivery/attempt-log.ts `attemptLineJson`). */
  write(members: string): void;
}

/**
 * The delivery attempt log, `LOG_DIR/postback.log`, one pino line per
 * attempt (`{"level":30,"time":...,"pid":...,<fields>,"msg":"attempt"}`),
 * through pino's own SonicBoom destination: buffered in 64 KiB writes under
 * load (a write is a system call, and they are not cheap), written out at
 * least every second when traffic is light. The fields come serialized
 * by the caller for their one fixed shape (attempt-log.ts), instead of
 * pino's generic serializer: on the delivery hot path that is a
 * measurable share of the main thread.
 */
export function createAttemptLog(config: Config): AttemptLog {
  mkdirSync(config.log.dir, { recursive: true });
  // Buffer mode: SonicBoom's string mode measures the whole pending string
  // on every write (Buffer.byteLength), about 90 us a line at this buffer
  // size; with Buffers it keeps lengths and a line costs about 4 us.
  const dest = destination({ dest: join(config.log.dir, 'postback.log'), minLength: 65_536, maxWrite: 262_144, contentMode: 'buffer' });
  // Lines written since the last tick: a quiet process neither writes nor
  // syncs (a flush with a callback ends in fsync).
  let fresh = false;
  const timer = setInterval(() => {
    if (!fresh) return;
    fresh = false;
    try {
      (dest as unknown as { flush(cb?: (err?: Error) => void): void }).flush(() => undefined);
    } catch {
      // not open yet, or closing: the next tick or flushLogs() writes it
    }
  }, ATTEMPT_FLUSH_MS);
  timer.unref();
  const head = `,"pid":${process.pid},`;
  return {
    write(members: string): void {
      fresh = true;
      dest.write(Buffer.from(`{"level":30,"time":${Date.now()}${head}${members},"msg":"attempt"}\n`) as unknown as string);
    },
  };
}

/** Writes out everything buffered; safe to call more than once. */
export function flushLogs(): void {
  for (const d of destinations) {
    try {
      d.flushSync();
    } catch {
      // A destination not yet open has nothing to flush.
    }
  }
}
