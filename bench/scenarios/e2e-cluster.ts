/**
 * `e2e-cluster`: the e2e max phase (--n postbacks, --e2e-items a request,
 * 16 requests at a time) against a 3-master Redis Cluster with QUEUE_SHARDS
 * 1, 2 and 4, next to the same phase on a single Redis, in one run. On a
 * 2-core machine the curve is expected to be flat (one ingest and one
 * delivery process share the cores with three Redis nodes); it shows what
 * the cluster costs and that sharding works, and on bigger machines what it
 * buys.
 */
import { join } from 'node:path';
import { startCluster } from '../lib/topology.js';
import { deliverBulk, originMetrics } from '../lib/deliver.js';
import { freePort } from '../lib/ports.js';
import { roleEnv, spawnRole, type Child } from '../lib/procs.js';
import { get, ratio, type Metrics, type RunContext, type RunResult, type Scenario, type Table } from '../lib/scenario.js';
import { Sink } from '../lib/sink.js';
import { startStack } from '../lib/stack.js';

const SEND_CONCURRENCY = 16;
const SHARDS = [1, 2, 4];

export const e2eClusterScenario: Scenario = {
  name: 'e2e-cluster',
  summary: 'e2e max phase on a 3-master Redis Cluster with QUEUE_SHARDS 1, 2 and 4, against a single Redis',
  async run(ctx: RunContext): Promise<RunResult> {
    const o = ctx.opts;
    const m: Metrics = {};
    const sink = await Sink.start([{ name: 'a', delayMs: 0 }]);
    try {
      ctx.progress(`single Redis: ${o.n} postbacks`);
      const single = await startStack(ctx, { ingest: true, delivery: true });
      try {
        const phase = await deliverBulk({ sink, ingestOrigin: single.ingestOrigin, tag: 'single', n: o.n, items: o.e2eItems, concurrency: SEND_CONCURRENCY });
        originMetrics(m, 'single', phase, 'a');
      } finally {
        await single.stop();
      }
      for (const shards of SHARDS) {
        ctx.progress(`cluster, QUEUE_SHARDS=${shards}: ${o.n} postbacks`);
        const cluster = await startCluster({ dir: join(ctx.scratch, `cluster-${shards}`) });
        const roles: Child[] = [];
        try {
          const ingestPort = await freePort();
          const env = roleEnv('', join(ctx.scratch, 'log'), {
            INGEST_PORT: String(ingestPort),
            MONITOR_PORT: String(await freePort()),
            DELIVERY_METRICS_PORT: String(await freePort()),
            REDIS_CLUSTER_NODES: cluster.nodes,
            QUEUE_SHARDS: String(shards),
            ...o.env,
          });
          delete env.REDIS_URL;
          roles.push(await spawnRole('delivery', env));
          roles.push(await spawnRole('ingest', env));
          const phase = await deliverBulk({ sink, ingestOrigin: `http://127.0.0.1:${ingestPort}`, tag: `c${shards}`, n: o.n, items: o.e2eItems, concurrency: SEND_CONCURRENCY });
          originMetrics(m, `cluster${shards}`, phase, 'a');
          m[`ratio.cluster${shards}_vs_single`] = ratio(get(m, `cluster${shards}.delivered_s`), get(m, 'single.delivered_s'));
        } finally {
          await Promise.all(roles.map((r) => r.kill()));
          await cluster.stop();
        }
      }
    } finally {
      await sink.close();
    }
    return { metrics: m, knobs: { n: o.n, itemsPerRequest: o.e2eItems, sendConcurrency: SEND_CONCURRENCY, clusterMasters: 3, shards: SHARDS } };
  },
  tables(m: Metrics): Table[] {
    const row = (label: string, k: string, vs: number | null) => [
      label,
      get(m, `${k}.delivered`),
      get(m, `${k}.delivered_s`),
      get(m, `${k}.p50_ms`),
      get(m, `${k}.p99_ms`),
      get(m, `${k}.duplicates`),
      get(m, `${k}.losses`),
      vs,
    ];
    return [
      {
        title: 'e2e-cluster: max phase, single Redis vs a 3-master Redis Cluster',
        columns: ['redis', 'postbacks', 'delivered/s', 'p50 ms', 'p99 ms', 'dups', 'losses', 'x single'],
        rows: [
          row('single', 'single', null),
          ...SHARDS.map((s) => row(`cluster, QUEUE_SHARDS=${s}`, `cluster${s}`, get(m, `ratio.cluster${s}_vs_single`))),
        ],
        notes: ['one ingest and one delivery process; on 2 cores the three cluster nodes compete with them for CPU'],
      },
    ];
  },
};
