/**
 * A bounded set of keys that each expire after a time-to-live: the negative caches of the
 * lookup stage. At most `capacity` keys are held; when full, the oldest insertion goes first
 * (Map order is insertion order, and every entry has the same TTL, so oldest = soonest to
 * expire). A flood of 10^6 distinct keys costs `capacity` entries, never more.
 */
export class ExpiringSet {
  private readonly expiries = new Map<string, number>();

  constructor(private readonly ttlMs: number, private readonly capacity: number, private readonly now: () => number) {}

  add(key: string): void {
    this.expiries.delete(key);
    if (this.expiries.size >= this.capacity) this.expiries.delete(this.expiries.keys().next().value!);
    this.expiries.set(key, this.now() + this.ttlMs);
  }

  has(key: string): boolean {
    const expiry = this.expiries.get(key);
    if (expiry === undefined) return false;
    if (expiry > this.now()) return true;
    this.expiries.delete(key);
    return false;
  }

  delete(key: string): void {
    this.expiries.delete(key);
  }

  get size(): number {
    return this.expiries.size;
  }
}
