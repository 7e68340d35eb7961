/**
 * Recognises the second copy of one received frame. A packet socket bound to every interface
 * sees a frame once per device it passes through: a bridge port and the bridge, a bond slave
 * and the bond, a macvlan or ipvlan's lower device and the device itself. The copies are the
 * same bytes from the same source to the same destination, handed to the socket within the
 * same softirq, carrying the same kernel receive timestamp.
 *
 * A copy is a packet whose bytes and 4-tuple match one seen less than {@link DUPLICATE_WINDOW_NS}
 * before. A real initiator never sends the same bytes twice (every initiation has a fresh
 * ephemeral key and timestamp), so the only other thing this can fold is a replay of a packet
 * within the window, which the kernel would refuse anyway.
 */

/** How close (kernel receive time) a copy must be to the original: 10 ms. */
export const DUPLICATE_WINDOW_NS = 10_000_000n;
/** How many recent packets are remembered; copies arrive right after the original. */
export const DUPLICATE_MEMORY = 1024;

export class RecentPackets {
  private readonly seen = new Map<string, bigint>();

  constructor(
    private readonly windowNs = DUPLICATE_WINDOW_NS,
    private readonly memory = DUPLICATE_MEMORY,
  ) {}

  /** True when this packet is a copy of one seen within the window; remembers it otherwise. */
  isCopy(payload: Uint8Array, tuple: string, timestampNs: bigint): boolean {
    const key = `${tuple}|${Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('latin1')}`;
    const before = this.seen.get(key);
    if (before !== undefined) {
      const apart = timestampNs >= before ? timestampNs - before : before - timestampNs;
      if (apart <= this.windowNs) return true;
      this.seen.delete(key); // re-inserted below as the newest
    }
    this.seen.set(key, timestampNs);
    if (this.seen.size > this.memory) this.seen.delete(this.seen.keys().next().value as string);
    return false;
  }
}
