/**
 * Redis loses every key (FLUSHALL, or a restart without persistence) under
 * two running delivery processes and a monitor. An audit had read
 * pb_delivery_processes 1 with two processes running after such a loss;
 * it is a transient: each process re-adds its heartbeat (ZADD, which
 * recreates the set) every 5 s (partners/control.ts), so the gauge reads
 * 0, then 1, then 2 within one heartbeat period (measured 2.7 s after a
 * FLUSHALL, 4.6 s after a restart). This test keeps it bounded, and shows
 * delivery carrying on (consumer groups and scripts recreated) without a
 * restart.
 */
import t from 'tap';
import { startSink } from '../helpers/sink.js';
import { startStack } from '../helpers/stack.js';
import { spawnRole } from '../helpers/procs.js';
import { get } from '../helpers/http.js';
import { until } from '../helpers/count.js';

async function gauge(monitorUrl: string): Promise<number | null> {
  const res = await get(`${monitorUrl}/metrics`).catch(() => null);
  const m = res === null ? null : /^pb_delivery_processes\{[^}]*\} (\S+)$/m.exec(res.body);
  return m ? Number(m[1]) : null;
}

t.test('two delivery processes after Redis lost its data: counted again, and delivering', async (t) => {
  const sink = await startSink();
  t.teardown(() => sink.close());
  const stack = await startStack({ MONITOR_PORT: '0' }, { deliveries: 2 });
  t.teardown(() => stack.stop());
  const monitor = await spawnRole('monitor', stack.env);
  t.teardown(() => monitor.stop());
  const monitorUrl = `http://127.0.0.1:${monitor.port('monitor')}`;
  let n = 0;
  const deliverOne = async (what: string): Promise<void> => {
    const id = n++;
    t.ok(
      await until(async () => (await stack.send({ endpoint: { method: 'GET', url: `${sink.origin}/d?n=${id}` }, data: [{}] })).status === 202, 20_000),
      `${what}: ingest accepts postback ${id}`,
    );
    t.ok(await until(() => sink.received.some((r) => r.url === `/d?n=${id}`), 20_000), `${what}: postback ${id} delivered`);
  };

  await deliverOne('before');
  t.ok(await until(async () => (await gauge(monitorUrl)) === 2, 20_000), 'the monitor counts both delivery processes');

  const members = `${stack.env.REDIS_PREFIX}:{ctl}:members`;
  const check = stack.redis.client();
  const lose = async (how: string, wipe: () => Promise<void>): Promise<void> => {
    await wipe();
    const at = Date.now();
    const seen: string[] = [];
    // Both the gauge and Redis itself: while the monitor cannot reach Redis
    // its gauge keeps the last value it read, which may be the one from
    // before the loss.
    const back = await until(async () => {
      const g = await gauge(monitorUrl);
      const live = await check.zcount(members, Date.now() - 15_000, '+inf').catch(() => null);
      const now = `gauge ${g}, heartbeats in Redis ${live}`;
      if (seen.at(-1)?.endsWith(now) !== true) seen.push(`${Date.now() - at} ms: ${now}`);
      return g === 2 && live === 2;
    }, 30_000);
    const took = Date.now() - at;
    t.comment(`${how}: ${seen.join('; ')}`);
    t.ok(back, `${how}: both delivery processes heartbeat again and the monitor counts them (after ${took} ms)`);
    // One heartbeat period (5 s) plus reconnecting and the polls' slack.
    t.ok(took < 12_000, `${how}: within 12 s (${took} ms)`);
    await deliverOne(`after ${how}`);
    await deliverOne(`after ${how}, again`);
  };

  await lose('FLUSHALL', async () => {
    t.equal(await check.flushall(), 'OK');
    t.equal(await check.exists(members), 0, 'FLUSHALL took the heartbeats too');
  });
  await lose('a restart without persistence', async () => {
    await stack.redis.stop();
    await stack.redis.start();
  });
  t.equal(stack.deliveries.filter((d) => d.proc.exitCode === null).length, 2, 'neither delivery process exited');
});
