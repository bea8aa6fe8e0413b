/**
 * A DNS server for the harness (tests and the benchmark), on 127.0.0.1 and
 * a free UDP port: it answers A queries for names under `zone` with
 * `address` (default 127.0.0.1) and a TTL, after `delayMs` (a slow
 * resolver), AAAA queries with no data, and anything else with NXDOMAIN.
 * It counts the queries it answered, per name. Point delivery at it with
 * DELIVERY_DNS_SERVERS=127.0.0.1:<port>. Packets go through dns-packet.
 */
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import * as packet from 'dns-packet';

export interface DnsServerOptions {
  /** Names ending in `.${zone}` are answered (e.g. "pb.test"). */
  zone: string;
  /** The A record's address; default 127.0.0.1. */
  address?: string;
  /** Seconds. */
  ttl?: number;
  /** Delay before every answer. */
  delayMs?: number;
}

export interface DnsServer {
  port: number;
  /** For DELIVERY_DNS_SERVERS. */
  server: string;
  /** A queries answered, by name. */
  queries: Map<string, number>;
  /** Every query answered (A, AAAA, NXDOMAIN). */
  readonly total: number;
  delayMs: number;
  close(): Promise<void>;
}

const NXDOMAIN = 3;

export async function startDnsServer(opts: DnsServerOptions): Promise<DnsServer> {
  const socket = createSocket('udp4');
  const queries = new Map<string, number>();
  const suffix = `.${opts.zone.toLowerCase()}`;
  let total = 0;
  const state = { delayMs: opts.delayMs ?? 0 };
  socket.on('message', (msg, rinfo) => {
    let q: packet.DecodedPacket;
    try {
      q = packet.decode(msg);
    } catch {
      return;
    }
    const question = q.questions?.[0];
    if (question === undefined) return;
    const name = question.name.toLowerCase();
    const inZone = name.endsWith(suffix);
    const answers: packet.Answer[] = [];
    if (inZone && question.type === 'A') {
      answers.push({ type: 'A', name: question.name, class: 'IN', ttl: opts.ttl ?? 60, data: opts.address ?? '127.0.0.1' });
      queries.set(name, (queries.get(name) ?? 0) + 1);
    }
    const flags = packet.AUTHORITATIVE_ANSWER | (q.flag_rd ? packet.RECURSION_DESIRED : 0) | (inZone ? 0 : NXDOMAIN);
    const reply = packet.encode({ type: 'response', id: q.id ?? 0, flags, questions: [question], answers });
    const send = () => {
      total++;
      socket.send(reply, rinfo.port, rinfo.address);
    };
    if (state.delayMs > 0) setTimeout(send, state.delayMs);
    else send();
  });
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  const port = socket.address().port;
  return {
    port,
    server: `127.0.0.1:${port}`,
    queries,
    get total() {
      return total;
    },
    get delayMs() {
      return state.delayMs;
    },
    set delayMs(ms: number) {
      state.delayMs = ms;
    },
    async close() {
      socket.close();
      await once(socket, 'close');
    },
  };
}
