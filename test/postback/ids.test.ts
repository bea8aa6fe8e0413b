import t from 'tap';
import { createRequestIdGenerator, postbackId } from '../../src/postback/ids.js';

t.test('request ids never begin with "-" (they are typed on command lines) and stay unique', async (t) => {
  const seen = new Set<string>();
  let dashed = 0;
  // 2,000 generators: about 31 of them would begin with "-" if nothing prevented it.
  for (let g = 0; g < 2_000; g++) {
    const next = createRequestIdGenerator();
    for (let i = 0; i < 3; i++) {
      const id = next();
      if (id.startsWith('-')) dashed++;
      seen.add(id);
    }
  }
  t.equal(dashed, 0);
  t.equal(seen.size, 6_000);
  t.equal(postbackId('abc', 7), 'abc:7');
});
