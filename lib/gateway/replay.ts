/**
 * Stage 3: the timestamp rule of the WireGuard paper (§5.1, §5.4.2): the responder "keeps
 * track of the greatest timestamp received per peer and discards packets containing timestamps
 * less than or equal to it". The kernel keeps that state only while the peer is in the kernel;
 * a just-in-time gateway evicts peers all the time, so the last timestamp lives in the store and
 * survives evictions and restarts. Otherwise a captured initiation, replayed after its peer was
 * evicted, would make the gateway install the peer and aim a handshake at the replayer's address.
 *
 * `check` reads; `accept` records, and only for a key that is going to be used (in the kernel
 * already, or found by the lookup): an unknown key's timestamps are not worth a row each, and
 * a flood of fresh keys must not grow the database.
 */
import type { Store } from './types.js';

export class ReplayGuard {
  constructor(private readonly store: Store) {}

  /** Whether `timestamp` (12 TAI64N bytes) is later than the last one accepted for the key. */
  async isFresh(publicKey: string, timestamp: Uint8Array): Promise<boolean> {
    const last = await this.store.getLastTimestamp(publicKey);
    return last === null || Buffer.compare(timestamp, last) > 0;
  }

  /**
   * Records the timestamp; false when a concurrent initiation of the same key already recorded
   * one at least as late (then this one is a replay or was overtaken, and must not be used).
   */
  async accept(publicKey: string, timestamp: Uint8Array): Promise<boolean> {
    return await this.store.advanceTimestamp(publicKey, timestamp);
  }
}
