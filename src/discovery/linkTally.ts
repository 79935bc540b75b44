/**
 * The completeness of a query out of several links (docs/protocol.md §8.4, §9): each link's
 * Members hints count that link's grid only, so each link keeps its own count of responders and
 * the largest hint heard there. Used by discovery queries (src/discovery/collector.ts) and view
 * queries (src/membership/query.ts); each decides itself how long to wait once complete.
 */
export class LinkTally {
  private readonly links = new Map<string, { responders: number; expected: number }>();

  /** Links heard from. */
  get size(): number {
    return this.links.size;
  }

  /**
   * Notes an answer from `link`: one more responder there when `counted` (a responder answers
   * once), and its Members hint. Returns whether every link heard from is complete: some hint
   * heard there, and at least as many responders as the largest.
   */
  add(link: string, hint: number | undefined, counted = true): boolean {
    let entry = this.links.get(link);
    if (entry === undefined) {
      entry = { responders: 0, expected: 0 };
      this.links.set(link, entry);
    }
    if (counted) entry.responders++;
    if (hint !== undefined && hint > entry.expected) entry.expected = hint;
    // A query goes out of as many links as the host has: a few entries to read.
    for (const l of this.links.values()) if (!complete(l)) return false;
    return true;
  }
}

function complete(l: { readonly responders: number; readonly expected: number }): boolean {
  return l.expected > 0 && l.responders >= l.expected;
}
