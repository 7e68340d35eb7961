/**
 * The gateway's data model: what a peer's configuration is, where it is kept, who answers for
 * keys the store does not know, and what the gateway reports. Each pipeline stage in this
 * folder takes and returns these types; the `Gateway` class only wires the stages together.
 *
 * Keys at this layer are base64 strings exactly as wg(8) prints them (44 characters), always in
 * the canonical form the Noise responder produced or the validators normalised, so a string
 * compare is a key compare.
 */

/** A value or a promise of it: a `Store` or resolver may be synchronous (SQLite) or not. */
export type Awaitable<T> = T | Promise<T>;

/**
 * One peer's configuration as the control plane gives it (the HTTP resolver contract's JSON,
 * and `Gateway.upsertPeer`'s argument). Validated by `validatePeerConfig` before use.
 */
export interface ResolvedPeer {
  /** Base64, 32 bytes. */
  publicKey: string;
  /** CIDR strings; host bits are cleared on validation, as the kernel stores them. */
  allowedIps: string[];
  /** Base64, 32 bytes. A secret: never logged, never in an error, a metric or an event. */
  presharedKey?: string | null;
  /** Seconds, 0..65535, once the peer is up. Default 0 (off). */
  persistentKeepalive?: number;
}

/** Where a stored configuration came from. */
export type PeerOrigin = 'resolver' | 'push';

/** A peer as the store holds it. */
export interface StoredPeer {
  publicKey: string;
  allowedIps: string[];
  presharedKey: string | null;
  persistentKeepalive: number;
  origin: PeerOrigin;
  /** Unix ms when the configuration was fetched from the resolver or pushed. */
  fetchedAt: number;
}

/**
 * Where every peer lives (the kernel holds only the ones that are knocking). `SqliteStore` is
 * the one jitguard ships; bring another by implementing this. Methods may be synchronous or
 * return promises; the gateway awaits each. Every method must be safe to call at any time
 * between construction and `close()`, and must not throw for a key it does not know.
 *
 * Revocation is a state, not a deletion: a revoked key is refused without asking the resolver
 * until it is upserted again. Revoking must drop the key's secrets (its preshared key).
 */
export interface Store {
  /** The peer's configuration, `'revoked'` if revoked, or null if the store does not know it. */
  getPeer(publicKey: string): Awaitable<StoredPeer | 'revoked' | null>;
  /** Inserts or replaces a configuration; clears a revocation. */
  putPeer(peer: StoredPeer): Awaitable<void>;
  /** Marks the key revoked (keeping no configuration). Returns whether it held a configuration. */
  revokePeer(publicKey: string): Awaitable<boolean>;
  /** Forgets a configuration (the resolver no longer knows the key); revocations are kept. */
  deletePeer(publicKey: string): Awaitable<void>;
  /** The last TAI64N timestamp accepted from this key (12 bytes), or null. */
  getLastTimestamp(publicKey: string): Awaitable<Uint8Array | null>;
  /**
   * Records `timestamp` as the key's last accepted one if it is strictly greater than the one
   * stored (atomically: of two concurrent calls the greater wins). Returns whether it was stored.
   */
  advanceTimestamp(publicKey: string, timestamp: Uint8Array): Awaitable<boolean>;
  /** How many keys hold a configuration (revoked ones excluded). Must be cheap: it is a gauge. */
  countPeers(): Awaitable<number>;
  close(): Awaitable<void>;
}

/**
 * Asks the control plane for a key's configuration: null means the key is unknown (it is
 * negative-cached); a throw means the lookup failed (briefly cached, so a flood cannot hammer
 * the control plane). `signal` aborts when the gateway stops or the lookup times out.
 */
export type Resolver = (publicKey: string, signal: AbortSignal) => Promise<ResolvedPeer | null>;

/** A source or destination of a datagram. */
export interface Address {
  address: string;
  port: number;
}

/** Why the gateway did not install a peer for an initiation. */
export type RejectReason =
  /** The source sent more initiations than its token bucket allows (before any crypto). */
  | 'rate-limited'
  /** The same initiation (same ephemeral key) was seen before, from any source; refused before any DH. */
  | 'replayed-packet'
  /** Not a handshake initiation, or a bad mac1, ephemeral, static key or timestamp (see `detail`). */
  | 'unauthenticated'
  /** Past mac1, but more initiations were waiting for verification than `verify.maxOutstanding` allows. */
  | 'verify-overloaded'
  /** The verification thread holding it died (`detail`: how); the thread is replaced. */
  | 'verify-failed'
  /** Authenticated, but its TAI64N timestamp is not later than the last one accepted for that key. */
  | 'replayed-timestamp'
  /** The key is revoked. */
  | 'revoked'
  /** The resolver says the key is unknown (or said so within `negativeTtl`). */
  | 'unknown'
  /** The resolver failed (or failed within `failureTtl`); `detail` says how. */
  | 'lookup-failed'
  /** Too many lookups in flight and queued. */
  | 'overloaded'
  /** The key was installed `maxInstallsPerKey` times in the last minute. */
  | 'install-rate'
  /** The kernel refused the install; `detail` has the error code. */
  | 'install-failed'
  /** The gateway is stopping. */
  | 'stopping';

export const REJECT_REASONS: readonly RejectReason[] = [
  'rate-limited', 'replayed-packet', 'unauthenticated', 'verify-overloaded', 'verify-failed', 'replayed-timestamp',
  'revoked', 'unknown', 'lookup-failed', 'overloaded', 'install-rate', 'install-failed', 'stopping',
];

/** Why a peer left the kernel. */
export type EvictReason = 'idle' | 'never-handshaked' | 'revoked' | 'unknown-to-store';

export interface InstalledEvent {
  publicKey: string;
  source: Address;
  allowedIps: string[];
  via: 'store' | 'resolver';
  /** From the initiation's arrival (kernel timestamp) to the kernel accepting the peer. */
  knockToInstallMs: number;
}

export interface RejectedEvent {
  source: Address;
  /** Present once the initiation was authenticated (or, for 'replayed-packet', never). */
  publicKey?: string;
  reason: RejectReason;
  /** A finer cause: the Noise check that failed, the lookup failure, the kernel error code. */
  detail?: string;
}

export interface EvictedEvent {
  publicKey: string;
  reason: EvictReason;
  /** Seconds since the peer last showed life (received data or handshaked); null if never. */
  idleSeconds: number | null;
}
