// The command sequence window of one connection (MS-SMB2 3.3.1.1, 3.3.1.2, 3.3.5.2.3, 3.3.5.2.5).
//
// The client may use any MessageId in [start, end) that it has not used yet. Consuming the lowest
// unused id advances `start`; ids consumed out of order are remembered in `usedAhead` until the
// gap below them closes. The window never spans more than `max` ids, so the set stays bounded.

export class CreditWindow {
  private start: bigint;
  private end: bigint;
  private readonly usedAhead = new Set<bigint>();
  private readonly max: number;

  constructor(max: number, initialStart = 0n, initialCredits = 1) {
    this.max = max;
    this.start = initialStart;
    this.end = initialStart + BigInt(initialCredits);
  }

  /** Credits the client currently holds (granted and not yet used). */
  get outstanding(): number {
    return Number(this.end - this.start) - this.usedAhead.size;
  }

  /**
   * Consumes `charge` consecutive ids starting at `messageId`. Returns false (and consumes nothing)
   * when any of them is outside the window or already used: MS-SMB2 3.3.5.2.3 says the server then
   * terminates the connection.
   */
  consume(messageId: bigint, charge: number): boolean {
    const count = BigInt(charge);
    if (messageId < this.start || messageId + count > this.end) return false;
    if (messageId === this.start && this.usedAhead.size === 0) {
      // In-order fast path: nothing ahead of the window start is used.
      this.start += count;
      return true;
    }
    for (let id = messageId; id < messageId + count; id++) {
      if (this.usedAhead.has(id)) return false;
    }
    for (let id = messageId; id < messageId + count; id++) this.usedAhead.add(id);
    while (this.usedAhead.delete(this.start)) this.start++;
    return true;
  }

  /**
   * Grants up to `requested` new credits, bounded so the client never holds more than `max`
   * (MS-SMB2 3.3.1.2). Grants at least one when the client would otherwise hold none, so it can
   * never be starved. Returns the number granted, for the response's CreditResponse field.
   */
  grant(requested: number, perResponseMax: number): number {
    const room = this.max - Number(this.end - this.start);
    let granted = Math.min(requested, perResponseMax, Math.max(0, room));
    if (granted <= 0 && this.outstanding === 0) granted = 1;
    if (granted < 0) granted = 0;
    this.end += BigInt(granted);
    return granted;
  }
}
