/**
 * Loggers (pino). Two kinds:
 * - the process log: stdout (for PM2/systemd) plus `LOG_DIR/error.log` for
 *   warnings and errors, with `role` on every line;
 * - the attempt log: `LOG_DIR/postback.log`, one line per delivery attempt,
 *   written only by the delivery main thread (single writer).
 * Both write through asynchronous SonicBoom destinations with a buffer;
 * `flushLogs()` must run before exit (the lifecycle does it).
 *
 * A file that refuses writes (its disk full, a file size limit) is never a
 * crash: its lines wait in memory, at most MAX_PENDING_BYTES (past it they
 * are dropped, and stderr says so; a file merely slower than the lines, by
 * as much, is treated alike), and go out when it takes writes again.
 * The attempt log says so to the delivery service, which starts no attempt
 * meanwhile: every attempt keeps its line. At exit, what such a file still
 * holds is given up rather than waited for (SonicBoom's flushSync retries
 * any error for ever: the process never exited while the disk was full).
 */
import cluster from 'node:cluster';
import { mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import pino, { type Logger, type DestinationStream } from 'pino';
import type { Config } from '../config/index.js';

export type { Logger } from 'pino';

type Boom = DestinationStream & {
  /** The file's path, for reopen(): set here, as the file is opened here. */
  file: string | null;
  reopen(): void;
  flushSync(): void;
  flush(cb?: (err?: Error) => void): void;
  end(): void;
  on(event: 'error', listener: (err: NodeJS.ErrnoException) => void): Boom;
  on(event: 'write' | 'drop', listener: () => void): Boom;
};

/** What a process log (stdout, error.log) keeps in memory while it cannot write. */
const MAX_PENDING_BYTES = 16 * 1024 * 1024;
/** The same for the attempt log: delivery starts no attempt while it cannot write, so this is only what was in flight. */
const MAX_PENDING_ATTEMPT_BYTES = 64 * 1024 * 1024;

/** One log destination and whether its file takes writes now. */
interface Destination {
  readonly boom: Boom;
  readonly name: string;
  /** Why the last write failed (an errno code), null while writes work. */
  failure: string | null;
  /** Lines dropped past its bound since they were last reported. */
  dropped: number;
  readonly listeners: (() => void)[];
}
const destinations: Destination[] = [];

/**
 * In a cluster worker (PM2's cluster mode: ingest), file descriptors 1 and 2
 * are the cluster primary's, and PM2's primary is its daemon: writes to them
 * land in PM2's own pm2.log, not in the app's out/err files nor in
 * `pm2 logs <app>`. PM2 captures a worker's output through process.stdout
 * and process.stderr instead, so a worker writes through those.
 */
const viaStreams = cluster.isWorker;

/** One line straight to stderr, for when the log itself is what fails. */
function stderrLine(text: string): void {
  try {
    if (viaStreams) process.stderr.write(`postback-delivery: ${text}\n`);
    else writeSync(2, `postback-delivery: ${text}\n`);
  } catch {
    // nowhere left to say it
  }
}

// A file size limit (ulimit -f, systemd LimitFSIZE) reached is a write
// error (EFBIG) like a full disk, not the end of the process.
process.on('SIGXFSZ', () => undefined);

/**
 * An asynchronous SonicBoom on a file opened here, synchronously: a
 * destination left to open its file itself is "not ready" for a moment, and
 * a process that exits in that moment (a port already in use, say) would
 * die in pino's exit flush instead of saying why.
 */
function destination(opts: { fd?: number; dest?: string; minLength?: number; maxWrite?: number; contentMode?: 'buffer'; maxPending?: number }): Destination {
  const { dest, maxPending = MAX_PENDING_BYTES, ...rest } = opts;
  const fd = dest === undefined ? (opts.fd as number) : openSync(dest, 'a');
  const boom = pino.destination({ ...rest, fd, sync: false, maxLength: maxPending }) as unknown as Boom;
  if (dest !== undefined) boom.file = dest;
  const d: Destination = { boom, name: dest ?? (fd === 1 ? 'stdout' : `fd ${fd}`), failure: null, dropped: 0, listeners: [] };
  // pino flushes its destinations synchronously at exit; for one that
  // refuses writes that would never return (pino does the same for EPIPE).
  const flushSync = boom.flushSync.bind(boom);
  boom.on('error', (err) => {
    if (d.failure !== null) return;
    d.failure = err.code ?? err.message;
    boom.flushSync = () => undefined;
    stderrLine(`cannot write ${d.name} (${d.failure}): its lines wait in memory (at most ${maxPending} bytes) until it takes writes again`);
    for (const l of d.listeners) l();
  });
  let droppedSince = 0;
  boom.on('write', () => {
    if (d.failure === null) {
      // A file slower than its lines: say how many were lost, at most every 10 s.
      if (d.dropped > 0 && Date.now() - droppedSince >= 10_000) {
        stderrLine(`${d.name}: ${d.dropped} lines were dropped, more than ${maxPending} bytes waiting to be written`);
        d.dropped = 0;
      }
      return;
    }
    d.failure = null;
    boom.flushSync = flushSync;
    stderrLine(`writing ${d.name} again${d.dropped > 0 ? `; ${d.dropped} lines were dropped meanwhile` : ''}`);
    d.dropped = 0;
    for (const l of d.listeners) l();
  });
  boom.on('drop', () => {
    if (d.dropped++ > 0) return;
    droppedSince = Date.now();
    stderrLine(`${d.name}: ${maxPending} bytes wait to be written: further lines are dropped until it takes writes`);
  });
  destinations.push(d);
  return d;
}

export function createLogger(config: Config, role: string): Logger {
  mkdirSync(config.log.dir, { recursive: true });
  const level = config.log.level;
  const streams: pino.StreamEntry[] = [
    { level: level === 'silent' ? 'fatal' : level, stream: viaStreams ? process.stdout : destination({ fd: 1 }).boom },
    { level: 'warn', stream: destination({ dest: join(config.log.dir, 'error.log') }).boom },
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
  /** Why postback.log refuses writes now (an errno code: ENOSPC, EFBIG, EIO), or null while it takes them. */
  readonly failure: string | null;
  /** Called whenever `failure` changes. */
  onChange(listener: () => void): void;
  /** Writes out what is buffered, waiting at most `ms`; false when the file refused it or the time ran out. */
  flush(ms: number): Promise<boolean>;
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
  const d = destination({ dest: join(config.log.dir, 'postback.log'), minLength: 65_536, maxWrite: 262_144, contentMode: 'buffer', maxPending: MAX_PENDING_ATTEMPT_BYTES });
  const dest = d.boom;
  // Lines written since the last tick: a quiet process neither writes nor
  // syncs (a flush with a callback ends in fsync). While the file refuses
  // writes, each tick tries again (nothing else would: no new lines come).
  let fresh = false;
  const flush = (cb: (err?: Error) => void): void => {
    try {
      dest.flush(cb);
    } catch (err) {
      // not open yet, or closing: the next tick or flushLogs() writes it
      cb(err as Error);
    }
  };
  const timer = setInterval(() => {
    if (!fresh && d.failure === null) return;
    fresh = false;
    flush(() => undefined);
  }, ATTEMPT_FLUSH_MS);
  timer.unref();
  const head = `,"pid":${process.pid},`;
  return {
    write(members: string): void {
      fresh = true;
      dest.write(Buffer.from(`{"level":30,"time":${Date.now()}${head}${members},"msg":"attempt"}\n`) as unknown as string);
    },
    get failure() {
      return d.failure;
    },
    onChange(listener) {
      d.listeners.push(listener);
    },
    flush(ms) {
      return new Promise((resolve) => {
        const timeout = setTimeout(() => resolve(false), ms);
        flush((err) => {
          clearTimeout(timeout);
          resolve(err === undefined || err === null);
        });
      });
    },
  };
}

/**
 * Opens every log file again by its path (SIGHUP): after logrotate has
 * moved a file away, the lines go to a new one at the path instead of
 * following the old file. A file that cannot be opened keeps the old one
 * (stderr says why). Lines being written finish in the old file first.
 */
export function reopenLogFiles(): void {
  for (const d of destinations) {
    if (d.boom.file === null) continue;
    try {
      d.boom.reopen();
    } catch (err) {
      stderrLine(`cannot reopen ${d.name}: ${(err as Error).message}`);
    }
  }
}

/**
 * Writes out everything buffered; safe to call more than once. A file that
 * refuses writes is given up (stderr says so): SonicBoom's flushSync would
 * retry it for ever, and the process would never exit.
 */
export function flushLogs(): void {
  for (const d of destinations) {
    if (d.failure !== null) {
      stderrLine(`${d.name} refuses writes (${d.failure}): the lines it still held are not written`);
      continue;
    }
    try {
      d.boom.flushSync();
    } catch {
      // A destination not yet open has nothing to flush.
    }
  }
}
