/**
 * One initiation through the stages, in the order that makes a flood cheapest to refuse
 * (DESIGN.md, threat model): rate limit → verify → replay → in the kernel already? → lookup →
 * install. Each stage is its own module with a typed result; this only sequences them and
 * says, in one typed outcome, what became of the knock. A second knock of a key whose lookup or
 * install is running joins it (in-flight.ts).
 */
import type { KeyedFlights } from './in-flight.js';
import type { InstallOutcome, InstallRequest } from './install.js';
import type { LookupResult } from './lookup.js';
import type { ReplayGuard } from './replay.js';
import type { SourceRateLimit } from './rate-limit.js';
import type { VerifyResult } from './verify.js';
import type { Address, RejectReason, StoredPeer } from './types.js';

export interface Knock {
  /** The 148-byte UDP payload. */
  packet: Uint8Array;
  source: Address;
  /** Unix ms (fractional) when the initiation reached the host. */
  receivedAt: number;
}

export type KnockOutcome =
  | { kind: 'installed'; publicKey: string; peer: StoredPeer; via: 'store' | 'resolver'; knockToInstallMs: number }
  | { kind: 'in-kernel'; publicKey: string }
  /** Another knock of the key was being looked up or installed; this one joined it. */
  | { kind: 'joined'; publicKey: string }
  | { kind: 'rejected'; reason: RejectReason; publicKey?: string; detail?: string };

/** The stages, as the pipeline calls them (the real ones, or fakes in tests). */
export interface Stages {
  rateLimit: Pick<SourceRateLimit, 'admit'>;
  verifier: { verify(packet: Uint8Array): VerifyResult | Promise<VerifyResult> };
  replay: Pick<ReplayGuard, 'isFresh' | 'accept'>;
  inKernel: (publicKey: string) => boolean;
  /** Lookups and installs running, per key. */
  flights: KeyedFlights<KnockOutcome>;
  lookup: { lookup(publicKey: string): Promise<LookupResult> };
  onLookup?: (result: LookupResult) => void;
  installer: { install(request: InstallRequest): Promise<InstallOutcome> };
  /** Unix ms (fractional), for knock-to-install. */
  now: () => number;
}

export async function handleKnock(knock: Knock, stages: Stages): Promise<KnockOutcome> {
  if (!stages.rateLimit.admit(knock.source)) return { kind: 'rejected', reason: 'rate-limited' };
  const verified = await stages.verifier.verify(knock.packet);
  if (!verified.ok) {
    return verified.reason === 'unauthenticated'
      ? { kind: 'rejected', reason: 'unauthenticated', detail: verified.detail }
      : { kind: 'rejected', reason: verified.reason };
  }
  const { publicKey, timestamp } = verified;
  if (!(await stages.replay.isFresh(publicKey, timestamp))) {
    return { kind: 'rejected', reason: 'replayed-timestamp', publicKey };
  }
  for (;;) {
    if (stages.inKernel(publicKey)) {
      // The kernel has the peer and answers this initiation itself; record the timestamp so a
      // replay of it after an eviction is refused.
      await stages.replay.accept(publicKey, timestamp);
      return { kind: 'in-kernel', publicKey };
    }
    const running = stages.flights.get(publicKey);
    if (running === undefined) break;
    const first = await running;
    if (first.kind === 'installed' || first.kind === 'in-kernel' || first.kind === 'joined') {
      await stages.replay.accept(publicKey, timestamp);
      return { kind: 'joined', publicKey };
    }
    // The first knock was refused (a failed lookup, the install rate): this one tries on its
    // own, mostly against the caches that refusal filled.
  }
  return stages.flights.run(publicKey, () => lookUpAndInstall(knock, publicKey, timestamp, stages));
}

async function lookUpAndInstall(knock: Knock, publicKey: string, timestamp: Uint8Array, stages: Stages): Promise<KnockOutcome> {
  const found = await stages.lookup.lookup(publicKey);
  stages.onLookup?.(found);
  if (!found.found) return { kind: 'rejected', reason: found.reason, publicKey, ...(found.detail ? { detail: found.detail } : {}) };
  // Recorded only now that the key is going to be used: an unknown key's timestamps are not
  // worth a row. False means a later initiation of the same key got here first.
  if (!(await stages.replay.accept(publicKey, timestamp))) {
    return { kind: 'rejected', reason: 'replayed-timestamp', publicKey };
  }
  const installed = await stages.installer.install({ peer: found.peer, source: knock.source });
  if (!installed.installed) {
    return { kind: 'rejected', reason: installed.reason, publicKey, ...(installed.detail ? { detail: installed.detail } : {}) };
  }
  return { kind: 'installed', publicKey, peer: found.peer, via: found.via, knockToInstallMs: stages.now() - knock.receivedAt };
}
