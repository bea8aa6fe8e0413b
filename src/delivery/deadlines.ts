/**
 * Per-attempt deadlines on one timer. Every attempt gets the same timeout
 * and starts now, so deadlines come due in the order attempts start: a
 * FIFO suffices, no heap and no timer per attempt (undici's fast timers and
 * Node's own timer lists rest on the same observation). Attempts started
 * within the same millisecond share one group; a finished attempt leaves
 * its group at once, and a group past due times out what is left in it.
 * A group's deadline is the latest of its members' (an attempt may time out
 * up to 1 ms late, never early). Memory: at most one group per millisecond
 * of the timeout, each emptied as its attempts finish.
 */
import Denque from 'denque';

export interface Expirable {
  /** The deadline passed: end the attempt as a timeout. */
  timeout(): void;
}

interface Group {
  /** performance.now() ms when the group is due. */
  at: number;
  members: Set<Expirable>;
}

/** What an attempt keeps to leave its deadline when it finishes. */
export type DeadlineTicket = Set<Expirable>;

export class Deadlines {
  private readonly groups = new Denque<Group>();
  private timer: NodeJS.Timeout | null = null;

  constructor(readonly timeoutMs: number) {}

  /** Starts `attempt`'s deadline now; pass the returned ticket to {@link done}. */
  add(attempt: Expirable): DeadlineTicket {
    const at = performance.now() + this.timeoutMs;
    let tail = this.groups.peekBack();
    if (tail === undefined || at - tail.at >= 1) {
      tail = { at, members: new Set() };
      this.groups.push(tail);
    } else {
      tail.at = at;
    }
    tail.members.add(attempt);
    if (this.timer === null) this.arm(tail.at);
    return tail.members;
  }

  /** The attempt finished before its deadline. */
  done(ticket: DeadlineTicket, attempt: Expirable): void {
    ticket.delete(attempt);
  }

  private arm(at: number): void {
    this.timer = setTimeout(() => this.fire(), Math.max(0, Math.ceil(at - performance.now())));
  }

  private fire(): void {
    this.timer = null;
    const now = performance.now();
    for (;;) {
      const head = this.groups.peekFront();
      if (head === undefined) return;
      if (head.members.size > 0 && head.at > now) {
        this.arm(head.at);
        return;
      }
      this.groups.shift();
      for (const attempt of [...head.members]) attempt.timeout();
      head.members.clear();
    }
  }

  /** Groups held now (for tests: the memory bound). */
  get size(): number {
    return this.groups.length;
  }
}
