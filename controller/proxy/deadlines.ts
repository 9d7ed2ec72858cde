/** Something a DeadlineList can time out: the links live on the item itself, so arming allocates nothing. */
export interface Timed {
  deadlinePrev: Timed | null;
  deadlineNext: Timed | null;
  deadlineAt: number;
  deadlineList: DeadlineList | null;
  onDeadline(): void;
}

/**
 * Timeouts that all last the same time, kept in arming order (so the first item is always the next to expire)
 * behind one timer for the whole list. Arming and disarming are O(1) list operations, which matters on the proxy's
 * fast path: a `setTimeout` per request, or `socket.setTimeout` (a timer refresh on every read and write), would
 * cost more than the rest of the request's bookkeeping.
 */
export class DeadlineList {
  private head: Timed | null = null;
  private tail: Timed | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(readonly durationMs: number) {}

  /** Starts (or restarts) the item's countdown. */
  arm(item: Timed, now = performance.now()): void {
    if (item.deadlineList !== null) item.deadlineList.disarm(item);
    item.deadlineAt = now + this.durationMs;
    item.deadlineList = this;
    item.deadlinePrev = this.tail;
    item.deadlineNext = null;
    if (this.tail) this.tail.deadlineNext = item;
    else this.head = item;
    this.tail = item;
    if (this.timer === null) this.schedule(this.durationMs);
  }

  disarm(item: Timed): void {
    if (item.deadlineList !== this) return;
    const { deadlinePrev: prev, deadlineNext: next } = item;
    if (prev) prev.deadlineNext = next;
    else this.head = next;
    if (next) next.deadlinePrev = prev;
    else this.tail = prev;
    item.deadlinePrev = null;
    item.deadlineNext = null;
    item.deadlineList = null;
  }

  /** Forgets every item and stops the timer. */
  clear(): void {
    while (this.head) this.disarm(this.head);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(this.fire, Math.max(1, Math.ceil(ms)));
    this.timer.unref();
  }

  private readonly fire = (): void => {
    this.timer = null;
    const now = performance.now();
    while (this.head && this.head.deadlineAt <= now) {
      const item = this.head;
      this.disarm(item);
      item.onDeadline();
    }
    if (this.head && this.timer === null) this.schedule(this.head.deadlineAt - now);
  };
}
