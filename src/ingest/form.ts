/**
 * Pure: an `application/x-www-form-urlencoded` body in PHP bracket notation,
 * as the original system's clients send it, into the same plain value a
 * JSON body decodes to, so one validation serves both:
 *
 *   endpoint[method]=GET&endpoint[url]=...&data[0][key]=Azureus
 *   -> {"endpoint":{"method":"GET","url":"..."},"data":[{"key":"Azureus"}]}
 *
 * Values are strings (as in PHP), except `endpoint[delay_ms]`, read as an
 * integer when it is all digits. Anything a JSON body could not mean gets a
 * 400 naming the key: malformed brackets, `[]` appends, nesting deeper than
 * the contract, a key given twice or as both a value and a group, data
 * indexes that skip a number or are not numbers.
 */
import { PostbackError } from '../errors.js';

const bad = (message: string): PostbackError => new PostbackError('PB_ERR_BAD_FORM', message);
/** The item limit is validation, as in a JSON body: the same code and status. */
const tooMany = (message: string): PostbackError => new PostbackError('PB_ERR_VALIDATION', message);

/** A key path as it is written in a form: data[0][k]. */
const asKey = (parts: readonly string[]): string => `${parts[0] ?? ''}${parts.slice(1).map((p) => `[${p}]`).join('')}`;

const shown = (key: string): string => JSON.stringify(key.length > 80 ? `${key.slice(0, 80)}…` : key);

function decode(part: string, what: string): string {
  try {
    return decodeURIComponent(part.replaceAll('+', ' '));
  } catch {
    throw bad(`${what} ${shown(part)} is not valid percent-encoding (or not UTF-8)`);
  }
}

/** "data[0][key]" -> ["data", "0", "key"]; throws on malformed brackets. */
export function splitKey(key: string): string[] {
  const open = key.indexOf('[');
  if (open === -1) {
    if (key.includes(']')) throw bad(`form key ${shown(key)} has a "]" without "["`);
    return [key];
  }
  if (open === 0) throw bad(`form key ${shown(key)} has no name before "["`);
  if (key.slice(0, open).includes(']')) throw bad(`form key ${shown(key)} has a "]" without "["`);
  const parts = [key.slice(0, open)];
  let i = open;
  while (i < key.length) {
    if (key[i] !== '[') throw bad(`form key ${shown(key)}: expected "[" at character ${i + 1}`);
    const close = key.indexOf(']', i + 1);
    if (close === -1) throw bad(`form key ${shown(key)} has a "[" that is never closed`);
    const name = key.slice(i + 1, close);
    if (name === '') throw bad(`form key ${shown(key)}: empty brackets "[]" are not supported; give an index or a name`);
    if (name.includes('[')) throw bad(`form key ${shown(key)} has a "[" inside brackets`);
    parts.push(name);
    i = close + 1;
  }
  return parts;
}

type Node = Map<string, Node | string>;

const INDEX = /^(0|[1-9]\d{0,8})$/;

function toValue(path: string, node: Node, maxItems: number): unknown {
  if (path === 'data') {
    const length = node.size;
    if (length > maxItems) throw tooMany(`data holds ${length} items; the limit is ${maxItems}`);
    const items: unknown[] = [];
    for (let i = 0; i < length; i++) {
      const item = node.get(String(i));
      if (item === undefined) throw bad(`data indexes must run 0, 1, 2, … without gaps: data[${i}] is missing`);
      if (typeof item === 'string') throw bad(`data[${i}] must be a group of data[${i}][name]=value fields, not a single value`);
      const obj: Record<string, string> = {};
      for (const [k, v] of item) {
        if (typeof v !== 'string') throw bad(`data[${i}][${k}] must be a value, not a group (data objects are flat)`);
        obj[k] = v;
      }
      items.push(obj);
    }
    return items;
  }
  const obj: Record<string, unknown> = {};
  for (const [k, v] of node) {
    if (typeof v === 'string') {
      obj[k] = path === 'endpoint' && k === 'delay_ms' && /^\d{1,15}$/.test(v) ? Number(v) : v;
    } else {
      obj[k] = toValue(`${path}[${k}]`, v, maxItems);
    }
  }
  return obj;
}

/** For a body that is neither: what a request looks like, both ways. */
const NEITHER =
  'the body is neither JSON nor a form: send a JSON object {"endpoint":{"method":"GET","url":"..."},"data":[{...}]} ' +
  '(Content-Type: application/json), or a form endpoint[method]=GET&endpoint[url]=...&data[0][name]=value';

export function decodeForm(text: string, maxItems: number): unknown {
  if (/[^&\s]/.test(text) && !text.includes('=')) throw bad(NEITHER);
  const root: Node = new Map();
  let pairs = 0;
  for (const pair of text.split('&')) {
    if (pair === '') continue;
    pairs++;
    const eq = pair.indexOf('=');
    const key = decode(eq === -1 ? pair : pair.slice(0, eq), 'form key');
    const value = eq === -1 ? '' : decode(pair.slice(eq + 1), `the value of ${shown(key)}`);
    const path = splitKey(key);
    if (path.includes('__proto__')) throw bad(`form key ${shown(key)}: "__proto__" is not allowed`);
    if (path[0] === 'data') {
      if (path.length === 1) throw bad('"data" must be given as data[0][name]=value fields');
      if (!INDEX.test(path[1] as string)) throw bad(`form key ${shown(key)}: data index must be a number 0, 1, 2, …`);
      if (Number(path[1]) >= maxItems) throw tooMany(`form key ${shown(key)}: data holds more than ${maxItems} items; the limit is ${maxItems}`);
      if (path.length > 3) throw bad(`form key ${shown(key)} nests deeper than data[i][name] (data objects are flat)`);
    } else if (path.length > 2) {
      // The contract has nothing deeper: endpoint[name], or an unknown name[key] (kept, unused).
      throw bad(`form key ${shown(key)} nests deeper than ${path[0] === 'endpoint' ? 'endpoint[name]' : 'name[key]'}`);
    }
    let node = root;
    for (let d = 0; d < path.length - 1; d++) {
      const part = path[d] as string;
      const next = node.get(part);
      if (typeof next === 'string') throw bad(`form key ${shown(key)}: ${shown(asKey(path.slice(0, d + 1)))} was already given a value`);
      if (next === undefined) {
        const child: Node = new Map();
        node.set(part, child);
        node = child;
      } else {
        node = next;
      }
    }
    const last = path[path.length - 1] as string;
    if (node.has(last)) throw bad(`form key ${shown(key)} is given twice (or as both a value and a group)`);
    node.set(last, value);
  }
  if (pairs === 0) throw bad('the form is empty: send endpoint[method], endpoint[url] and data[0][name]=value');
  if (!root.has('endpoint') && !root.has('data')) throw bad(NEITHER);
  const out: Record<string, unknown> = {};
  for (const [k, v] of root) out[k] = typeof v === 'string' ? v : toValue(k, v, maxItems);
  return out;
}
