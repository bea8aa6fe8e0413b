/**
 * Pure: content type and raw body bytes in, a plain decoded value out, or a
 * coded error (415 unknown type, 400 invalid UTF-8 or JSON). JSON is read
 * as UTF-8 whatever the charset parameter says (RFC 8259); a missing
 * Content-Type is read as JSON, and so is a "form" whose first non-blank
 * byte is `{` (curl -d sends JSON as a form unless told otherwise). Forms
 * are decoded by form.ts.
 */
import { isUtf8 } from 'node:buffer';
import { PostbackError } from '../errors.js';

export type BodyKind = 'json' | 'form';

/** Media type of a Content-Type header, or null when it is not one we take. */
export function bodyKind(contentType: string | undefined): BodyKind | null {
  if (contentType === undefined || contentType === '') return 'json';
  const semi = contentType.indexOf(';');
  const type = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  if (type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'))) return 'json';
  if (type === 'application/x-www-form-urlencoded') return 'form';
  return null;
}

/**
 * A body sent as a form that is really JSON: its first byte past blanks
 * (and a UTF-8 byte order mark) is `{`. A form cannot start with `{`
 * meaningfully, so the JSON reading is the only useful one.
 */
export function looksLikeJson(body: Buffer): boolean {
  let i = body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? 3 : 0;
  for (; i < body.length; i++) {
    const b = body[i] as number;
    if (b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) return b === 0x7b;
  }
  return false;
}

/** The body as text; a UTF-8 byte order mark is dropped. */
export function decodeText(body: Buffer): string {
  if (!isUtf8(body)) throw new PostbackError('PB_ERR_BAD_ENCODING', 'the body is not valid UTF-8');
  const text = body.toString('utf8');
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

export function decodeJson(body: Buffer): unknown {
  const text = decodeText(body);
  try {
    return JSON.parse(text);
  } catch (err) {
    const detail = (err as Error).message.slice(0, 160);
    throw new PostbackError('PB_ERR_BAD_JSON', `the body is not valid JSON: ${detail}`);
  }
}

export function unsupportedType(contentType: string): PostbackError {
  return new PostbackError(
    'PB_ERR_MEDIA_TYPE',
    `Content-Type ${JSON.stringify(contentType.slice(0, 80))} is not supported: send application/json (or application/x-www-form-urlencoded)`,
  );
}

export function unsupportedEncoding(encoding: string): PostbackError {
  return new PostbackError(
    'PB_ERR_MEDIA_TYPE',
    `Content-Encoding ${JSON.stringify(encoding.slice(0, 80))} is not supported: send the body uncompressed`,
  );
}
