/**
 * A Redis Cluster of three masters for the scale-out scenario: redis-server
 * with --cluster-enabled on free ports (the cluster bus on port + 10000 too),
 * joined with `redis-cli --cluster create`, no persistence. Killed when the
 * scenario ends or the harness exits.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { track } from './cleanup.js';
import { RespClient } from './resp.js';

const run = promisify(execFile);

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

async function clusterPort(taken: Set<number>): Promise<number> {
  for (;;) {
    const p = 20_000 + Math.floor(Math.random() * 30_000);
    if (taken.has(p) || taken.has(p + 10_000)) continue;
    if ((await portFree(p)) && (await portFree(p + 10_000))) {
      taken.add(p);
      taken.add(p + 10_000);
      return p;
    }
  }
}

export interface BenchCluster {
  /** For REDIS_CLUSTER_NODES. */
  nodes: string;
  pids: number[];
  stop(): Promise<void>;
}

export async function startCluster(dir: string, masters = 3): Promise<BenchCluster> {
  mkdirSync(dir, { recursive: true });
  const taken = new Set<number>();
  const procs: ChildProcess[] = [];
  const ports: number[] = [];
  for (let i = 0; i < masters; i++) {
    const port = await clusterPort(taken);
    ports.push(port);
    procs.push(
      track(
        spawn(
          'redis-server',
          ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`),
            '--cluster-node-timeout', '2000', '--dir', dir, '--save', '', '--appendonly', 'no', '--loglevel', 'warning'],
          { stdio: 'ignore' },
        ),
      ),
    );
  }
  for (const port of ports) {
    const until = Date.now() + 10_000;
    for (;;) {
      try {
        const c = await RespClient.connect(port);
        c.close();
        break;
      } catch {
        if (Date.now() > until) throw new Error(`cluster node ${port} did not start`);
        await new Promise((r) => setTimeout(r, 25));
      }
    }
  }
  await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
  for (const port of ports) {
    const until = Date.now() + 15_000;
    for (;;) {
      const { stdout } = await run('redis-cli', ['-p', String(port), 'cluster', 'info']);
      if (stdout.includes('cluster_state:ok')) break;
      if (Date.now() > until) throw new Error('cluster did not become ok');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    nodes: ports.map((p) => `127.0.0.1:${p}`).join(','),
    pids: procs.map((p) => p.pid as number),
    async stop() {
      await Promise.all(
        procs.map(async (p) => {
          if (p.exitCode !== null || p.signalCode !== null) return;
          const gone = once(p, 'exit');
          p.kill('SIGKILL');
          await gone;
        }),
      );
    },
  };
}
