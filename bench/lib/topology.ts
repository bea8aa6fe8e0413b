/**
 * Real multi-node Redis topologies for the harness (scale-out tests and
 * the e2e-cluster scenario), on free ports of 127.0.0.1, no persistence:
 * a Redis Cluster of N masters (`redis-cli --cluster create`), and a
 * Sentinel group (1 primary, 1 replica, 3 sentinels). Every process is
 * killed when the caller stops the topology or the process ends.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { onExit, track } from './cleanup.js';
import { RespClient } from './resp.js';

const run = promisify(execFile);

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A free port whose cluster bus port (port + 10000) is free too. */
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

async function answers(port: number): Promise<boolean> {
  try {
    const c = await RespClient.connect(port);
    try {
      return (await c.command('PING')) === 'PONG';
    } finally {
      c.close();
    }
  } catch {
    return false;
  }
}

async function waitPing(port: number, proc: ChildProcess): Promise<void> {
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    if (proc.exitCode !== null) throw new Error(`redis on ${port} exited with ${proc.exitCode}`);
    if (await answers(port)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`redis on ${port} did not start`);
}

export interface Topology {
  /** Comma list for REDIS_CLUSTER_NODES or REDIS_SENTINELS. */
  nodes: string;
  ports: number[];
  procs: ChildProcess[];
  stop(): Promise<void>;
}

/** A working directory: the caller's, or a temporary one removed with the topology. */
function workDir(dir: string | undefined, name: string): { dir: string; remove: () => void } {
  if (dir !== undefined) {
    mkdirSync(dir, { recursive: true });
    return { dir, remove: () => undefined };
  }
  const tmp = mkdtempSync(join(tmpdir(), `pb-${name}-`));
  const remove = () => rmSync(tmp, { recursive: true, force: true });
  onExit(remove);
  return { dir: tmp, remove };
}

async function stopAll(procs: ChildProcess[], remove: () => void): Promise<void> {
  await Promise.all(
    procs.map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.exitCode !== null || p.signalCode !== null) return resolve();
          p.once('exit', () => resolve());
          p.kill('SIGKILL');
        }),
    ),
  );
  remove();
}

export async function startCluster(opts: { masters?: number; dir?: string } = {}): Promise<Topology> {
  const { dir, remove } = workDir(opts.dir, 'cluster');
  const taken = new Set<number>();
  const ports: number[] = [];
  const procs: ChildProcess[] = [];
  for (let i = 0; i < (opts.masters ?? 3); i++) {
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
  await Promise.all(ports.map((p, i) => waitPing(p, procs[i] as ChildProcess)));
  await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
  const until = Date.now() + 15_000;
  for (const p of ports) {
    for (;;) {
      const { stdout } = await run('redis-cli', ['-p', String(p), 'cluster', 'info']);
      if (stdout.includes('cluster_state:ok')) break;
      if (Date.now() > until) throw new Error('cluster did not become ok');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { nodes: ports.map((p) => `127.0.0.1:${p}`).join(','), ports, procs, stop: () => stopAll(procs, remove) };
}

export interface SentinelGroup extends Topology {
  primaryPort: number;
  replicaPort: number;
  /** Asks a sentinel for a failover and resolves once the replica is primary. */
  failover(): Promise<void>;
  /** The port of the current primary, as the sentinels see it. */
  primary(): Promise<number>;
}

export async function startSentinels(name = 'mymaster'): Promise<SentinelGroup> {
  const { dir, remove } = workDir(undefined, 'sentinel');
  const taken = new Set<number>();
  const primaryPort = await clusterPort(taken);
  const replicaPort = await clusterPort(taken);
  const procs: ChildProcess[] = [];
  const data = (port: number, extra: string[]) =>
    track(
      spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--dbfilename', `dump-${port}.rdb`,
        '--save', '', '--appendonly', 'no', ...extra], { stdio: 'ignore' }),
    );
  const primary = data(primaryPort, []);
  procs.push(primary);
  await waitPing(primaryPort, primary);
  const replica = data(replicaPort, ['--replicaof', '127.0.0.1', String(primaryPort)]);
  procs.push(replica);
  await waitPing(replicaPort, replica);
  const ports: number[] = [];
  for (let i = 0; i < 3; i++) {
    const port = await clusterPort(taken);
    const conf = join(dir, `sentinel-${port}.conf`);
    writeFileSync(
      conf,
      [`port ${port}`, 'bind 127.0.0.1', `dir ${dir}`, `sentinel monitor ${name} 127.0.0.1 ${primaryPort} 2`,
        `sentinel down-after-milliseconds ${name} 1000`, `sentinel failover-timeout ${name} 5000`, `sentinel parallel-syncs ${name} 1`, ''].join('\n'),
    );
    const s = track(spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' }));
    procs.push(s);
    ports.push(port);
    await waitPing(port, s);
  }
  const primaryNow = async (): Promise<number> => {
    const { stdout } = await run('redis-cli', ['-p', String(ports[0]), 'sentinel', 'get-master-addr-by-name', name]);
    return Number(stdout.trim().split('\n')[1]);
  };
  // The sentinels must see the replica before a failover can be asked for.
  const until = Date.now() + 20_000;
  for (;;) {
    const { stdout } = await run('redis-cli', ['-p', String(ports[0]), 'sentinel', 'replicas', name]);
    if (stdout.includes(String(replicaPort)) && /flags\s+slave\s/.test(stdout.replace(/\n/g, ' '))) break;
    if (Date.now() > until) throw new Error('sentinels did not discover the replica');
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    nodes: ports.map((p) => `127.0.0.1:${p}`).join(','),
    ports,
    procs,
    primaryPort,
    replicaPort,
    primary: primaryNow,
    async failover() {
      const before = await primaryNow();
      await run('redis-cli', ['-p', String(ports[0]), 'sentinel', 'failover', name]);
      const end = Date.now() + 20_000;
      while ((await primaryNow()) === before) {
        if (Date.now() > end) throw new Error('failover did not happen');
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    stop: () => stopAll(procs, remove),
  };
}
