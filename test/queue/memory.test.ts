import t from 'tap';
import { isFull, parseMemoryInfo } from '../../src/queue/memory.js';

t.test('INFO memory: the fields read, and when Redis refuses writes', async (t) => {
  const info = (used: number, max: number, policy: string) => `# Memory\r\nused_memory:${used}\r\nused_memory_human:1M\r\nmaxmemory:${max}\r\nmaxmemory_policy:${policy}\r\n`;
  t.same(parseMemoryInfo(info(1000, 2000, 'noeviction')), { used: 1000, max: 2000, policy: 'noeviction' });
  t.same(parseMemoryInfo(''), { used: 0, max: 0, policy: '' }, 'missing fields read as none');
  const cases: [number, number, string, boolean, string][] = [
    [2000, 2000, 'noeviction', true, 'at maxmemory'],
    [2500, 2000, 'noeviction', true, 'past it'],
    [1999, 2000, 'noeviction', false, 'below it'],
    [5000, 0, 'noeviction', false, 'no maxmemory set'],
    [2500, 2000, 'allkeys-lru', false, 'an evicting policy makes room instead'],
  ];
  for (const [used, max, policy, full, why] of cases) t.equal(isFull(parseMemoryInfo(info(used, max, policy))), full, why);
});
