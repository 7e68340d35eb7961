/**
 * The cryptographic constants of WireGuard's handshake, as given in the WireGuard paper
 * (J. A. Donenfeld, "WireGuard: Next Generation Kernel Network Tunnel", NDSS 2017),
 * §5.4 "Messages" and §5.4.2 "First Message: Initiator to Responder". The message layout
 * (length, type, field offsets) is lib/protocol/initiation.ts; key length is lib/keys.ts.
 *
 * @module
 */

/** The Noise protocol name; `HASH(CONSTRUCTION)` is the initial chaining key (§5.4, §5.4.2). */
export const CONSTRUCTION = 'Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s';

/** Mixed into the initial hash after the construction: `H = HASH(C ‖ IDENTIFIER)` (§5.4.2). */
export const IDENTIFIER = 'WireGuard v1 zx2c4 Jason@zx2c4.com';

/** Label of the mac1 key: `HASH(LABEL_MAC1 ‖ Spub_m′)` (§5.4.4 "Cookie MACs"). */
export const LABEL_MAC1 = 'mac1----';

/** Label of the cookie key, used only for mac2 / cookie replies (§5.4.7); listed for completeness. */
export const LABEL_COOKIE = 'cookie--';

/** Poly1305 tag length. */
export const TAG_SIZE = 16;
/** TAI64N timestamp length (8-byte seconds label + 4-byte nanoseconds, big-endian). */
export const TIMESTAMP_SIZE = 12;
