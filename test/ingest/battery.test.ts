/**
 * A generated battery of thousands of malformed requests against the real
 * ingest server (in-process, real Redis): every one must get a 4xx with a
 * JSON error body, none may queue anything, and the server must answer a
 * valid request afterwards. Plus slow clients (slowloris bodies and
 * headers) and malformed HTTP on raw sockets. Deterministic: a seeded PRNG.
 */
import t from 'tap';
import { once } from 'node:events';
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { createIngestServer } from '../../src/ingest/server.js';
import { Enqueuer } from '../../src/ingest/enqueue.js';
import { createRedis } from '../../src/queue/redis.js';
import { shardKeys } from '../../src/queue/keys.js';
import { createRequestIdGenerator } from '../../src/postback/ids.js';
import { startRedis } from '../helpers/redis.js';
import { testConfig } from '../helpers/config.js';

const MAX_BODY = 65_536;
const MAX_ITEMS = 100;
const REQUEST_TIMEOUT_MS = 1500;
const HEADERS_TIMEOUT_MS = 1000;
/** node:http checks timeouts on this period (connectionsCheckingInterval in src/ingest/server.ts). */
const CHECK_INTERVAL_MS = 1000;

/** mulberry32: small, fast, deterministic. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = prng(0x5eed_2024);
const int = (n: number): number => Math.floor(rand() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;

const GET_URL = 'http://sample_domain_endpoint.com/data?key={key}&value={value}&foo={bar}';
const SAMPLE = {
  endpoint: { method: 'GET', url: GET_URL },
  data: [
    { key: 'Azureus', value: 'Dendrobates' },
    { key: 'Phyllobates', value: 'Terribilis' },
  ],
};
const SAMPLE_POST = {
  endpoint: { method: 'post', url: 'https://partner.example/cb/{click_id}?v={value}&u={user}&ok={ok}', delay_ms: 0 },
  data: [
    { click_id: 'abc123', value: 1.5, user: 'Zoë Ünal 😀 ✓ 日本', ok: true, none: null },
    { click_id: 'def456', value: -42, user: 'plain', ok: false, 'odd key': 'x y' },
    { click_id: 'ghi789', value: 0, user: '', ok: true, big: 9007199254740991 },
    { click_id: 'jkl012', value: 3.14159, user: 'a&b=c', ok: false, neg: -0.001 },
    { click_id: 'mno345', value: 2.5e-7, user: 'ß', ok: true },
  ],
};

type Expect = { status: number[]; errors?: string[] };

interface Case {
  cls: string;
  name: string;
  body: Buffer;
  path: string;
  method: string;
  headers: Record<string, string>;
  /** Send without Content-Length, in chunks. */
  chunked: boolean;
  expect: Expect;
  /** The server closes the connection after answering (413): a reset while sending is legitimate. */
  mayClose: boolean;
}

const BAD_JSON: Expect = { status: [400], errors: ['bad_json'] };
const BAD_ENCODING: Expect = { status: [400], errors: ['bad_encoding'] };
const INVALID: Expect = { status: [400], errors: ['invalid_request'] };
const ANY_400: Expect = { status: [400], errors: ['bad_json', 'bad_encoding', 'invalid_request'] };
const TOO_LARGE: Expect = { status: [413], errors: ['payload_too_large'] };

const cases: Case[] = [];
let nth = 0;
/** Spreads the battery over both ingest paths and /preview (which must answer 400 the same way). */
function route(): string {
  const k = nth++ % 10;
  return k === 9 ? '/preview' : k % 2 === 0 ? '/i' : '/ingest.php';
}

function add(
  cls: string,
  name: string,
  body: string | Buffer,
  expect: Expect,
  opts: Partial<Pick<Case, 'path' | 'method' | 'headers' | 'chunked' | 'mayClose'>> = {},
): void {
  cases.push({
    cls,
    name,
    body: typeof body === 'string' ? Buffer.from(body) : body,
    path: opts.path ?? route(),
    method: opts.method ?? 'POST',
    headers: opts.headers ?? { 'content-type': 'application/json' },
    chunked: opts.chunked ?? false,
    expect,
    mayClose: opts.mayClose ?? false,
  });
}

/** JSON text of `v` with each `"@@RAWn@@"` string swapped for raw JSON text (1e400, deep nesting...). */
function withRaw(v: unknown, raws: string[]): string {
  let s = JSON.stringify(v);
  raws.forEach((raw, i) => {
    s = s.split(`"@@RAW${i}@@"`).join(raw);
  });
  return s;
}

const clone = <T>(v: T): T => structuredClone(v);
const deepArrays = (n: number): string => '['.repeat(n) + ']'.repeat(n);
const deepObjects = (n: number): string => '{"a":'.repeat(n) + '1' + '}'.repeat(n);

// 1. Truncations of valid bodies at every byte offset (offset 0 is the empty body).
const samples: [string, Buffer][] = [
  ['sample', Buffer.from(JSON.stringify(SAMPLE))],
  ['post', Buffer.from(JSON.stringify(SAMPLE_POST))],
  ['pretty', Buffer.from(JSON.stringify(SAMPLE_POST, null, 2))],
];
for (const [label, full] of samples) {
  for (let cut = 0; cut < full.length; cut++) {
    const prefix = full.subarray(0, cut);
    // A cut inside a multi-byte character leaves invalid UTF-8; anything else is unfinished JSON.
    let validUtf8 = true;
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(prefix);
    } catch {
      validUtf8 = false;
    }
    add('truncation', `${label}[0,${cut})`, prefix, validUtf8 ? BAD_JSON : BAD_ENCODING);
  }
}

// 2. Wrong types for every field, at the top, in the endpoint, in data, in items and in values.
const HUGE = ['1e400', '-1e309', String(2 ** 60), '9007199254740993', '-9007199254740993', '1e309', '123456789012345678901234567890'];
const NOT_OBJECTS: unknown[] = [null, true, false, 0, -1, 1.5, '', 'x', 'GET', [], [1], [{}], [null]];
const RAW_NOT_OBJECTS = ['1e400', deepArrays(200), '"\\ud800"'];

for (const shape of [SAMPLE, SAMPLE_POST]) {
  // The whole body.
  for (const v of NOT_OBJECTS) add('type:body', `body=${JSON.stringify(v)}`, JSON.stringify(v), INVALID);
  add('type:body', 'body=[sample]', JSON.stringify([shape]), INVALID);
  // endpoint
  for (const v of [...NOT_OBJECTS, [shape.endpoint]]) {
    add('type:endpoint', `endpoint=${JSON.stringify(v)}`, JSON.stringify({ ...shape, endpoint: v }), INVALID);
  }
  for (const raw of RAW_NOT_OBJECTS) add('type:endpoint', `endpoint=raw ${raw.slice(0, 12)}`, withRaw({ ...shape, endpoint: '@@RAW0@@' }, [raw]), INVALID);
  add('type:endpoint', 'endpoint missing', JSON.stringify({ data: shape.data }), INVALID);
  // endpoint.method
  const badMethods: unknown[] = [
    null, true, 0, 1, [], ['GET'], {}, '', ' GET', 'GET ', 'GETT', 'PO ST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS',
    'CONNECT', 'G\u0000T', 'GE\ud800', '\ud800\udc00', 'get\n', 'ＧＥＴ', 'PÖST', 'POST'.repeat(100),
  ];
  for (const m of badMethods) {
    add('type:method', `method=${JSON.stringify(m)?.slice(0, 40)}`, JSON.stringify({ ...shape, endpoint: { ...shape.endpoint, method: m } }), INVALID);
  }
  for (const raw of HUGE) add('type:method', `method=${raw}`, withRaw({ ...shape, endpoint: { ...shape.endpoint, method: '@@RAW0@@' } }, [raw]), INVALID);
  add('type:method', 'method missing', JSON.stringify({ ...shape, endpoint: { url: shape.endpoint.url } }), INVALID);
  // endpoint.url
  const badUrls: unknown[] = [
    null, true, 1, [], [GET_URL], {}, { href: GET_URL }, '', ' ', 'sample_domain_endpoint.com/data?key={key}',
    '//sample_domain_endpoint.com/x', '/relative/{key}', 'relative/path', 'http://', 'https://', 'http://:80/',
    'ftp://files.example/{key}', 'ftps://files.example/x', 'file:///etc/passwd', 'javascript:alert(1)', 'data:text/plain,{key}',
    'mailto:a@b.c', 'ws://h.example/{key}', 'wss://h.example/', 'gopher://h.example/', 'blob:http://h/x',
    'http://user:pass@h.example/{key}', 'https://user@h.example/', 'http://:pw@h.example/',
    'http://h.example:{port}/x', 'http://h.example:{port}', 'https://{host}:{port}/', 'http://h.example:8{port}/x',
    'http://h.example:{p}0/x', 'http://h.example:99999/', 'http://h.example:-1/', 'http://h.example:80a/',
    'http://[::1/x', 'http://[zz::1]/', 'http://h .example/', 'http://h\u0000.example/', 'http://%zz/', 'http://h<x>/',
    `http://h.example/${'x'.repeat(8200)}`, `http://h.example/?q=${'{k}'.repeat(3000)}`,
    'http://\ud800.example/', 'HTTP//missing-colon.example/', '\thttp',
  ];
  for (const u of badUrls) {
    add('type:url', `url=${JSON.stringify(u)?.slice(0, 50)}`, JSON.stringify({ ...shape, endpoint: { ...shape.endpoint, url: u } }), INVALID);
  }
  for (const raw of HUGE) add('type:url', `url=${raw}`, withRaw({ ...shape, endpoint: { ...shape.endpoint, url: '@@RAW0@@' } }, [raw]), INVALID);
  add('type:url', 'url missing', JSON.stringify({ ...shape, endpoint: { method: 'GET' } }), INVALID);
  // endpoint.delay_ms
  for (const d of [-1, 1.5, '10', '', true, [], {}, [10], 86_400_001, 1e12, -0.5]) {
    add('type:delay_ms', `delay_ms=${JSON.stringify(d)}`, JSON.stringify({ ...shape, endpoint: { ...shape.endpoint, delay_ms: d } }), INVALID);
  }
  for (const raw of HUGE) add('type:delay_ms', `delay_ms=${raw}`, withRaw({ ...shape, endpoint: { ...shape.endpoint, delay_ms: '@@RAW0@@' } }, [raw]), INVALID);
  // data
  const badData: unknown[] = [null, true, 0, 1, '', 'x', '[]', {}, { 0: { key: 'a' } }, [], ...[MAX_ITEMS + 1, 250, 1000].map((n) => Array.from({ length: n }, (_, i) => ({ i })))];
  for (const d of badData) {
    add('type:data', `data=${JSON.stringify(d).slice(0, 30)} (${Array.isArray(d) ? d.length : typeof d})`, JSON.stringify({ ...shape, data: d }), INVALID);
  }
  for (const raw of [...HUGE, deepArrays(1000), deepObjects(1000)]) {
    add('type:data', `data=raw ${raw.slice(0, 12)}`, withRaw({ ...shape, data: '@@RAW0@@' }, [raw]), INVALID);
  }
  add('type:data', 'data missing', JSON.stringify({ endpoint: shape.endpoint }), INVALID);
  add('type:data', 'data duplicated, the last one bad', JSON.stringify({ ...shape }).replace(/}$/, ',"data":"x"}'), INVALID);
  // items (data[i]): each bad item at the front, the middle and the end of a run of good ones.
  for (const item of NOT_OBJECTS.filter((v) => v === null || typeof v !== 'object' || Array.isArray(v))) {
    for (const at of [0, 1, 7, 49]) {
      const data: unknown[] = Array.from({ length: 50 }, (_, i) => ({ ...(shape.data[i % shape.data.length] as object), i }));
      data[at] = item;
      add('type:item', `data[${at}]=${JSON.stringify(item)}`, JSON.stringify({ ...shape, data }), INVALID);
    }
  }
  for (const raw of [...HUGE, deepArrays(500)]) {
    add('type:item', `data[1]=raw ${raw.slice(0, 12)}`, withRaw({ ...shape, data: [shape.data[0], '@@RAW0@@'] }, [raw]), INVALID);
  }
}

// values (data[i][key]): anything but string, finite number, safe integer, boolean or null.
const badValues: unknown[] = [[], {}, [1], ['a'], { a: 1 }, { toString: 'x' }, [null], [[]], { '': null }];
const rawBadValues = [...HUGE, '-1e400', '1.7976931348623157e309', deepArrays(2000), deepObjects(2000)];
const valueKeys = ['value', 'odd key', 'ключ', '', '__proto__x', 'constructor', 'toString', 'k'.repeat(100)];
for (const shape of [SAMPLE, SAMPLE_POST]) {
  for (const key of valueKeys) {
    for (const at of [0, 1]) {
      for (const v of badValues) {
        const body = clone(shape) as { data: Record<string, unknown>[] };
        (body.data[at] as Record<string, unknown>)[key] = v;
        add('type:value', `data[${at}][${JSON.stringify(key).slice(0, 20)}]=${JSON.stringify(v)}`, JSON.stringify(body), INVALID);
      }
      for (const raw of rawBadValues) {
        const body = clone(shape) as { data: Record<string, unknown>[] };
        (body.data[at] as Record<string, unknown>)[key] = '@@RAW0@@';
        add('type:value', `data[${at}][${JSON.stringify(key).slice(0, 20)}]=raw ${raw.slice(0, 16)}`, withRaw(body, [raw]), INVALID);
      }
    }
  }
}

// 3. Deep nesting, as the whole body and as a value (what fits in the limit gets 400, the rest 413).
add('nesting', 'body = 30000 nested arrays', deepArrays(30_000), INVALID);
add('nesting', 'body = 10000 nested objects', deepObjects(10_000), INVALID);
add('nesting', 'value = 30000 nested arrays', withRaw({ ...SAMPLE, data: [{ v: '@@RAW0@@' }] }, [deepArrays(30_000)]), INVALID);
add('nesting', 'endpoint = 10000 nested objects', withRaw({ ...SAMPLE, endpoint: '@@RAW0@@' }, [deepObjects(10_000)]), INVALID);
add('nesting', 'unclosed 60000 nesting', '['.repeat(60_000), BAD_JSON);
add('nesting', 'body = 100000 nested arrays', deepArrays(100_000), TOO_LARGE, { mayClose: true });
add('nesting', 'value = 100000 nested arrays', withRaw({ ...SAMPLE, data: [{ v: '@@RAW0@@' }] }, [deepArrays(100_000)]), TOO_LARGE, { mayClose: true });
add('nesting', 'body = 100000 nested objects', deepObjects(100_000), TOO_LARGE, { mayClose: true });
add('nesting', 'body = 100000 nested arrays, chunked', deepArrays(100_000), TOO_LARGE, { mayClose: true, chunked: true });

// 4. Invalid UTF-8 anywhere in an otherwise valid body.
const BAD_UTF8: [string, number[]][] = [
  ['ff', [0xff]],
  ['fe', [0xfe]],
  ['lone continuation', [0x80]],
  ['overlong NUL', [0xc0, 0x80]],
  ['overlong slash', [0xc1, 0xbf]],
  ['overlong 3-byte', [0xe0, 0x80, 0xaf]],
  ['surrogate D800 (CESU)', [0xed, 0xa0, 0x80]],
  ['surrogate pair (CESU)', [0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80]],
  ['above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
  ['truncated 2-byte', [0xc3]],
  ['truncated 3-byte', [0xe2, 0x82]],
  ['truncated 4-byte', [0xf0, 0x9f, 0x98]],
  ['5-byte form', [0xf8, 0x88, 0x80, 0x80, 0x80]],
  ['latin1 é', [0xe9]],
];
for (const [label, full] of samples) {
  for (const [what, bytes] of BAD_UTF8) {
    const spots = new Set<number>([0, full.length, full.indexOf('Azureus'), full.indexOf('abc123'), full.indexOf('http')]);
    while (spots.size < 14) spots.add(int(full.length + 1));
    for (const at of spots) {
      if (at < 0) continue;
      add('utf8', `${label} + ${what} at ${at}`, Buffer.concat([full.subarray(0, at), Buffer.from(bytes), full.subarray(at)]), BAD_ENCODING);
    }
  }
}
// Whole bodies in another encoding.
const sampleText = JSON.stringify(SAMPLE_POST);
add('utf8', 'UTF-16LE with BOM', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(sampleText, 'utf16le')]), BAD_ENCODING);
add('utf8', 'UTF-16BE with BOM', Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(sampleText, 'utf16le').swap16()]), BAD_ENCODING);
add('utf8', 'UTF-16LE without BOM', Buffer.from(JSON.stringify(SAMPLE), 'utf16le'), BAD_JSON);
add('utf8', 'latin1 body', Buffer.from(sampleText.replace(/[^\x00-\xff]/g, '?').replace('Zo', 'Zoé'), 'latin1'), BAD_ENCODING);

// 5. Random bytes and random printable text (never valid requests).
for (let i = 0; i < 400; i++) {
  const len = 1 + int(i % 4 === 0 ? 20 : 3000);
  const b = Buffer.alloc(len);
  for (let k = 0; k < len; k++) b[k] = int(256);
  add('random-bytes', `#${i} (${len} B)`, b, ANY_400);
}
const PRINTABLE = ' !"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~\t\r\n';
for (let i = 0; i < 200; i++) {
  const len = 1 + int(400);
  let s = '';
  for (let k = 0; k < len; k++) s += pick([...PRINTABLE]);
  add('random-text', `#${i} (${len} B)`, s, ANY_400);
}

// 6. JSON whose structure looks right but is not: __proto__, lone surrogates, placeholders.
add('proto', 'top-level __proto__ wraps the request', `{"__proto__":${JSON.stringify(SAMPLE)}}`, INVALID);
add('proto', 'endpoint.__proto__ holds method and url', `{"endpoint":{"__proto__":${JSON.stringify(SAMPLE.endpoint)}},"data":${JSON.stringify(SAMPLE.data)}}`, INVALID);
add('proto', 'endpoint.__proto__ holds the method', `{"endpoint":{"url":${JSON.stringify(GET_URL)},"__proto__":{"method":"GET"}},"data":[{"a":1}]}`, INVALID);
add('proto', 'data item with a __proto__ key', `{"endpoint":${JSON.stringify(SAMPLE.endpoint)},"data":[{"key":"a","__proto__":{"polluted":true}}]}`, INVALID);
add('proto', 'data item with __proto__ null', `{"endpoint":${JSON.stringify(SAMPLE.endpoint)},"data":[{"__proto__":null}]}`, INVALID);
add('proto', 'data item with __proto__ string', `{"endpoint":${JSON.stringify(SAMPLE.endpoint)},"data":[{"key":"a"},{"__proto__":"x"}]}`, INVALID);
add('proto', 'data item with __proto__ array', `{"endpoint":${JSON.stringify(SAMPLE.endpoint)},"data":[{"__proto__":[]}]}`, INVALID);
add('proto', '__proto__ in item 99', `{"endpoint":${JSON.stringify(SAMPLE.endpoint)},"data":[${'{"a":1},'.repeat(99)}{"__proto__":{}}]}`, INVALID);
add('proto', 'data = {"__proto__": []}', `{"endpoint":${JSON.stringify(SAMPLE.endpoint)},"data":{"__proto__":[]}}`, INVALID);
add('proto', 'constructor.prototype pollution shape', `{"endpoint":${JSON.stringify(SAMPLE.endpoint)},"data":[{"constructor":{"prototype":{"polluted":true}}}]}`, INVALID);
for (const s of ['\\ud800', '\\udfff', '\\udc00\\ud800', 'a\\ud83d', '\\ud83db']) {
  // A lone surrogate is a legal JSON string; these bodies are bad for another reason beside it.
  add('surrogate', `method "${s}"`, `{"endpoint":{"method":"${s}","url":${JSON.stringify(GET_URL)}},"data":[{"a":"b"}]}`, INVALID);
  add('surrogate', `value "${s}" beside an array`, `{"endpoint":${JSON.stringify(SAMPLE.endpoint)},"data":[{"key":"${s}","bad":[]}]}`, INVALID);
  add('surrogate', `key "${s}" with an object`, `{"endpoint":${JSON.stringify(SAMPLE.endpoint)},"data":[{"${s}":{}}]}`, INVALID);
  add('surrogate', `url scheme "${s}"`, `{"endpoint":{"method":"GET","url":"${s}http://h.example/"},"data":[{"a":"b"}]}`, INVALID);
  add('surrogate', `body is the string "${s}"`, `"${s}"`, INVALID);
}
add('surrogate', 'unpaired escape \\u12', `{"endpoint":${JSON.stringify(SAMPLE.endpoint)},"data":[{"a":"\\u12"}]}`, BAD_JSON);
add('surrogate', 'raw NUL control char in string', `{"endpoint":${JSON.stringify(SAMPLE.endpoint)},"data":[{"a":"x\u0000y"}]}`, BAD_JSON);
add('json', 'trailing comma', `{"endpoint":${JSON.stringify(SAMPLE.endpoint)},"data":[{"a":1},]}`, BAD_JSON);
add('json', 'single quotes', `{'endpoint':{'method':'GET','url':'http://h/'},'data':[{}]}`, BAD_JSON);
add('json', 'comment', `{/* c */"endpoint":${JSON.stringify(SAMPLE.endpoint)},"data":[{"a":1}]}`, BAD_JSON);
add('json', 'NaN', `{"endpoint":${JSON.stringify(SAMPLE.endpoint)},"data":[{"a":NaN}]}`, BAD_JSON);
add('json', 'two documents', `${JSON.stringify(SAMPLE)}${JSON.stringify(SAMPLE)}`, BAD_JSON);
add('json', 'valid then garbage', `${JSON.stringify(SAMPLE)}x`, BAD_JSON);
add('json', 'hex number', `{"endpoint":${JSON.stringify(SAMPLE.endpoint)},"data":[{"a":0x10}]}`, BAD_JSON);
add('json', 'form-encoded body as JSON', 'endpoint[method]=GET&endpoint[url]=http://h/&data[0][a]=1', BAD_JSON);

// 7. Oversized bodies: with Content-Length, chunked, valid JSON or not, just over the limit.
const bigItems = (bytes: number): string => {
  const per = 1000;
  const n = Math.ceil(bytes / (per + 12));
  return JSON.stringify({ ...SAMPLE, data: Array.from({ length: Math.min(n, MAX_ITEMS) }, (_, i) => ({ i, pad: 'p'.repeat(Math.ceil(bytes / Math.min(n, MAX_ITEMS))) })) });
};
const validBig = bigItems(MAX_BODY + 100);
for (const chunked of [false, true]) {
  const how = chunked ? 'chunked' : 'content-length';
  add('oversized', `valid request over the limit (${how})`, validBig, TOO_LARGE, { chunked, mayClose: true });
  add('oversized', `limit + 1 bytes (${how})`, 'x'.repeat(MAX_BODY + 1), TOO_LARGE, { chunked, mayClose: true });
  add('oversized', `1 MB of spaces (${how})`, ' '.repeat(1_048_576), TOO_LARGE, { chunked, mayClose: true });
  add('oversized', `4 MB random (${how})`, randomBytes(4 * 1_048_576), TOO_LARGE, { chunked, mayClose: true });
  add('oversized', `valid JSON with a 70 KB string (${how})`, JSON.stringify({ ...SAMPLE, data: [{ s: 's'.repeat(70_000) }] }), TOO_LARGE, { chunked, mayClose: true });
  add('oversized', `${MAX_ITEMS * 3} items over the limit (${how})`, JSON.stringify({ ...SAMPLE, data: Array.from({ length: MAX_ITEMS * 3 }, (_, i) => ({ i, p: 'q'.repeat(250) })) }), TOO_LARGE, { chunked, mayClose: true });
}
add('oversized', 'exactly the limit, not JSON', 'y'.repeat(MAX_BODY), BAD_JSON);
add('oversized', 'exactly the limit, JSON padded with spaces', JSON.stringify({ ...SAMPLE, data: [{ a: [] }] }).padEnd(MAX_BODY, ' '), INVALID);

// 8. Empty bodies.
add('empty', 'Content-Length: 0', '', BAD_JSON);
add('empty', 'chunked, no chunks', '', BAD_JSON, { chunked: true });
add('empty', 'whitespace only', ' \r\n\t ', BAD_JSON);
add('empty', 'null', 'null', INVALID);
add('empty', '{}', '{}', INVALID);
add('empty', '{"endpoint":{},"data":[]}', '{"endpoint":{},"data":[]}', INVALID);
add('empty', 'empty data', JSON.stringify({ ...SAMPLE, data: [] }), INVALID);

// 9. HTTP-level refusals with an otherwise valid body: media type, method, path.
const validText = JSON.stringify(SAMPLE);
// A JSON text sent as a form is read as JSON and validated as JSON (the
// valid one is queued: server.test.ts); a text that is neither gets 400 bad_form.
const FORM_TYPE = { 'content-type': 'application/x-www-form-urlencoded' };
add('media-type', 'invalid JSON request as a form', JSON.stringify({ ...SAMPLE, data: [] }), INVALID, { headers: FORM_TYPE });
add('media-type', 'broken JSON as a form', `${validText.slice(0, -1)}`, BAD_JSON, { headers: FORM_TYPE });
add('media-type', 'plain text as a form', 'postback please', { status: [400], errors: ['bad_form'] }, { headers: FORM_TYPE });
for (const ct of ['text/plain', 'text/json', 'application/jsonx', 'multipart/form-data; boundary=x', 'application/xml', 'json', 'application', '*/*', 'application/json-seq', 'image/png']) {
  add('media-type', ct, validText, { status: [415], errors: ['unsupported_media_type'] }, { headers: { 'content-type': ct } });
}
for (const m of ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
  for (const path of ['/i', '/ingest.php', '/preview']) {
    add('method', `${m} ${path}`, m === 'GET' || m === 'OPTIONS' ? '' : validText, { status: [405], errors: ['method_not_allowed'] }, { method: m, path });
  }
}
for (const path of ['/', '/I', '/i/', '/ingest', '/ingest.PHP', '/ingest.php/x', '//i', '/%69', '/i%00', '/i;x', '/../i', '/preview/x', '/healthz/x']) {
  add('path', path, validText, { status: [404], errors: ['not_found'] }, { path });
}

interface Outcome {
  c: Case;
  status: number;
  body: string;
  contentType: string | undefined;
  connection: string | undefined;
  connError: string | null;
}

function send(port: number, agent: Agent, c: Case): Promise<Outcome> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (o: Omit<Outcome, 'c'>): void => {
      if (settled) return;
      settled = true;
      resolve({ c, ...o });
    };
    const headers: Record<string, string | number> = { ...c.headers };
    if (c.chunked) headers['transfer-encoding'] = 'chunked';
    else if (c.method !== 'GET' || c.body.length > 0) headers['content-length'] = c.body.length;
    const req = request({ host: '127.0.0.1', port, method: c.method, path: c.path, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () =>
        finish({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString(),
          contentType: res.headers['content-type'],
          connection: res.headers.connection,
          connError: null,
        }),
      );
      res.on('error', (err: NodeJS.ErrnoException) =>
        finish({ status: res.statusCode ?? 0, body: '', contentType: undefined, connection: undefined, connError: `response: ${err.code ?? err.message}` }),
      );
    });
    req.on('error', (err: NodeJS.ErrnoException) =>
      finish({ status: 0, body: '', contentType: undefined, connection: undefined, connError: err.code ?? err.message }),
    );
    if (c.chunked) {
      const step = 16_384;
      for (let i = 0; i < c.body.length; i += step) req.write(c.body.subarray(i, i + step));
      req.end();
    } else {
      req.end(c.body);
    }
  });
}

function rawExchange(port: number, script: (s: Socket) => void, limitMs: number): Promise<{ out: string; closedAfterMs: number; timedOut: boolean }> {
  return new Promise((resolve) => {
    const started = Date.now();
    let out = '';
    const s = connect(port, '127.0.0.1', () => script(s));
    s.on('data', (d: Buffer) => (out += d.toString('latin1')));
    s.on('error', () => undefined);
    const guard = setTimeout(() => {
      s.destroy();
      resolve({ out, closedAfterMs: Date.now() - started, timedOut: true });
    }, limitMs);
    s.on('close', () => {
      clearTimeout(guard);
      resolve({ out, closedAfterMs: Date.now() - started, timedOut: false });
    });
  });
}

/** Status code and JSON body of a raw HTTP answer ('' when there was none). */
function parseRaw(out: string): { status: number; json: { error?: unknown; message?: unknown } | null } {
  const m = /^HTTP\/1\.1 (\d{3}) /.exec(out);
  const at = out.indexOf('\r\n\r\n');
  let json = null;
  try {
    json = at === -1 ? null : JSON.parse(out.slice(at + 4));
  } catch {
    json = null;
  }
  return { status: m ? Number(m[1]) : 0, json };
}

t.test('ingest battery of malformed requests against a real Redis', async (t) => {
  const redisServer = await startRedis();
  t.teardown(() => redisServer.destroy());
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const config = testConfig({
    REDIS_URL: redisServer.url,
    REDIS_PREFIX: prefix,
    INGEST_MAX_BODY_BYTES: String(MAX_BODY),
    INGEST_MAX_ITEMS: String(MAX_ITEMS),
    INGEST_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    INGEST_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
  });
  const redis = createRedis(config, 'ingest', 'test-battery');
  redis.on('error', () => undefined);
  await once(redis, 'ready');
  const keys = shardKeys(prefix, 0);
  // Not a literal: compiles whether or not EnqueueSettings has statsRetentionS yet (it is being added).
  const enqueueSettings = { lifetimeMs: 1000, maxQueue: 0, statsRetentionS: 60, idempotencyTtlMs: 60_000 };
  const enqueuer = new Enqueuer(redis, [keys], enqueueSettings);
  const ingest = createIngestServer({ config, redis, enqueuer, logger: pino({ level: 'silent' }), nextId: createRequestIdGenerator() });
  ingest.server.listen(0, '127.0.0.1');
  await once(ingest.server, 'listening');
  const port = (ingest.server.address() as { port: number }).port;
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  t.teardown(async () => {
    agent.destroy();
    await ingest.close();
    redis.disconnect();
  });
  const check = redisServer.client();

  const snapshot = async (): Promise<{ stream: number; count: string | null; delayed: number; keys: number }> => ({
    stream: await check.xlen(keys.stream),
    count: await check.get(keys.count),
    delayed: await check.zcard(keys.delayed),
    // Every key of the prefix but statistics buckets (which may count rejections).
    keys: (await check.keys(`${prefix}:*`)).filter((k) => !k.includes(':stats:')).length,
  });

  t.test('thousands of bad bodies: all 4xx with a JSON error, nothing queued', async (t) => {
    t.ok(cases.length >= 3000, `${cases.length} cases generated`);
    // The bodies the battery breaks are themselves valid (so a truncation is a truncation of something good).
    for (const [label, full] of samples) {
      const res = await send(port, agent, {
        cls: 'valid', name: label, body: full, path: '/preview', method: 'POST',
        headers: { 'content-type': 'application/json' }, chunked: false, expect: { status: [200] }, mayClose: false,
      });
      t.equal(res.status, 200, `sample ${label} is valid: ${res.body.slice(0, 200)}`);
    }
    const before = await snapshot();

    const outcomes: Outcome[] = [];
    let next = 0;
    const CONCURRENCY = 16;
    const started = Date.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < cases.length) {
          const c = cases[next++] as Case;
          outcomes.push(await send(port, agent, c));
        }
      }),
    );
    const elapsed = Date.now() - started;

    const byStatus = new Map<number, number>();
    const byError = new Map<string, number>();
    const byClass = new Map<string, number>();
    const fiveXX: string[] = [];
    const notJson: string[] = [];
    const unexpected: string[] = [];
    const connErrors: string[] = [];
    const kept413: string[] = [];
    let legitCloses = 0;
    for (const o of outcomes) {
      const label = `${o.c.cls} ${o.c.name} -> ${o.c.method} ${o.c.path}`;
      byClass.set(o.c.cls, (byClass.get(o.c.cls) ?? 0) + 1);
      if (o.connError !== null) {
        if (o.c.mayClose) legitCloses++;
        else connErrors.push(`${label}: ${o.connError}`);
        continue;
      }
      byStatus.set(o.status, (byStatus.get(o.status) ?? 0) + 1);
      if (o.status === 413 && o.connection !== 'close') kept413.push(`${label}: connection ${o.connection}`);
      if (o.status >= 500) fiveXX.push(`${label}: ${o.status} ${o.body.slice(0, 200)}`);
      let json: { error?: unknown; message?: unknown } | null = null;
      try {
        json = JSON.parse(o.body) as { error?: unknown; message?: unknown };
      } catch {
        json = null;
      }
      if (json === null || typeof json.error !== 'string' || typeof json.message !== 'string' || !/^application\/json/.test(o.contentType ?? '')) {
        notJson.push(`${label}: ${o.status} ${o.contentType} ${o.body.slice(0, 120)}`);
        continue;
      }
      byError.set(json.error, (byError.get(json.error) ?? 0) + 1);
      if (!o.c.expect.status.includes(o.status) || (o.c.expect.errors && !o.c.expect.errors.includes(json.error))) {
        unexpected.push(`${label}: got ${o.status} ${json.error} (${String(json.message).slice(0, 100)}), expected ${o.c.expect.status.join('|')} ${o.c.expect.errors?.join('|') ?? ''}`);
      }
    }
    const fmt = (m: Map<string | number, number>): string => [...m].map(([k, v]) => `${k}=${v}`).join(' ');
    t.comment(`${outcomes.length} requests in ${elapsed} ms, concurrency ${CONCURRENCY}, keep-alive agent maxSockets 8`);
    t.comment(`by class: ${fmt(byClass)}`);
    t.comment(`by status: ${fmt(byStatus)}`);
    t.comment(`by error: ${fmt(byError)}`);
    t.comment(`5xx: ${fiveXX.length}; connection errors: ${connErrors.length} (+${legitCloses} on bodies the server refuses with 413 and closes); not JSON: ${notJson.length}; unexpected status/error: ${unexpected.length}`);

    t.equal(outcomes.length, cases.length, 'every request got an outcome');
    t.same(fiveXX.slice(0, 20), [], `no 5xx (${fiveXX.length})`);
    t.same(connErrors.slice(0, 20), [], `no connection errors except after a 413 (${connErrors.length})`);
    t.same(notJson.slice(0, 20), [], `every error body is JSON with string error and message (${notJson.length} not)`);
    t.same(unexpected.slice(0, 20), [], `every status and error code as expected (${unexpected.length} not)`);
    t.ok([...byStatus.keys()].every((s) => s >= 400 && s < 500), `only 4xx statuses: ${[...byStatus.keys()].join(', ')}`);
    t.ok((byStatus.get(413) ?? 0) > 0, 'some oversized requests were answered 413 before the connection closed');
    t.same(kept413, [], 'every 413 says connection: close');

    const after = await snapshot();
    t.same(after, before, 'nothing queued: stream length, count key, delayed set and key set unchanged');

    // The check can fail: a valid request does show up.
    const res = await send(port, agent, {
      cls: 'valid', name: 'sample', body: Buffer.from(JSON.stringify(SAMPLE)), path: '/i', method: 'POST',
      headers: { 'content-type': 'application/json' }, chunked: false, expect: { status: [202] }, mayClose: false,
    });
    t.equal(res.status, 202, 'a valid request is still accepted');
    t.match(JSON.parse(res.body), { accepted: 2 });
    const last = await snapshot();
    t.equal(last.stream, before.stream + 1, 'the valid request is one stream entry');
    t.equal(Number(last.count), Number(before.count ?? 0) + 2, 'the count key grew by its 2 postbacks');
  });

  t.test('lone surrogates in values are legal JSON: /preview renders them as U+FFFD, no 5xx', async (t) => {
    for (const s of ['\\ud800', '\\udfff', 'x\\udc00y', '\\ud83d']) {
      const res = await send(port, agent, {
        cls: 'surrogate', name: s, path: '/preview', method: 'POST', headers: { 'content-type': 'application/json' },
        body: Buffer.from(`{"endpoint":${JSON.stringify(SAMPLE.endpoint)},"data":[{"key":"${s}","value":"v"}]}`),
        chunked: false, expect: { status: [200] }, mayClose: false,
      });
      t.equal(res.status, 200, s);
      const url = (JSON.parse(res.body) as { requests: { url: string }[] }).requests[0]?.url ?? '';
      t.match(url, /key=[^&]*%EF%BF%BD/, `${s} -> ${url}`);
    }
  });

  t.test('a body sent one byte every 200 ms is cut off with 408 and the socket closed', async (t) => {
    const before = await snapshot();
    const body = JSON.stringify(SAMPLE);
    let timer: NodeJS.Timeout | undefined;
    let sent = 0;
    const r = await rawExchange(
      port,
      (s) => {
        s.write(`POST /i HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`);
        timer = setInterval(() => {
          if (sent >= body.length || s.destroyed) return;
          s.write(body[sent++] as string);
        }, 200);
        s.on('close', () => clearInterval(timer));
      },
      REQUEST_TIMEOUT_MS + CHECK_INTERVAL_MS + 5000,
    );
    clearInterval(timer);
    const { status, json } = parseRaw(r.out);
    t.comment(`slow body: ${sent} of ${body.length} bytes sent, answer ${status} after ${r.closedAfterMs} ms, socket ${r.timedOut ? 'still open' : 'closed'}`);
    t.equal(status, 408, `answered 408: ${JSON.stringify(r.out.slice(0, 200))}`);
    t.equal(json?.error, 'request_timeout');
    t.type(json?.message, 'string');
    t.notOk(r.timedOut, 'the server closed the socket');
    t.ok(r.closedAfterMs >= REQUEST_TIMEOUT_MS * 0.9, `not before INGEST_REQUEST_TIMEOUT_MS (${r.closedAfterMs} ms)`);
    t.ok(r.closedAfterMs <= REQUEST_TIMEOUT_MS + CHECK_INTERVAL_MS + 1000, `within the timeout plus the check interval (${r.closedAfterMs} ms)`);
    t.ok(sent < body.length, 'cut off before the body was complete');
    t.same(await snapshot(), before, 'nothing queued');
  });

  t.test('headers sent slowly and never finished are cut off', async (t) => {
    let timer: NodeJS.Timeout | undefined;
    let lines = 0;
    const r = await rawExchange(
      port,
      (s) => {
        s.write('POST /i HTTP/1.1\r\nHost: 127.0.0.1\r\n');
        timer = setInterval(() => {
          if (!s.destroyed) s.write(`X-Slow-${lines++}: y\r\n`);
        }, 200);
        s.on('close', () => clearInterval(timer));
      },
      HEADERS_TIMEOUT_MS + CHECK_INTERVAL_MS + 5000,
    );
    clearInterval(timer);
    const { status, json } = parseRaw(r.out);
    t.comment(`slow headers: ${lines} header lines sent, answer ${status || 'none'} after ${r.closedAfterMs} ms, socket ${r.timedOut ? 'still open' : 'closed'}`);
    t.notOk(r.timedOut, 'the server closed the socket');
    t.ok(status === 408 || (status === 0 && r.out === ''), `408 or closed without an answer: ${JSON.stringify(r.out.slice(0, 200))}`);
    if (status === 408) t.equal(json?.error, 'request_timeout');
    t.ok(r.closedAfterMs >= HEADERS_TIMEOUT_MS * 0.9, `not before INGEST_HEADERS_TIMEOUT_MS (${r.closedAfterMs} ms)`);
    t.ok(r.closedAfterMs <= HEADERS_TIMEOUT_MS + CHECK_INTERVAL_MS + 1000, `within the headers timeout plus the check interval (${r.closedAfterMs} ms)`);
  });

  t.test('a connection that never sends a byte is closed too', async (t) => {
    const r = await rawExchange(port, () => undefined, HEADERS_TIMEOUT_MS + CHECK_INTERVAL_MS + 5000);
    t.comment(`idle connection: answer ${parseRaw(r.out).status || 'none'} after ${r.closedAfterMs} ms, socket ${r.timedOut ? 'still open' : 'closed'}`);
    t.notOk(r.timedOut, 'the server closed the socket');
    t.ok(r.closedAfterMs <= HEADERS_TIMEOUT_MS + CHECK_INTERVAL_MS + 1000, `within the headers timeout plus the check interval (${r.closedAfterMs} ms)`);
  });

  t.test('pipelined requests are answered in order', async (t) => {
    const body = JSON.stringify(SAMPLE);
    const valid = `POST /i HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    const before = await snapshot();
    const two = await rawExchange(port, (s) => {
      s.write(valid + valid.replace('POST /i ', 'POST /ingest.php '));
      setTimeout(() => s.end(), 500);
    }, 5000);
    t.same(two.out.match(/HTTP\/1\.1 \d{3}/g), ['HTTP/1.1 202', 'HTTP/1.1 202'], 'two valid requests: two 202s');
    t.equal((await snapshot()).stream, before.stream + 2);
  });

  // HTTP/1.1 answers in order: the clientError reply waits for the response still pending on the socket.
  t.test('a malformed request pipelined after a valid one does not steal its answer', async (t) => {
    const body = JSON.stringify(SAMPLE);
    const valid = `POST /i HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    for (const garbage of ['GARBAGE\r\n\r\n', 'POST /i HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n']) {
      const before = await snapshot();
      const r = await rawExchange(port, (s) => s.write(valid + garbage), 5000);
      const queued = (await snapshot()).stream - before.stream;
      t.comment(`valid + ${JSON.stringify(garbage)}: queued ${queued}, first answer ${parseRaw(r.out).status}`);
      t.equal(queued, 1, 'the valid request was queued');
      t.equal(parseRaw(r.out).status, 202, 'the first answer on the wire is the valid request\'s 202');
      t.match(r.out, /HTTP\/1\.1 202[\s\S]*HTTP\/1\.1 400/, 'then the 400 for the malformed one');
    }
  });

  t.test('HTTP at its edges: one JSON answer per request, each as the contract says', async (t) => {
    const body = JSON.stringify(SAMPLE);
    const len = Buffer.byteLength(body);
    const cases: [string, string, number, string | null][] = [
      // [name, request, status, error]
      ['absolute-form target', `POST http://ingest.example/i HTTP/1.1\r\nHost: ingest.example\r\nContent-Type: application/json\r\nContent-Length: ${len}\r\nConnection: close\r\n\r\n${body}`, 202, null],
      ['Expect other than 100-continue', `POST /i HTTP/1.1\r\nHost: x\r\nExpect: foo\r\nContent-Length: ${len}\r\nConnection: close\r\n\r\n${body}`, 417, 'expectation_failed'],
      ['CONNECT', 'CONNECT ingest.example:443 HTTP/1.1\r\nHost: ingest.example:443\r\n\r\n', 405, 'method_not_allowed'],
      ['gzip Content-Encoding', `POST /i HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: ${len}\r\nConnection: close\r\n\r\n${body}`, 415, 'unsupported_media_type'],
      ['br Content-Encoding on a plain body', `POST /i HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Encoding: br\r\nContent-Length: ${len}\r\nConnection: close\r\n\r\n${body}`, 415, 'unsupported_media_type'],
      ['identity Content-Encoding', `POST /i HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Encoding: identity\r\nContent-Length: ${len}\r\nConnection: close\r\n\r\n${body}`, 202, null],
      ['two Idempotency-Key headers', `POST /i HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nIdempotency-Key: k2\r\nIdempotency-Key: k3\r\nContent-Length: ${len}\r\nConnection: close\r\n\r\n${body}`, 400, 'invalid_request'],
      // Answered at once (no such path), then its body never finishes: that answer is its only one.
      ['a 404 whose body never ends', 'POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc', 404, 'not_found'],
    ];
    for (const [name, text, status, error] of cases) {
      const before = await snapshot();
      const r = await rawExchange(port, (s) => s.write(text), REQUEST_TIMEOUT_MS + CHECK_INTERVAL_MS + 3_000);
      const { status: got, json } = parseRaw(r.out);
      t.equal(got, status, `${name}: ${status}`);
      t.equal(r.out.match(/HTTP\/1\.1 \d{3}/g)?.length, 1, `${name}: one answer`);
      if (error !== null) t.equal(json?.error, error, `${name}: ${error}`);
      t.notOk(r.timedOut, `${name}: the connection closed`);
      t.equal((await snapshot()).stream, before.stream + (status === 202 ? 1 : 0), `${name}: ${status === 202 ? 'queued' : 'nothing queued'}`);
    }
  });

  t.test('malformed HTTP on raw sockets: 4xx JSON or a closed socket, never 5xx', async (t) => {
    const raws: [string, string][] = [
      ['bad Content-Length', 'POST /i HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n'],
      ['negative Content-Length', 'POST /i HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n'],
      ['two Content-Lengths', 'POST /i HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}'],
      ['Content-Length and chunked (smuggling)', 'POST /i HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
      ['bad chunk size', 'POST /i HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n'],
      ['chunk longer than declared', 'POST /i HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcdef\r\n0\r\n\r\n'],
      ['unknown transfer coding', 'POST /i HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n'],
      ['bad method token', 'P@ST /i HTTP/1.1\r\nHost: x\r\n\r\n'],
      ['HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'],
      ['garbage request line', 'HELLO\r\n\r\n'],
      ['bad HTTP version', 'POST /i HTTP/9.9\r\nHost: x\r\nContent-Length: 0\r\n\r\n'],
      ['space in header name', 'POST /i HTTP/1.1\r\nHost: x\r\nBad Header: y\r\nContent-Length: 0\r\n\r\n'],
      ['NUL in header value', 'POST /i HTTP/1.1\r\nHost: x\r\nX-A: a\u0000b\r\nContent-Length: 0\r\n\r\n'],
      ['obsolete line folding', 'POST /i HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n'],
      ['bare LF line endings', 'POST /i HTTP/1.1\nHost: x\nContent-Length: 2\n\n{}'],
      ['header block of 64 KB', `POST /i HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(65_536)}\r\nContent-Length: 0\r\n\r\n`],
      ['10000 headers', `POST /i HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 10_000 }, (_, i) => `X-${i}: v`).join('\r\n')}\r\nContent-Length: 0\r\n\r\n`],
      ['request line of 100 KB', `POST /i?${'q'.repeat(100_000)} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`],
      ['Content-Length: 2^64', 'POST /i HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551616\r\n\r\n{}'],
      ['binary junk', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n'],
    ];
    const before = await snapshot();
    const seen: string[] = [];
    for (const [name, text] of raws) {
      const r = await rawExchange(port, (s) => s.write(text, 'latin1'), 5000);
      const { status, json } = parseRaw(r.out);
      seen.push(`${name}=${status || 'closed'}`);
      if (status === 0) {
        t.equal(r.out, '', `${name}: no answer means nothing was written`);
      } else {
        t.ok(status >= 400 && status < 500, `${name}: ${status}`);
        t.type(json?.error, 'string', `${name}: JSON error`);
        t.type(json?.message, 'string', `${name}: JSON message`);
      }
      t.notOk(r.timedOut, `${name}: socket closed`);
    }
    t.comment(`raw malformed HTTP: ${seen.join(', ')}`);
    t.same(await snapshot(), before, 'nothing queued');
    const res = await send(port, agent, {
      cls: 'valid', name: 'after raw', body: Buffer.from(JSON.stringify(SAMPLE)), path: '/ingest.php', method: 'POST',
      headers: { 'content-type': 'application/json' }, chunked: false, expect: { status: [202] }, mayClose: false,
    });
    t.equal(res.status, 202, 'still accepting valid requests');
  });
});
