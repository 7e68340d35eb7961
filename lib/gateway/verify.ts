/**
 * Stage 2: authenticate the initiator with the responder's half of the Noise handshake
 * (`Responder.unwrap`), refusing a packet seen before in well under a microsecond, before any
 * Diffie-Hellman: one captured initiation replayed at line rate must cost a table probe a
 * packet, not two X25519s (see `SeenInitiations` for why the ephemeral key identifies it).
 *
 * Every packet that got past mac1 is remembered, whatever its outcome: each cost a DH, and its
 * replay would too. Packets that failed mac1 are not, so junk cannot push real entries out.
 *
 * `Verifier` does it all synchronously, on the caller's thread; `VerifierPool` (verify-pool.ts)
 * gives the same results with the Diffie-Hellman work on worker threads or in time-budgeted
 * slices of the event loop.
 */
import type { Responder, UnwrapRejectReason } from '../noise/responder.js';
import type { SeenInitiations } from '../noise/seen-initiations.js';

export type VerifyResult =
  | { ok: true; publicKey: string; timestamp: Uint8Array }
  | { ok: false; reason: 'replayed-packet' }
  | { ok: false; reason: 'unauthenticated'; detail: UnwrapRejectReason }
  /** `VerifierPool` only: more packets waiting for verification than its bound; not remembered. */
  | { ok: false; reason: 'verify-overloaded' }
  /** `VerifierPool` only: the thread verifying it died (`detail`: how); it is not retried. */
  | { ok: false; reason: 'verify-failed'; detail: string }
  /** `VerifierPool` only: stopped before the packet was verified. */
  | { ok: false; reason: 'stopping' };

/** Checks that fail before the first DH: a packet refused by one of them cost next to nothing. */
const BEFORE_DH: ReadonlySet<UnwrapRejectReason> = new Set<UnwrapRejectReason>(['size', 'type', 'mac1']);

export class Verifier {
  constructor(private readonly responder: Responder, private readonly seen: SeenInitiations) {}

  verify(packet: Uint8Array): VerifyResult {
    if (this.seen.has(packet)) return { ok: false, reason: 'replayed-packet' };
    const result = this.responder.unwrap(packet);
    if (result.ok) {
      this.seen.remember(packet);
      return { ok: true, publicKey: result.publicKey, timestamp: result.timestamp.bytes };
    }
    if (!BEFORE_DH.has(result.reason)) this.seen.remember(packet);
    return { ok: false, reason: 'unauthenticated', detail: result.reason };
  }
}
