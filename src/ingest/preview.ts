/**
 * Pure: what `POST /preview` answers, the exact requests delivery would make
 * now for a validated ingest request, with the ids they would carry.
 *
 * Bounded: a small request can render to a great deal (10,000 items of a
 * URL near INGEST_MAX_URL_BYTES make 80 MB from 40 KB), and an answer is
 * held in memory until the client reads it. So at most
 * PREVIEW_MAX_REQUESTS requests are shown, and no more of them than fit in
 * `maxBytes` of URLs and bodies (the first always); `total` says how many
 * the request would make and `truncated` whether some were left out.
 */
import { postbackId } from '../postback/ids.js';
import { outgoingRequest, type OutgoingRequest } from '../postback/outgoing.js';
import type { Signer } from '../postback/signature.js';
import { renderedOrigin } from '../postback/template.js';
import type { PartnerPolicy } from '../partners/policy.js';
import type { IngestRequest } from './parse-request.js';
import type { DataObject } from '../postback/data.js';

/** Most requests one /preview answer shows. */
export const PREVIEW_MAX_REQUESTS = 100;

export interface Preview {
  /** The first requests, in order (see the bound above). */
  requests: PreviewRequest[];
  /** Requests the ingest request would make. */
  total: number;
  /** Some were left out of `requests`. */
  truncated: boolean;
}

export interface PreviewRequest extends OutgoingRequest {
  id: string;
  /** ms epoch of the first attempt if the request were ingested now. */
  notBefore: number;
}

/**
 * `policyOf`: the partner policy of an origin (its static headers, whether
 * it is signed); without one, every request is as the contract says.
 * `maxBytes`: URL and body bytes past which no further request is shown.
 */
export function buildPreview(
  req: IngestRequest,
  requestId: string,
  encodedDefault: string,
  userAgent: string,
  now: number,
  signer: Signer | null = null,
  policyOf: ((origin: string) => Pick<PartnerPolicy, 'headers' | 'signing'>) | null = null,
  maxBytes = Infinity,
): Preview {
  const notBefore = now + req.delayMs;
  const requests: PreviewRequest[] = [];
  let bytes = 0;
  const shown = Math.min(req.items.length, PREVIEW_MAX_REQUESTS);
  for (let i = 0; i < shown; i++) {
    const data = req.items[i] as DataObject;
    const id = postbackId(requestId, i);
    const origin = renderedOrigin(req.template, data, encodedDefault);
    const policy = origin !== null && policyOf !== null ? policyOf(origin) : null;
    const opts = { signer: policy === null || policy.signing ? signer : null, nowMs: notBefore, ...(policy ? { headers: policy.headers } : {}) };
    const out = outgoingRequest(req.template, data, id, encodedDefault, userAgent, opts);
    bytes += out.url.length + (out.body?.length ?? 0);
    if (i > 0 && bytes > maxBytes) break;
    requests.push({ id, ...out, notBefore });
  }
  return { requests, total: req.items.length, truncated: requests.length < req.items.length };
}
