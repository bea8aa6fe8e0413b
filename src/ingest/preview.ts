/**
 * Pure: what `POST /preview` answers, the exact requests delivery would make
 * now for a validated ingest request, with the ids they would carry.
 */
import { postbackId } from '../postback/ids.js';
import { outgoingRequest, type OutgoingRequest } from '../postback/outgoing.js';
import type { Signer } from '../postback/signature.js';
import { renderedOrigin } from '../postback/template.js';
import type { PartnerPolicy } from '../partners/policy.js';
import type { IngestRequest } from './parse-request.js';

export interface PreviewRequest extends OutgoingRequest {
  id: string;
  /** ms epoch of the first attempt if the request were ingested now. */
  notBefore: number;
}

/**
 * `policyOf`: the partner policy of an origin (its static headers, whether
 * it is signed); without one, every request is as the contract says.
 */
export function buildPreview(
  req: IngestRequest,
  requestId: string,
  encodedDefault: string,
  userAgent: string,
  now: number,
  signer: Signer | null = null,
  policyOf: ((origin: string) => Pick<PartnerPolicy, 'headers' | 'signing'>) | null = null,
): { requests: PreviewRequest[] } {
  const notBefore = now + req.delayMs;
  const requests = req.items.map((data, i) => {
    const id = postbackId(requestId, i);
    const origin = renderedOrigin(req.template, data, encodedDefault);
    const policy = origin !== null && policyOf !== null ? policyOf(origin) : null;
    const opts = { signer: policy === null || policy.signing ? signer : null, nowMs: notBefore, ...(policy ? { headers: policy.headers } : {}) };
    return { id, ...outgoingRequest(req.template, data, id, encodedDefault, userAgent, opts), notBefore };
  });
  return { requests };
}
