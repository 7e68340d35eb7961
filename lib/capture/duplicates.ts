/**
 * Recognises the second copy of one received frame. A packet socket bound to every interface
 * sees a frame once per device it passes through: a bridge port and the bridge, a bond slave
 * and the bond, a passthru macvlan and its lower device. The copies are the same bytes from
 * the same source to the same destination, handed to the socket within the same softirq,
 * carrying the same kernel receive timestamp.
 *
 * A copy is a packet whose bytes and 4-tuple equal those of one seen less than
 * {@link DUPLICATE_WINDOW_MS} before. A real initiator never sends the same bytes twice (every
 * initiation has a fresh ephemeral key and timestamp), so the only other thing this can fold
 * is a replay of a packet within the window, which the kernel would refuse anyway.
 *
 * It runs on every initiation a capture of every interface receives, so it is cheap: a hash of
 * the sender index, ephemeral key and mac1 finds the candidate, and only a candidate is
 * compared byte for byte.
 */
import { INITIATION_FIELD_LENGTH, INITIATION_OFFSET } from '../protocol/initiation.js';

/** How close (kernel receive time) a copy must be to the original: 10 ms. */
export const DUPLICATE_WINDOW_MS = 10;
/**
 * Slots of the table of recent packets (a power of two). Each packet goes to the slot its hash
 * names, replacing what was there: constant time and no allocation per packet. A copy arrives
 * right after its original, so it is missed (and delivered) only if another packet took that
 * slot in between: with 1024 slots, about one in a thousand per packet in between.
 */
export const DUPLICATE_SLOTS = 1024;

const HASHED: readonly [number, number][] = [
  [INITIATION_OFFSET.sender, INITIATION_OFFSET.static], // sender index and ephemeral key
  [INITIATION_OFFSET.mac1, INITIATION_OFFSET.mac1 + INITIATION_FIELD_LENGTH.mac1],
];

/** FNV-1a over the fields that tell initiations apart. */
function hash(payload: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const [from, to] of HASHED) {
    for (let i = from; i < to && i < payload.length; i++) h = Math.imul(h ^ payload[i]!, 0x01000193);
  }
  return h >>> 0;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class RecentPackets {
  private readonly mask: number;
  private readonly hashes: Uint32Array;
  private readonly times: Float64Array;
  private readonly payloads: (Uint8Array | undefined)[];
  private readonly tuples: string[];

  constructor(private readonly windowMs = DUPLICATE_WINDOW_MS, slots = DUPLICATE_SLOTS) {
    if (!Number.isInteger(Math.log2(slots))) throw new RangeError('slots must be a power of two');
    this.mask = slots - 1;
    this.hashes = new Uint32Array(slots);
    this.times = new Float64Array(slots);
    this.payloads = new Array<Uint8Array | undefined>(slots).fill(undefined);
    this.tuples = new Array<string>(slots).fill('');
  }

  /**
   * True when this packet is a copy of one seen within the window. Otherwise it is remembered:
   * `payload` must then not change (the capture passes its own copy).
   */
  isCopy(payload: Uint8Array, tuple: string, atMs: number): boolean {
    const h = hash(payload);
    const slot = h & this.mask;
    const before = this.payloads[slot];
    if (before !== undefined && this.hashes[slot] === h && Math.abs(atMs - this.times[slot]!) <= this.windowMs &&
        this.tuples[slot] === tuple && sameBytes(before, payload)) {
      return true;
    }
    this.hashes[slot] = h;
    this.times[slot] = atMs;
    this.payloads[slot] = payload;
    this.tuples[slot] = tuple;
    return false;
  }
}
