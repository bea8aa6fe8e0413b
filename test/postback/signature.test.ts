/**
 * Signatures as tables: which secrets are usable, the postback scheme's
 * headers, and the Standard Webhooks scheme matching the reference
 * library's own signing (the `standardwebhooks` package) byte for byte,
 * for whsec_ and raw secrets, one or two.
 */
import t from 'tap';
import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { createSigner, secretBytes, secretProblem, signedPayload } from '../../src/postback/signature.js';

const WHSEC = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
const RAW = 'raw-secret-0123456789';

t.test('which secrets are usable', async (t) => {
  const table: [string, RegExp | null][] = [
    [RAW, null],
    ['short', /at least 16 characters/],
    [WHSEC, null],
    [`whsec_${Buffer.alloc(24).toString('base64')}`, null],
    [`whsec_${Buffer.alloc(16).toString('base64')}`, /24 to 64 bytes \(this one: 16\)/],
    [`whsec_${Buffer.alloc(65).toString('base64')}`, /24 to 64 bytes/],
    ['whsec_not base64!', /followed by base64/],
    ['whsec_abc', /followed by base64/],
  ];
  for (const [secret, want] of table) {
    const p = secretProblem(secret);
    if (want === null) t.equal(p, null, secret.slice(0, 12));
    else t.match(p, want, secret.slice(0, 12));
  }
  t.same(secretBytes(WHSEC), Buffer.alloc(32, 7), 'whsec_: the decoded bytes');
  t.same(secretBytes(RAW), Buffer.from(RAW), 'raw: its UTF-8 bytes');
});

t.test('the postback scheme', async (t) => {
  const s = createSigner([RAW])!;
  const h = s.headers('req:0', 1_800_000_000, 'GET', 'https://p.example/cb?x=1', null);
  const want = createHmac('sha256', RAW).update(signedPayload('req:0', 1_800_000_000, 'GET', 'https://p.example/cb?x=1', null)).digest('hex');
  t.same(h, { 'x-postback-timestamp': '1800000000', 'x-postback-signature': `v1=${want}` });
  t.equal(createSigner([]), null, 'no secret: unsigned');
});

t.test('Standard Webhooks: the same signature as the reference library', async (t) => {
  const at = new Date(1_800_000_000_000);
  for (const [name, secrets] of [
    ['whsec_', [WHSEC]],
    ['raw', [RAW]],
    ['rotation', [WHSEC, RAW]],
  ] as const) {
    const s = createSigner(secrets, 'standard')!;
    for (const body of ['{"a":1}', null]) {
      const h = s.headers('req:7', 1_800_000_000, 'POST', 'https://p.example/cb', body);
      t.equal(h['webhook-id'], 'req:7');
      t.equal(h['webhook-timestamp'], '1800000000');
      const refs = secrets.map((secret) => (secret.startsWith('whsec_') ? new Webhook(secret) : new Webhook(secret, { format: 'raw' })).sign('req:7', at, body ?? ''));
      t.equal(h['webhook-signature'], refs.join(' '), `${name}, ${body === null ? 'empty body (GET)' : 'a body'}: one v1,<base64> per secret, space-separated`);
      t.notOk('x-postback-signature' in h, 'no postback-scheme header');
    }
  }
});
