/**
 * Stage 7: decide which kernel peers are idle, from one dump per scan. Pure decisions over a
 * table of what each peer looked like at earlier scans; the gateway does the removing.
 *
 * The kernel's clock makes "idle" subtle (WireGuard paper §6; messages.h): while traffic flows a
 * session rekeys every 120 s (REKEY_AFTER_TIME), so `lastHandshake` moves only every ~2 minutes
 * for a busy peer, and keys die 180 s after their handshake (REJECT_AFTER_TIME). The handshake
 * time alone cannot tell a busy peer from an idle one within ~3 minutes; the receive counter can.
 * So a peer is idle when BOTH hold:
 * - its receive counter has not grown across scans for `idleTimeout`, and
 * - its last handshake is older than `idleTimeout`.
 * A peer whose counter moved is never idle, however short `idleTimeout` is (tests use seconds).
 *
 * A peer installed by this gateway that has never handshaked is removed `handshakeGrace` after
 * its install: its client has gone, or the install aimed at a forged source.
 *
 * Peers found in the kernel rather than installed here (at start-up, or added behind the
 * gateway's back) are adopted: with no handshake they hold no session and go at the first scan;
 * with a handshake older than REJECT_AFTER_TIME they can hold no live session, and their idle
 * clock runs from that handshake; with a younger one they are watched like a fresh install.
 */

/** REJECT_AFTER_TIME (messages.h): a session's keys are refused 180 s after its handshake. */
export const REJECT_AFTER_TIME_MS = 180_000;

/** What the evictor needs of a kernel peer (a `Peer` from `getDevice` has it). */
export interface ObservedPeer {
  publicKey: string;
  rxBytes: bigint;
  lastHandshake: Date | null;
}

export interface Activity {
  rxBytes: bigint;
  /** Unix ms when the receive counter was last seen to grow (or the adoption rule's start). */
  lastReceiveAt: number;
  /** Unix ms of the install (or of adoption). */
  installedAt: number;
  /** Installed by this gateway in this run (vs adopted). */
  installedHere: boolean;
}

export interface EvictionPolicy {
  idleTimeoutMs: number;
  handshakeGraceMs: number;
}

export interface EvictionDecision {
  publicKey: string;
  reason: 'idle' | 'never-handshaked';
  /** Seconds since the peer last received or handshaked; null if it never did. */
  idleSeconds: number | null;
}

/**
 * Per-peer activity across scans. `observe` takes one dump and returns the peers to remove;
 * it also forgets peers that have left the kernel and adopts peers it had not seen.
 */
export class ActivityTable {
  private readonly table = new Map<string, Activity>();

  constructor(private readonly policy: EvictionPolicy) {}

  get size(): number {
    return this.table.size;
  }

  has(publicKey: string): boolean {
    return this.table.has(publicKey);
  }

  get(publicKey: string): Activity | undefined {
    return this.table.get(publicKey);
  }

  /** A peer this gateway just installed: its handshake grace starts now. */
  installed(publicKey: string, now: number): void {
    this.table.set(publicKey, {
      rxBytes: 0n, // a peer the kernel creates starts its counters at zero
      lastReceiveAt: now,
      installedAt: now,
      installedHere: true,
    });
  }

  /** A peer found in the kernel, not installed by this gateway (see the module comment). */
  adopt(peer: ObservedPeer, now: number): void {
    const handshake = peer.lastHandshake?.getTime() ?? null;
    const lastReceiveAt = handshake === null ? Number.NEGATIVE_INFINITY
      : now - handshake >= REJECT_AFTER_TIME_MS ? handshake : now;
    this.table.set(peer.publicKey, { rxBytes: peer.rxBytes, lastReceiveAt, installedAt: now, installedHere: false });
  }

  remove(publicKey: string): void {
    this.table.delete(publicKey);
  }

  /**
   * One scan over a full dump of the device, requested at `dumpedAt`. Returns the peers to
   * evict; the caller removes them and then calls `remove` for each one it did remove. Peers
   * installed after `dumpedAt` may be missing from the dump and are kept.
   */
  observe(peers: readonly ObservedPeer[], now: number, dumpedAt = now): EvictionDecision[] {
    const seen = new Set<string>();
    const decisions: EvictionDecision[] = [];
    for (const peer of peers) {
      seen.add(peer.publicKey);
      let activity = this.table.get(peer.publicKey);
      if (activity === undefined) {
        this.adopt(peer, now);
        activity = this.table.get(peer.publicKey)!;
      } else if (peer.rxBytes !== activity.rxBytes) {
        activity.rxBytes = peer.rxBytes;
        activity.lastReceiveAt = now;
      }
      const decision = decide(peer, activity, now, this.policy);
      if (decision) decisions.push(decision);
    }
    for (const [key, activity] of this.table) {
      if (!seen.has(key) && activity.installedAt < dumpedAt) this.table.delete(key);
    }
    return decisions;
  }
}

/** The rule for one peer, given what was seen of it before. */
export function decide(peer: ObservedPeer, activity: Activity, now: number, policy: EvictionPolicy): EvictionDecision | null {
  const handshake = peer.lastHandshake?.getTime() ?? null;
  if (handshake === null) {
    // Installed here: wait out the grace. Adopted: no session to lose.
    if (activity.installedHere && now - activity.installedAt < policy.handshakeGraceMs) return null;
    return { publicKey: peer.publicKey, reason: 'never-handshaked', idleSeconds: null };
  }
  if (now - activity.lastReceiveAt < policy.idleTimeoutMs) return null;
  if (now - handshake < policy.idleTimeoutMs) return null;
  const lastLife = Math.max(activity.lastReceiveAt, handshake);
  return { publicKey: peer.publicKey, reason: 'idle', idleSeconds: Math.round((now - lastLife) / 1000) };
}
