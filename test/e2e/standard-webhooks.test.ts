/**
 * SIGNING_SCHEME=standard through a real pipeline: what the sink receives
 * verifies with `standardwebhooks`, the reference receiver library, for a
 * POST (its JSON body) and a GET (empty payload), with one whsec_ secret
 * and during a rotation (each secret alone verifies); the library rejects
 * a tampered body and an old timestamp; webhook-id is the postback id, the
 * same on every attempt, and webhook-timestamp is per attempt.
 */
import t from 'tap';
import { Webhook } from 'standardwebhooks';
import { startSink, type Received } from '../helpers/sink.js';
import { startStack } from '../helpers/stack.js';

const A = `whsec_${Buffer.alloc(32, 1).toString('base64')}`;
const B = 'rotating-raw-secret-0123456789';

const headersOf = (r: Received): Record<string, string> => ({
  'webhook-id': String(r.headers['webhook-id']),
  'webhook-timestamp': String(r.headers['webhook-timestamp']),
  'webhook-signature': String(r.headers['webhook-signature']),
});

for (const [name, secrets] of [
  ['one whsec_ secret', [A]],
  ['a rotation: a whsec_ and a raw secret', [A, B]],
] as const) {
  t.test(`deliveries verify with the standardwebhooks library: ${name}`, async (t) => {
    let n = 0;
    const sink = await startSink(() => (n++ === 0 ? { status: 503 } : { status: 200 }));
    t.teardown(() => sink.close());
    const stack = await startStack({ SIGNING_SCHEME: 'standard', SIGNING_SECRET: secrets.join(','), DELIVERY_BACKOFF_BASE_MS: '2400' });
    t.teardown(() => stack.stop());
    await stack.send({ endpoint: { method: 'POST', url: `${sink.origin}/post` }, data: [{ click: 'c1', amount: 2.5 }] });
    await stack.send({ endpoint: { method: 'GET', url: `${sink.origin}/get?click={click}` }, data: [{ click: 'c2' }] });
    const got = await sink.waitFor(3, 20_000);
    const post = got.filter((r) => r.url === '/post');
    const get = got.find((r) => r.url.startsWith('/get')) as Received;
    const verifiers = secrets.map((s) => (s.startsWith('whsec_') ? new Webhook(s) : new Webhook(s, { format: 'raw' })));
    for (const [i, wh] of verifiers.entries()) {
      for (const r of post) t.same(wh.verify(r.body, headersOf(r)), { click: 'c1', amount: 2.5 }, `POST verifies with secret ${i + 1} alone`);
      t.doesNotThrow(() => wh.verify('', headersOf(get), { jsonParse: false }), `GET verifies (empty payload) with secret ${i + 1} alone`);
    }
    t.equal(String(get.headers['webhook-signature']).split(' ').length, secrets.length, 'one v1 signature per secret');
    t.equal(post.length, 2, 'the POST was tried twice (503, then 200)');
    t.equal(post[0]!.headers['webhook-id'], post[1]!.headers['webhook-id'], 'webhook-id: the same postback id on every attempt');
    t.equal(post[0]!.headers['webhook-id'], post[0]!.headers['x-postback-id']);
    t.not(post[0]!.headers['webhook-timestamp'], post[1]!.headers['webhook-timestamp'], 'webhook-timestamp: per attempt');
    t.equal(post[0]!.headers['x-postback-signature'], undefined, 'no postback-scheme headers');

    const wh = verifiers[0] as Webhook;
    const last = post[1] as Received;
    t.throws(() => wh.verify(last.body.replace('2.5', '25'), headersOf(last)), /signature/i, 'a tampered body is rejected');
    const old = { ...headersOf(last), 'webhook-timestamp': String(Math.floor(Date.now() / 1000) - 3_600) };
    t.throws(() => wh.verify(last.body, old), /timestamp too old/i, 'an old timestamp is rejected');
    t.throws(() => new Webhook(`whsec_${Buffer.alloc(32, 9).toString('base64')}`).verify(last.body, headersOf(last)), /signature/i, 'another secret does not verify');
  });
}
