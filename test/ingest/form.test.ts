import t from 'tap';
import { decodeForm, splitKey } from '../../src/ingest/form.js';
import { validateIngest, type IngestLimits } from '../../src/ingest/parse-request.js';
import { render } from '../../src/postback/template.js';
import { formCase, requestCase, requestCases } from '../helpers/fixtures.js';

const limits: IngestLimits = { maxItems: 100, maxUrlBytes: 8192, maxRenderedUrlBytes: 16384, encodedDefault: '', maxDelayMs: 60_000, defaultDelayMs: 0 };

/**
 * PHP bracket notation for a JSON ingest body. A form has no null: a null
 * value is left out, which means the same (the placeholder takes the default).
 */
export function toForm(body: { endpoint: Record<string, unknown>; data: Record<string, unknown>[] }): string {
  const pairs: string[] = [];
  const add = (k: string, v: unknown) => pairs.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  for (const [k, v] of Object.entries(body.endpoint)) add(`endpoint[${k}]`, v);
  body.data.forEach((d, i) => {
    const keys = Object.keys(d);
    if (keys.length === 0) add(`data[${i}][]`, '');
    for (const k of keys) if (d[k] !== null) add(`data[${i}][${k}]`, d[k]);
  });
  return pairs.join('&');
}

function requests(body: unknown): string[] {
  const req = validateIngest(body, limits);
  return req.items.map((d) => `${req.template.method} ${render(req.template, d, '')}`);
}

t.test('the original clients\' form means exactly what its JSON twin means', async (t) => {
  const form = formCase('assignment-v1');
  const json = JSON.parse(requestCase('assignment-v1').body);
  const decoded = decodeForm(form.body, 100);
  t.same(decoded, json);
  t.same(requests(decoded), form.expected);
});

t.test('every JSON case sent as a form gives the same requests as its JSON twin', async (t) => {
  for (const c of requestCases()) {
    const json = JSON.parse(c.body);
    const hasEmpty = json.data.some((d: object) => Object.keys(d).length === 0);
    if (hasEmpty) {
      // PHP cannot express an empty object as a field; the closest form is a data item with an empty-named field, which we refuse.
      t.throws(() => decodeForm(toForm(json), 100), { code: 'PB_ERR_BAD_FORM' }, `${c.name}: {} has no form spelling`);
      continue;
    }
    t.same(requests(decodeForm(toForm(json), 100)), requests(json), c.name);
  }
});

t.test('form details: + and percent-encoding, delay_ms as a number, unknown fields kept, strings only', async (t) => {
  t.same(decodeForm('endpoint[method]=post&endpoint[url]=http%3A%2F%2Fh.com%2F%3Fq%3D%7Bq%7D&endpoint[delay_ms]=300&data[0][q]=a+b%26c&data[0][n]=1&extra=x', 100), {
    endpoint: { method: 'post', url: 'http://h.com/?q={q}', delay_ms: 300 },
    data: [{ q: 'a b&c', n: '1' }],
    extra: 'x',
  });
  t.same((decodeForm('endpoint[delay_ms]=soon&data[0][a]=1', 100) as { endpoint: unknown }).endpoint, { delay_ms: 'soon' }, 'a non-numeric delay stays a string and fails validation');
  t.throws(() => validateIngest(decodeForm('endpoint[method]=GET&endpoint[url]=http://h.com/&endpoint[delay_ms]=soon&data[0][a]=1', 100), limits), { code: 'PB_ERR_VALIDATION', message: /delay_ms/ });
  t.same(splitKey('data[0][a.b]'), ['data', '0', 'a.b']);
});

t.test('a generated battery of malformed forms: each a 400 naming the key', async (t) => {
  const ok = 'endpoint[method]=GET&endpoint[url]=http%3A%2F%2Fh.com%2F%3Fk%3D%7Bk%7D';
  const cases: [string, RegExp][] = [
    ['', /form is empty/],
    ['&&&', /form is empty/],
    ['hello', /neither JSON nor a form: send a JSON object .* or a form endpoint\[method\]=GET/],
    ['[1,2]', /neither JSON nor a form/],
    ['key=value&other=1', /neither JSON nor a form/],
    [`${ok}&data[x][`, /never closed/],
    [`${ok}&data[0][k`, /never closed/],
    [`${ok}&data]0[=1`, /"\]" without "\["/],
    [`${ok}&[0]=1`, /no name before/],
    [`${ok}&data[0][]=1`, /empty brackets/],
    [`${ok}&data[]=1`, /empty brackets/],
    [`${ok}&data[0][a[b]]=1`, /inside brackets/],
    [`${ok}&data[0]x[k]=1`, /expected "\["/],
    [`${ok}&data[1][k]=a`, /data\[0\] is missing/],
    [`${ok}&data[0][k]=a&data[2][k]=b`, /data\[1\] is missing/],
    [`${ok}&data[a][k]=1`, /data index must be a number/],
    [`${ok}&data[-1][k]=1`, /data index must be a number/],
    [`${ok}&data[01][k]=1`, /data index must be a number/],
    [`${ok}&data[0.5][k]=1`, /data index must be a number/],
    [`${ok}&data[99999999999][k]=1`, /data index must be a number/],
    [`${ok}&data[0]=x`, /single value/],
    [`${ok}&data=x`, /data\[0\]\[name\]=value/],
    [`${ok}&data[0][k]=1&data[0][k]=2`, /given twice/],
    [`${ok}&data[0][k]=1&data[0]=2`, /given twice/],
    [`${ok}&data[0]=2&data[0][k]=1`, /"data\[0\]" was already given a value/],
    [`${ok}&data[0][k][x]=1`, /nests deeper/],
    [`${ok}&endpoint${'[a]'.repeat(20_000)}=1&data[0][k]=1`, /nests deeper than endpoint\[name\]/],
    [`${ok}&endpoint[url][x]=1&data[0][k]=1`, /nests deeper than endpoint\[name\]/],
    [`${ok}&extra${'[a]'.repeat(20_000)}=1&data[0][k]=1`, /nests deeper/],
    [`${ok}&endpoint=x`, /given twice/],
    [`${ok}&data[0][k]=%E0%A4%A`, /not valid percent-encoding/],
    [`${ok}&data[0][k]=%FF`, /not valid percent-encoding/],
    [`${ok}&data%5B0%5D%5B__proto__%5D=x`, /__proto__/],
    [`${ok}&endpoint[__proto__][x]=1&data[0][k]=1`, /__proto__/],
  ];
  for (const [body, re] of cases) {
    t.throws(() => decodeForm(body, 100), { code: 'PB_ERR_BAD_FORM', status: 400, message: re }, body.slice(ok.length, ok.length + 60) || '(empty)');
  }
  // Past the item limit: invalid_request, as the same request in JSON gets.
  t.throws(() => decodeForm(`${ok}&data[100][k]=1`, 100), { code: 'PB_ERR_VALIDATION', status: 400, message: /more than 100 items; the limit is 100/ });
  // Generated: every truncation of a valid form either decodes or is a coded 400, never anything else.
  const full = `${ok}&data[0][k]=Azureus&data[1][k]=Phyllobates`;
  let coded = 0;
  let decoded = 0;
  for (let cut = 0; cut <= full.length; cut++) {
    try {
      const v = decodeForm(full.slice(0, cut), 100);
      decoded++;
      try {
        validateIngest(v, limits);
      } catch (err) {
        t.equal((err as { status?: number }).status, 400, `truncated at ${cut}: validation error is a 400`);
      }
    } catch (err) {
      coded++;
      t.equal((err as { code?: string }).code, 'PB_ERR_BAD_FORM', `truncated at ${cut}`);
    }
  }
  t.ok(coded > 10 && decoded > 10, `${coded} truncations refused, ${decoded} decoded`);
});
