/**
 * The floor baseline's processes (bench/baselines/trickle-floor.ts) on a
 * stack's Redis: the same hops as the service with nothing else. `front`
 * is its ingest (node:http, one XADD of the body, 202 once Redis has it),
 * `back` its delivery (XREAD BLOCK, one undici request per item).
 */
import { benchScript, spawnNode, type Child } from './procs.js';
import type { Stack } from './stack.js';
import { packageUserAgent } from './version.js';

function floorEnv(stack: Stack, role: 'front' | 'back'): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    REDIS_URL: stack.redis.url,
    FLOOR_STREAM: `${stack.env.REDIS_PREFIX ?? 'bench'}:floor`,
    FLOOR_USER_AGENT: packageUserAgent(),
    FLOOR_ROLE: role,
  };
}

/** The floor's delivery side: an XREAD BLOCK loop sending each item through undici. */
export function startFloorBack(stack: Stack): Promise<Child> {
  return spawnNode('floor-back', benchScript('baselines/trickle-floor.js'), { env: floorEnv(stack, 'back') });
}

/** The floor's ingest side, and its origin (http://127.0.0.1:<port>). */
export async function startFloorFront(stack: Stack): Promise<{ origin: string; child: Child }> {
  const child = await spawnNode('floor-front', benchScript('baselines/trickle-floor.js'), { env: floorEnv(stack, 'front') });
  try {
    const { port } = await child.message<{ type: string; port: number }>((x) => (x as { type?: string }).type === 'listening');
    return { origin: `http://127.0.0.1:${port}`, child };
  } catch (err) {
    await child.kill();
    throw err;
  }
}
