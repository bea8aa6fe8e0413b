import t from 'tap';
import { decodeDeadLetter, decodeEntry, type Entry } from '../../src/queue/codec.js';
import { deadLetter, handBackEntry, retryEntry } from '../../src/delivery/outcome-records.js';
import { noResponse, type AttemptResult } from '../../src/delivery/attempt.js';

const entry: Entry = {
  requestId: 'req1',
  templateId: 'T'.repeat(16),
  requestTime: 1000,
  dueTime: 1500,
  firstIndex: 64,
  attempts: 0,
  items: [{ n: 0 }, { n: 1 }, { n: 2 }],
  last: null,
};
const served: AttemptResult = { url: 'http://h/x?n=1', deliveryTime: 2000, responseTime: 2005, latencyMs: 5, status: 503, body: 'busy', errorCode: null, error: null, retryAfter: '2' };

t.test('a retry is the one postback, with its attempts and last result', async (t) => {
  t.same(decodeEntry(retryEntry(entry, 1, 1, served)), {
    ...entry,
    firstIndex: 65,
    attempts: 1,
    items: [{ n: 1 }],
    last: { status: 503, errorCode: null, error: null },
  });
});

t.test('a hand-back is the unstarted rest of the entry, attempts unchanged', async (t) => {
  t.same(decodeEntry(handBackEntry(entry, 2)), { ...entry, firstIndex: 66, items: [{ n: 2 }] });
  t.same(decodeEntry(handBackEntry(entry, 0)), entry);
});

t.test('a dead letter keeps the postback whole, with its template', async (t) => {
  const known = { stored: { method: 'POST' as const, url: 'http://h/x?n={n}' }, compiled: null, origin: 'http://h' };
  t.same(decodeDeadLetter(deadLetter(entry, known, 1, 5, 'dead', served, 3000)), {
    id: 'req1:65',
    method: 'POST',
    template: 'http://h/x?n={n}',
    url: 'http://h/x?n=1',
    data: { n: 1 },
    requestTime: 1000,
    attempts: 5,
    outcome: 'dead',
    status: 503,
    errorCode: null,
    error: null,
    body: 'busy',
    deadTime: 3000,
  });
  const lost = decodeDeadLetter(deadLetter(entry, undefined, 0, 1, 'dead', noResponse('', 'PB_ERR_TEMPLATE_MISSING', 'gone', 9), 9));
  t.match(lost, { id: 'req1:64', template: '', errorCode: 'PB_ERR_TEMPLATE_MISSING', status: null, body: null });
});
