/**
 * One knock per key between "authenticated and fresh" and "in the kernel". A client that gets no
 * answer retries its initiation, and in the test VM kernel clients send two within a second; a
 * second knock of a key whose lookup or install is still running must join that work, not
 * start its own: it would look the key up again, spend another of the key's install tokens,
 * and install the peer a second time (two 'installed' events, a second `setDevice` when the
 * first had already gone out).
 *
 * The joined knock's source is not used. If it differs (the client's NAT mapping changed
 * between its tries), the kernel learns the new endpoint from the client's next initiation,
 * which it answers itself once the peer is installed.
 */
export class KeyedFlights<T> {
  private readonly running = new Map<string, Promise<T>>();

  /** The work running for `key`, if any. */
  get(key: string): Promise<T> | undefined {
    return this.running.get(key);
  }

  /** Keys with work running. */
  get size(): number {
    return this.running.size;
  }

  /**
   * Runs `work` as the flight of `key` (the caller checked `get` first, in the same turn).
   * The entry is gone once the work settles, before anyone awaiting it resumes.
   */
  run(key: string, work: () => Promise<T>): Promise<T> {
    if (this.running.has(key)) throw new Error(`KeyedFlights: a flight for this key is already running`);
    const flight = work().finally(() => this.running.delete(key));
    this.running.set(key, flight);
    return flight;
  }
}
