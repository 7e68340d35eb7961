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
 *
 * A scan of 10^5 peers runs in slices (`observeInSlices`), so the table changes while it runs
 * and while its removals are sent: a peer removed meanwhile (revoked, or removed at start-up)
 * is not adopted back from a dump requested before its removal, and a decision is dropped if
 * its peer was installed again or showed life (`touch`) after it was made (`stillIdle`).
 */
import { SliceClock, runAtOnce, runInSlices } from '../slices.js';

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
  /** Unix ms of the install (or of adoption): a dump requested before it may not show the peer. */
  installedAt: number;
  /** Unix ms the handshake grace runs from: the install, or the last authenticated initiation (`touch`). */
  graceFrom: number;
  /** Installed by this gateway in this run (vs adopted). */
  installedHere: boolean;
  /** The table's scan that last saw the peer in a dump (set by the table). */
  seenInScan?: number;
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

/** A decision and what it was made on, so that it can be checked again before it is acted on. */
export interface EvictionCandidate extends EvictionDecision {
  readonly activity: Activity;
  readonly lastReceiveAt: number;
}

/**
 * Per-peer activity across scans. `observe` takes one dump and returns the peers to remove;
 * it also forgets peers that have left the kernel and adopts peers it had not seen.
 */
export class ActivityTable {
  private readonly table = new Map<string, Activity>();
  /** Key → Unix ms when it was removed, until no dump requested before that is still to be observed. */
  private readonly departed = new Map<string, number>();
  private scans = 0;

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
    this.departed.delete(publicKey);
    this.table.set(publicKey, {
      rxBytes: 0n, // a peer the kernel creates starts its counters at zero
      lastReceiveAt: now,
      installedAt: now,
      graceFrom: now,
      installedHere: true,
      seenInScan: this.scans,
    });
  }

  /**
   * The peer's client is there now (an authenticated initiation to a peer the kernel holds,
   * which the kernel answers itself): its idle clock restarts, and if it never handshaked it
   * gets the grace of a fresh install. A decision made before is dropped (`stillIdle`).
   */
  touch(publicKey: string, now: number): void {
    const activity = this.table.get(publicKey);
    if (activity === undefined) return;
    activity.lastReceiveAt = now;
    activity.graceFrom = now; // not installedAt: the peer was in the kernel before any dump from now
    activity.installedHere = true;
  }

  /** A peer found in the kernel, not installed by this gateway (see the module comment). */
  adopt(peer: ObservedPeer, now: number): void {
    this.table.set(peer.publicKey, this.adopted(peer, now));
  }

  /**
   * What a scan would decide for `peer` adopted now, without adopting it: at start-up, a peer
   * that would go at once (no session to lose) is queued for removal and never tracked.
   */
  adoptionDecision(peer: ObservedPeer, now: number): EvictionDecision | null {
    return decide(peer, this.adopted(peer, now), now, this.policy);
  }

  private adopted(peer: ObservedPeer, now: number): Activity {
    const handshake = peer.lastHandshake?.getTime() ?? null;
    const lastReceiveAt = handshake === null ? Number.NEGATIVE_INFINITY
      : now - handshake >= REJECT_AFTER_TIME_MS ? handshake : now;
    return { rxBytes: peer.rxBytes, lastReceiveAt, installedAt: now, graceFrom: now, installedHere: false, seenInScan: this.scans };
  }

  /**
   * The peer has left the kernel (removed at `now`). `remember`: whether a dump requested before
   * now may still be observed (one in flight, or being observed); it will not adopt the peer
   * back. Without one, nothing is remembered: 10^5 removals must not leave 10^5 entries behind.
   */
  remove(publicKey: string, now = Date.now(), remember = true): void {
    this.table.delete(publicKey);
    if (remember) this.departed.set(publicKey, now);
  }

  /** Whether a candidate of `observeInSlices` still holds: same install, no sign of life since. */
  stillIdle(candidate: EvictionCandidate): boolean {
    return this.table.get(candidate.publicKey) === candidate.activity && candidate.activity.lastReceiveAt === candidate.lastReceiveAt;
  }

  /**
   * One scan over a full dump of the device, requested at `dumpedAt`. Returns the peers to
   * evict; the caller removes them and then calls `remove` for each one it did remove. Peers
   * installed after `dumpedAt` may be missing from the dump and are kept.
   */
  observe(peers: readonly ObservedPeer[], now: number, dumpedAt = now): EvictionDecision[] {
    return runAtOnce(this.observeSteps(peers, now, dumpedAt, null))
      .map(({ publicKey, reason, idleSeconds }) => ({ publicKey, reason, idleSeconds }));
  }

  /**
   * The same scan, a few milliseconds at a time, with the event loop running between slices.
   * Check each candidate with `stillIdle` before removing it: the table may change meanwhile.
   */
  observeInSlices(peers: readonly ObservedPeer[], now: number, dumpedAt: number, clock = new SliceClock()): Promise<EvictionCandidate[]> {
    return runInSlices(this.observeSteps(peers, now, dumpedAt, clock), clock);
  }

  private *observeSteps(peers: readonly ObservedPeer[], now: number, dumpedAt: number, clock: SliceClock | null): Generator<void, EvictionCandidate[], void> {
    const scan = ++this.scans;
    const candidates: EvictionCandidate[] = [];
    for (const peer of peers) {
      let activity = this.table.get(peer.publicKey);
      if (activity === undefined) {
        const departedAt = this.departed.get(peer.publicKey);
        if (departedAt !== undefined && departedAt >= dumpedAt) continue; // removed since this dump was requested
        this.adopt(peer, now);
        activity = this.table.get(peer.publicKey)!;
      } else if (peer.rxBytes !== activity.rxBytes) {
        activity.rxBytes = peer.rxBytes;
        activity.lastReceiveAt = now;
      }
      activity.seenInScan = scan;
      const decision = decide(peer, activity, now, this.policy);
      if (decision) candidates.push({ ...decision, activity, lastReceiveAt: activity.lastReceiveAt });
      if (clock?.due()) yield;
    }
    // Not in the dump although in the table before it was requested: it has left the kernel.
    for (const [key, activity] of this.table) {
      if (activity.seenInScan !== scan && activity.installedAt < dumpedAt) this.table.delete(key);
      if (clock?.due()) yield;
    }
    for (const [key, departedAt] of this.departed) {
      if (departedAt < dumpedAt) this.departed.delete(key);
      if (clock?.due()) yield;
    }
    return candidates;
  }
}

/** The rule for one peer, given what was seen of it before. */
export function decide(peer: ObservedPeer, activity: Activity, now: number, policy: EvictionPolicy): EvictionDecision | null {
  const handshake = peer.lastHandshake?.getTime() ?? null;
  if (handshake === null) {
    // Installed here: wait out the grace. Adopted: no session to lose.
    if (activity.installedHere && now - activity.graceFrom < policy.handshakeGraceMs) return null;
    return { publicKey: peer.publicKey, reason: 'never-handshaked', idleSeconds: null };
  }
  if (now - activity.lastReceiveAt < policy.idleTimeoutMs) return null;
  if (now - handshake < policy.idleTimeoutMs) return null;
  const lastLife = Math.max(activity.lastReceiveAt, handshake);
  return { publicKey: peer.publicKey, reason: 'idle', idleSeconds: Math.round((now - lastLife) / 1000) };
}
