/**
 * `redis-benchmark -P 32` XADD against the harness's Redis: the rate at which
 * this Redis appends stream entries when pipelined, the yardstick for
 * ingest's postbacks/s with 100 items a request.
 */
import { spawn } from 'node:child_process';
import { track } from './cleanup.js';

export interface XaddBenchmark {
  opsPerSec: number;
  p50Ms: number;
  command: string;
}

export async function xaddBenchmark(port: number, requests = 200_000, pipeline = 32): Promise<XaddBenchmark> {
  const args = ['-h', '127.0.0.1', '-p', String(port), '-P', String(pipeline), '-n', String(requests), '--csv',
    'XADD', 'bench:xadd', '*', 'f', 'v'];
  const proc = track(spawn('redis-benchmark', args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  let err = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    proc.once('error', reject);
    proc.once('exit', resolve);
  });
  if (code !== 0) throw new Error(`redis-benchmark exited ${code}: ${err}`);
  // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",...
  const line = out.trim().split('\n').find((l) => l.startsWith('"XADD'));
  if (!line) throw new Error(`redis-benchmark: no XADD line in ${JSON.stringify(out)}`);
  const cells = line.split('","').map((c) => c.replace(/"/g, ''));
  return {
    opsPerSec: Number(cells[1]),
    p50Ms: Number(cells[4]),
    command: `redis-benchmark ${args.map((a) => (a === '*' ? "'*'" : a)).join(' ')}`,
  };
}
