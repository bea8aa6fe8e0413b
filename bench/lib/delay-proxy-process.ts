/**
 * The delay proxy, as its own process (`node dist/bench/lib/delay-proxy-process.js`,
 * started by delay-proxy.ts): a TCP relay on 127.0.0.1 (a free port) to
 * PROXY_TARGET_PORT that holds every chunk PROXY_DELAY_MS milliseconds in
 * each direction, as if the target were on another host. Its CPU is not
 * the harness's nor the service's, and /proc accounts it apart.
 *
 * - One delay line for every connection and both directions: every chunk
 *   is due its arrival time plus the delay, so due times follow arrival
 *   order and the line is a FIFO (a ring buffer); order is kept within each
 *   direction. A new delay applies to the chunks in the line too (counted
 *   from their arrival), so a long delay can hold traffic and a delay of
 *   0 release it at once. Each chunk is
 *   written on as it was read: no per-byte work beyond the kernel's copies.
 * - Wake-ups at sub-millisecond due times come from the clock thread
 *   (delay-clock.ts); one is outstanding at a time, and each flushes
 *   everything due by then.
 * - Back-pressure: a direction whose destination's socket buffer is full
 *   (write() returned false, until 'drain'), or that holds more than
 *   HIGH_WATER bytes in the line, stops reading its source.
 * - At delay 0 a chunk is written at once (unless earlier chunks of its
 *   direction are still in the line): the same relay, the same copies and
 *   system calls, no clock.
 * - Ends are delayed like data (half-close is passed on in order); an
 *   error or reset on either side destroys both at once.
 * - Traffic per role: the connection name each client gives (ioredis sends
 *   CLIENT SETNAME <role>:<id> first) is read from its first chunks;
 *   chunks and bytes each way are counted per role. A chunk the client
 *   writes is one burst of commands sent together: with auto-pipelining,
 *   about one Redis round trip.
 *
 * IPC: {type: 'delay', id, ms} sets the delay; {type: 'stats', id}
 * answers {type: 'stats', id, traffic}.
 */
import { connect, createServer, type Socket } from 'node:net';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import Denque from 'denque';
import { monoMs } from './delay-clock.js';
import type { ProxyTraffic } from './delay-proxy.js';

const TARGET_PORT = Number(process.env.PROXY_TARGET_PORT);
const TARGET_HOST = process.env.PROXY_TARGET_HOST ?? '127.0.0.1';
let delayMs = Number(process.env.PROXY_DELAY_MS ?? '0');
if (!Number.isInteger(TARGET_PORT) || TARGET_PORT <= 0) throw new Error('PROXY_TARGET_PORT is required');
if (!(delayMs >= 0)) throw new Error('PROXY_DELAY_MS must be >= 0');

/** Bytes one direction may hold in the delay line before its source stops being read. */
const HIGH_WATER = 4 * 1_048_576;
/** First chunks of a client searched for its connection name. */
const SNIFF_CHUNKS = 4;
const SETNAME = /setname\r\n\$\d+\r\n([^\r]*)\r\n/i;

class Conn {
  label: string | null = null;
  sniffed = 0;
  readonly traffic: ProxyTraffic = { connections: 1, upChunks: 0, upBytes: 0, downChunks: 0, downBytes: 0 };
  closed = 0;
}

/** One direction of one connection. */
class Pipe {
  /** Bytes and items (chunks, or the end) of this direction in the line. */
  queued = 0;
  items = 0;
  /** The destination's buffer is full (until 'drain'). */
  full = false;
  /** More than HIGH_WATER bytes in the line. */
  over = false;

  constructor(
    readonly src: Socket,
    readonly dst: Socket,
    readonly up: boolean,
    readonly conn: Conn,
  ) {}

  update(): void {
    const stop = this.full || this.over;
    if (stop && !this.src.isPaused()) this.src.pause();
    else if (!stop && this.src.isPaused() && !this.src.destroyed) this.src.resume();
  }

  /** Writes a chunk (or the end: null) to the destination now. */
  deliver(chunk: Buffer | null): void {
    if (this.dst.destroyed) return;
    if (chunk === null) {
      this.dst.end();
      return;
    }
    if (!this.dst.write(chunk) && !this.full) {
      this.full = true;
      this.update();
      this.dst.once('drain', () => {
        this.full = false;
        this.update();
      });
    }
  }
}

interface Item {
  /** When it was read (monoMs). */
  at: number;
  pipe: Pipe;
  chunk: Buffer | null;
}

const line = new Denque<Item>();
const sab = new SharedArrayBuffer(16);
const seq = new Int32Array(sab, 0, 1);
const dueAt = new Float64Array(sab, 8, 1);
let armed = false;
const clock = new Worker(new URL('./delay-clock.js', import.meta.url), { workerData: sab });
clock.unref();
clock.on('message', flush);
clock.on('error', (err) => {
  process.stderr.write(`delay proxy: clock thread failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});

/** Wakes flush() at `at` (an earlier time than armed only when `force`: the delay was lowered). */
function arm(at: number, force = false): void {
  if (armed && !force) return;
  armed = true;
  dueAt[0] = at;
  Atomics.add(seq, 0, 1);
  Atomics.notify(seq, 0);
}

function flush(): void {
  armed = false;
  const now = monoMs();
  for (let head = line.peekFront(); head !== undefined && head.at + delayMs <= now; head = line.peekFront()) {
    line.shift();
    const { pipe, chunk } = head;
    pipe.items--;
    if (chunk !== null) {
      pipe.queued -= chunk.length;
      if (pipe.over && pipe.queued < HIGH_WATER / 2) {
        pipe.over = false;
        pipe.update();
      }
    }
    pipe.deliver(chunk);
  }
  const next = line.peekFront();
  if (next !== undefined) arm(next.at + delayMs);
}

function enqueue(pipe: Pipe, chunk: Buffer | null): void {
  if (delayMs === 0 && pipe.items === 0) {
    pipe.deliver(chunk);
    return;
  }
  line.push({ at: monoMs(), pipe, chunk });
  pipe.items++;
  if (chunk !== null) {
    pipe.queued += chunk.length;
    if (pipe.queued > HIGH_WATER && !pipe.over) {
      pipe.over = true;
      pipe.update();
    }
  }
  arm((line.peekFront() as Item).at + delayMs);
}

const live = new Set<Conn>();
/** Traffic of connections closed, by label. */
const retired = new Map<string, ProxyTraffic>();

function labelOf(conn: Conn): string {
  return conn.label ?? 'other';
}

function sniff(conn: Conn, chunk: Buffer): void {
  const m = SETNAME.exec(chunk.toString('latin1'));
  if (m !== null) conn.label = (m[1] as string).split(':')[0] || 'other';
  else if (++conn.sniffed >= SNIFF_CHUNKS) conn.label = 'other';
}

function addTo(map: Map<string, ProxyTraffic>, label: string, t: ProxyTraffic): void {
  const into = map.get(label) ?? { connections: 0, upChunks: 0, upBytes: 0, downChunks: 0, downBytes: 0 };
  into.connections += t.connections;
  into.upChunks += t.upChunks;
  into.upBytes += t.upBytes;
  into.downChunks += t.downChunks;
  into.downBytes += t.downBytes;
  map.set(label, into);
}

function traffic(): Record<string, ProxyTraffic> {
  const all = new Map<string, ProxyTraffic>();
  for (const [label, t] of retired) addTo(all, label, t);
  for (const conn of live) addTo(all, labelOf(conn), conn.traffic);
  return Object.fromEntries(all);
}

const server = createServer({ allowHalfOpen: true }, (client) => {
  const upstream = connect({ port: TARGET_PORT, host: TARGET_HOST, allowHalfOpen: true });
  client.setNoDelay(true);
  upstream.setNoDelay(true);
  const conn = new Conn();
  live.add(conn);
  const up = new Pipe(client, upstream, true, conn);
  const down = new Pipe(upstream, client, false, conn);
  client.on('data', (chunk: Buffer) => {
    conn.traffic.upChunks++;
    conn.traffic.upBytes += chunk.length;
    if (conn.label === null) sniff(conn, chunk);
    enqueue(up, chunk);
  });
  upstream.on('data', (chunk: Buffer) => {
    conn.traffic.downChunks++;
    conn.traffic.downBytes += chunk.length;
    enqueue(down, chunk);
  });
  client.on('end', () => enqueue(up, null));
  upstream.on('end', () => enqueue(down, null));
  const abort = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', abort);
  upstream.on('error', abort);
  const closed = () => {
    if (++conn.closed < 2) return;
    live.delete(conn);
    addTo(retired, labelOf(conn), conn.traffic);
  };
  client.on('close', closed);
  upstream.on('close', closed);
});

process.on('message', (m: { type?: string; id?: number; ms?: number }) => {
  if (m.type === 'delay' && typeof m.ms === 'number' && m.ms >= 0) {
    delayMs = m.ms;
    const head = line.peekFront();
    if (head !== undefined) arm(head.at + delayMs, true);
    process.send?.({ type: 'delay', id: m.id });
  } else if (m.type === 'stats') {
    process.send?.({ type: 'stats', id: m.id, traffic: traffic() });
  }
});
process.on('disconnect', () => process.exit(0));

server.listen(0, '127.0.0.1');
await once(server, 'listening');
const addr = server.address();
process.send?.({ listening: 'proxy', port: typeof addr === 'object' && addr ? addr.port : 0 });
process.send?.('ready');
