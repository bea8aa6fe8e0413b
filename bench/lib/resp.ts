/**
 * A minimal RESP2 client on one node:net socket, for the harness's own
 * Redis calls (PING, INFO, FLUSHALL, GET). It exists so that the harness
 * knows exactly which bytes and commands it added to Redis's counters
 * (`bytesIn`/`bytesOut`, `commands`) and can subtract them: a full client
 * would add its own handshake commands.
 */
import { connect, type Socket } from 'node:net';

export type RespValue = string | number | null | Buffer | RespValue[] | Error;

interface Pending {
  resolve: (v: RespValue) => void;
  reject: (e: Error) => void;
}

export class RespClient {
  private socket!: Socket;
  private buf: Buffer = Buffer.alloc(0);
  private readonly pending: Pending[] = [];
  /** Bytes this client sent to Redis (counted by Redis as net input). */
  bytesIn = 0;
  /** Bytes Redis sent to this client (counted by Redis as net output). */
  bytesOut = 0;
  /** Commands this client sent. */
  commands = 0;

  static async connect(port: number, host = '127.0.0.1'): Promise<RespClient> {
    const c = new RespClient();
    await new Promise<void>((resolve, reject) => {
      c.socket = connect({ port, host }, () => resolve());
      c.socket.once('error', reject);
    });
    c.socket.setNoDelay(true);
    c.socket.on('data', (d: Buffer) => c.onData(d));
    c.socket.on('error', (err) => c.failAll(err));
    c.socket.on('close', () => c.failAll(new Error('redis connection closed')));
    return c;
  }

  /** Sends one command; resolves with its reply (an Error reply rejects). */
  command(...args: (string | number | Buffer)[]): Promise<RespValue> {
    const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
    for (const a of args) {
      const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
      parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
    }
    const out = Buffer.concat(parts);
    this.bytesIn += out.length;
    this.commands++;
    return new Promise<RespValue>((resolve, reject) => {
      this.pending.push({
        resolve: (v) => (v instanceof Error ? reject(v) : resolve(v)),
        reject,
      });
      this.socket.write(out);
    });
  }

  async info(section = 'all'): Promise<Record<string, string>> {
    const text = String(await this.command('INFO', section));
    const out: Record<string, string> = {};
    for (const line of text.split('\r\n')) {
      const i = line.indexOf(':');
      if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1);
    }
    return out;
  }

  close(): void {
    this.socket.destroy();
  }

  private failAll(err: Error): void {
    for (const p of this.pending.splice(0)) p.reject(err);
  }

  private onData(d: Buffer): void {
    this.bytesOut += d.length;
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    for (;;) {
      const r = parse(this.buf, 0);
      if (r === null) return;
      this.buf = this.buf.subarray(r.end);
      this.pending.shift()?.resolve(r.value);
    }
  }
}

/** Parses one reply at `at`; null when the buffer does not hold it whole yet. */
function parse(buf: Buffer, at: number): { value: RespValue; end: number } | null {
  if (at >= buf.length) return null;
  const eol = buf.indexOf('\r\n', at);
  if (eol === -1) return null;
  const type = String.fromCharCode(buf[at] as number);
  const line = buf.toString('utf8', at + 1, eol);
  switch (type) {
    case '+':
      return { value: line, end: eol + 2 };
    case '-':
      return { value: new Error(line), end: eol + 2 };
    case ':':
      return { value: Number(line), end: eol + 2 };
    case '$': {
      const len = Number(line);
      if (len < 0) return { value: null, end: eol + 2 };
      const start = eol + 2;
      if (buf.length < start + len + 2) return null;
      return { value: buf.toString('utf8', start, start + len), end: start + len + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return { value: null, end: eol + 2 };
      const items: RespValue[] = [];
      let pos = eol + 2;
      for (let i = 0; i < n; i++) {
        const r = parse(buf, pos);
        if (r === null) return null;
        items.push(r.value);
        pos = r.end;
      }
      return { value: items, end: pos };
    }
    default:
      throw new Error(`unexpected RESP type byte ${JSON.stringify(type)}`);
  }
}
