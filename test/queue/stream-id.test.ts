import t from 'tap';
import { compareStreamIds } from '../../src/queue/stream-id.js';

t.test('stream ids compare as Redis orders them', async (t) => {
  const cases: [string, string, -1 | 0 | 1][] = [
    ['1-0', '1-0', 0],
    ['1-0', '1-1', -1],
    ['9-0', '10-0', -1],
    ['1700000000000-9', '1700000000000-10', -1],
    ['1700000000001-0', '1700000000000-99', 1],
    ['5', '5-0', 0],
    ['5', '5-1', -1],
  ];
  for (const [a, b, want] of cases) {
    t.equal(Math.sign(compareStreamIds(a, b)), want, `${a} vs ${b}`);
    t.equal(Math.sign(compareStreamIds(b, a)), -want || 0, `${b} vs ${a}`);
  }
  t.same(['10-0', '9-1', '9-0', '100-0'].sort(compareStreamIds), ['9-0', '9-1', '10-0', '100-0']);
});
