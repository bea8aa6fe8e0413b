/**
 * Delivery threads that take their time to load: the process says ready
 * only once every thread can take a batch. Piscina hands batches to the
 * threads it starts with while they are still loading, where a pause, a
 * Retry-After or the hand-back at shutdown cannot reach them.
 */
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSink } from '../helpers/sink.js';
import { startStack } from '../helpers/stack.js';

const PRELOAD = fileURLToPath(new URL('../fixtures/preload/slow-thread-boot.cjs', import.meta.url));

t.test('DELIVERY_WORKERS=2, threads 3 s to load: ready only after both', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pb-boot-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bootFile = join(dir, 'booted');
  const sink = await startSink();
  t.teardown(() => sink.close());
  const stack = await startStack({}, { deliveries: 0 });
  t.teardown(() => stack.stop());

  await stack.startDelivery({ DELIVERY_WORKERS: '2', NODE_OPTIONS: `--require ${PRELOAD}`, SLOW_BOOT_FILE: bootFile, SLOW_BOOT_MS: '3000' });
  const booted = existsSync(bootFile) ? readFileSync(bootFile, 'utf8').trim().split('\n').filter(Boolean) : [];
  t.equal(booted.length, 2, 'both threads had loaded when the process said ready');

  t.equal((await stack.send({ endpoint: { method: 'GET', url: `${sink.origin}/first` }, data: [{}] })).status, 202);
  const [first] = await sink.waitFor(1, 10_000);
  t.equal(first?.url, '/first', 'and the threads deliver');
});
