/**
 * The delivery main thread's view of templates: content-addressed, so a
 * template once loaded never changes and is cached by id; misses are
 * fetched together with one MGET per read batch. A template Redis no longer
 * has (lost keys) resolves to null and its postbacks fail permanently with
 * PB_ERR_TEMPLATE_MISSING rather than retrying forever.
 */
import type { RedisClient } from '../queue/redis.js';
import { decodeTemplate, type StoredTemplate } from '../queue/codec.js';
import { templateKey, type ShardKeys } from '../queue/keys.js';
import { parseTemplate, type CompiledTemplate } from '../postback/template.js';

export interface KnownTemplate {
  stored: StoredTemplate;
  /** Null when the stored template no longer parses (its postbacks fail in the worker). */
  compiled: CompiledTemplate | null;
  /** Scheduling key: the fixed origin, or the template id when the host varies. */
  origin: string;
}

/** Templates kept at most; the cache is cleared when full. */
export const CACHE_MAX = 10_000;

export class TemplateStore {
  private readonly cache = new Map<string, KnownTemplate>();

  constructor(private readonly redis: RedisClient) {}

  /**
   * The given ids' templates, from the cache or loaded from Redis; ids
   * Redis lacks are absent. The answer is its own map, not the cache: the
   * cache is cleared when full, possibly halfway through this very load,
   * and a template loaded before the clear must still be found (its
   * postbacks would otherwise fail for good as template_missing).
   */
  async load(keys: ShardKeys, ids: Iterable<string>): Promise<Map<string, KnownTemplate>> {
    const found = new Map<string, KnownTemplate>();
    const missing: string[] = [];
    for (const id of new Set(ids)) {
      const hit = this.cache.get(id);
      if (hit !== undefined) found.set(id, hit);
      else missing.push(id);
    }
    if (missing.length === 0) return found;
    const blobs = await this.redis.mgetBuffer(...missing.map((id) => templateKey(keys, id)));
    for (let i = 0; i < missing.length; i++) {
      const blob = blobs[i];
      if (!blob) continue;
      try {
        const stored = decodeTemplate(blob);
        const parsed = parseTemplate(stored.method, stored.url);
        const origin = parsed.ok && parsed.template.origin !== null ? parsed.template.origin : `template:${missing[i]}`;
        const known: KnownTemplate = { stored, compiled: parsed.ok ? parsed.template : null, origin };
        if (this.cache.size >= CACHE_MAX) this.cache.clear();
        this.cache.set(missing[i] as string, known);
        found.set(missing[i] as string, known);
      } catch {
        // Undecodable template: left unknown, its postbacks fail permanently.
      }
    }
    return found;
  }
}
