/**
 * Pure: whether the process may open as many files as delivery can need.
 * Each postback in flight is a socket; about as many again may sit idle in
 * keep-alive pools (closed after 4 s idle, and at most IDLE_POOLS_MAX
 * pools are kept); plus Redis connections, logs and listeners. Past the
 * soft limit of open files, new connections fail with EMFILE (retried,
 * but nothing gets through); many systems still default to 1,024. Read
 * from /proc/self/limits at start: a warning, not a refusal.
 */
const MARGIN = 256;

/** The soft "Max open files" of /proc/<pid>/limits, or null (unlimited, or unreadable). */
export function openFilesLimit(limits: string): number | null {
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(limits);
  return m && m[1] !== 'unlimited' ? Number(m[1]) : null;
}

/** Files delivery may hold open at DELIVERY_CONCURRENCY `concurrency`. */
export function filesNeeded(concurrency: number): number {
  return 2 * concurrency + MARGIN;
}

/** A warning when `limit` is below what delivery may need, else null. */
export function fdWarning(limit: number | null, concurrency: number): string | null {
  const need = filesNeeded(concurrency);
  if (limit === null || limit >= need) return null;
  return `the open-file limit (${limit}) is below what delivery may need at DELIVERY_CONCURRENCY ${concurrency} (${need}): raise it (ulimit -n, systemd LimitNOFILE) or lower DELIVERY_CONCURRENCY, or connections will fail with EMFILE`;
}
