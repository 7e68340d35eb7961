/**
 * The gateway's counters, twice: as a prom-client `Registry` (prefix `jitguard_`, Prometheus
 * naming: `_total` counters, `_seconds` histograms, base units) for the daemon to serve, and as
 * a plain object from `stats()` for code and tests. Labels carry reasons and outcomes, never a
 * key or an address: one series per client would be a cardinality bomb under a flood.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { LookupOutcome } from './lookup.js';
import { REJECT_REASONS } from './types.js';
import type { EvictReason, RejectReason } from './types.js';

const LOOKUP_OUTCOMES: readonly LookupOutcome[] = ['store_hit', 'resolver_found', 'unknown', 'negative_cached', 'failed', 'overloaded'];
const EVICT_REASONS: readonly EvictReason[] = ['idle', 'never-handshaked', 'revoked', 'unknown-to-store'];

export interface GatewayStats {
  initiations: number;
  rejected: Record<RejectReason, number>;
  lookups: Record<LookupOutcome, number>;
  /** Initiations of peers already in the kernel, left to the kernel. */
  inKernel: number;
  installs: number;
  installNetlinkCalls: number;
  settled: number;
  evictions: Record<EvictReason, number>;
  evictionScans: number;
  kernelPeers: number;
  staleKernelPeers: number;
  captureKernelDrops: number;
  captureQueueDrops: number;
  errors: number;
}

/** Sources of the gauges that are read when scraped rather than pushed. */
export interface GaugeSources {
  /** Peers the gateway holds in the kernel: tracked, plus adopted ones still queued for removal. */
  kernelPeers: () => number;
  storePeers: () => number | Promise<number>;
  capture: () => { kernelDrops: number; queueDrops: number } | null;
}

const zeros = <K extends string>(keys: readonly K[]) => Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;

export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly counts: GatewayStats = {
    initiations: 0, rejected: zeros(REJECT_REASONS), lookups: zeros(LOOKUP_OUTCOMES), inKernel: 0, installs: 0,
    installNetlinkCalls: 0, settled: 0, evictions: zeros(EVICT_REASONS), evictionScans: 0, kernelPeers: 0,
    staleKernelPeers: 0, captureKernelDrops: 0, captureQueueDrops: 0, errors: 0,
  };

  private readonly initiationsTotal: Counter;
  private readonly rejectedTotal: Counter<'reason'>;
  private readonly lookupsTotal: Counter<'outcome'>;
  private readonly inKernelTotal: Counter;
  private readonly installsTotal: Counter<'via'>;
  private readonly installCallsTotal: Counter;
  private readonly evictionsTotal: Counter<'reason'>;
  private readonly errorsTotal: Counter<'code'>;
  private readonly staleKernelPeers: Gauge;
  private readonly knockToInstall: Histogram;
  private readonly resolverDuration: Histogram<'outcome'>;

  constructor(private readonly sources: GaugeSources) {
    const registers = [this.registry];
    this.initiationsTotal = new Counter({ name: 'jitguard_initiations_total', help: 'Handshake initiations seen (captured or injected).', registers });
    this.rejectedTotal = new Counter({ name: 'jitguard_rejected_initiations_total', help: 'Initiations that did not lead to an install, by reason.', labelNames: ['reason'], registers });
    this.lookupsTotal = new Counter({ name: 'jitguard_lookups_total', help: 'Peer lookups by outcome.', labelNames: ['outcome'], registers });
    this.inKernelTotal = new Counter({ name: 'jitguard_initiations_in_kernel_total', help: 'Authenticated initiations of peers already in the kernel, left to the kernel.', registers });
    this.installsTotal = new Counter({ name: 'jitguard_installs_total', help: 'Peers installed in the kernel as initiator, by where their configuration came from.', labelNames: ['via'], registers });
    this.installCallsTotal = new Counter({ name: 'jitguard_install_netlink_calls_total', help: 'setDevice calls made for installs (coalesced: many peers per call under load).', registers });
    this.evictionsTotal = new Counter({ name: 'jitguard_evictions_total', help: 'Peers removed from the kernel, by reason.', labelNames: ['reason'], registers });
    this.errorsTotal = new Counter({ name: 'jitguard_errors_total', help: 'Errors the gateway reported and survived, by code.', labelNames: ['code'], registers });
    new Gauge({
      name: 'jitguard_kernel_peers', help: 'Peers in the kernel: those the gateway tracks plus those still queued for removal at start-up.', registers,
      collect() { this.set(sources.kernelPeers()); },
    });
    this.staleKernelPeers = new Gauge({ name: 'jitguard_kernel_stale_peers', help: 'Peers in the kernel idle beyond idleTimeout after the last eviction scan (should be 0).', registers });
    new Gauge({
      name: 'jitguard_store_peers', help: 'Peers with a configuration in the store (revoked excluded).', registers,
      async collect() { this.set(await sources.storePeers()); },
    });
    const counts = this.counts;
    // Counters whose value lives in the capture: each scrape sets them to the capture's figure.
    new Counter({
      name: 'jitguard_capture_kernel_drops_total', help: 'Initiations the kernel dropped because the capture socket buffer was full.', registers,
      collect() { const c = sources.capture(); if (c) counts.captureKernelDrops = c.kernelDrops; this.reset(); this.inc(counts.captureKernelDrops); },
    });
    new Counter({
      name: 'jitguard_capture_queue_drops_total', help: 'Initiations dropped from a full capture iterator queue.', registers,
      collect() { const c = sources.capture(); if (c) counts.captureQueueDrops = c.queueDrops; this.reset(); this.inc(counts.captureQueueDrops); },
    });
    this.knockToInstall = new Histogram({
      name: 'jitguard_knock_to_install_seconds', help: 'From an initiation reaching the host to the kernel holding its peer.', registers,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    });
    this.resolverDuration = new Histogram({
      name: 'jitguard_resolver_request_duration_seconds', help: 'Control-plane lookups, by outcome.', labelNames: ['outcome'], registers,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    });
    for (const reason of REJECT_REASONS) this.rejectedTotal.inc({ reason }, 0);
    for (const outcome of LOOKUP_OUTCOMES) this.lookupsTotal.inc({ outcome }, 0);
    for (const reason of EVICT_REASONS) this.evictionsTotal.inc({ reason }, 0);
  }

  initiation(): void {
    this.counts.initiations++;
    this.initiationsTotal.inc();
  }

  rejected(reason: RejectReason): void {
    this.counts.rejected[reason]++;
    this.rejectedTotal.inc({ reason });
  }

  lookup(outcome: LookupOutcome): void {
    this.counts.lookups[outcome]++;
    this.lookupsTotal.inc({ outcome });
  }

  inKernel(): void {
    this.counts.inKernel++;
    this.inKernelTotal.inc();
  }

  installed(via: 'store' | 'resolver', knockToInstallSeconds: number): void {
    this.counts.installs++;
    this.installsTotal.inc({ via });
    this.knockToInstall.observe(knockToInstallSeconds);
  }

  installCalls(total: number): void {
    const delta = total - this.counts.installNetlinkCalls;
    if (delta <= 0) return;
    this.counts.installNetlinkCalls = total;
    this.installCallsTotal.inc(delta);
  }

  settled(): void {
    this.counts.settled++;
  }

  evicted(reason: EvictReason): void {
    this.counts.evictions[reason]++;
    this.evictionsTotal.inc({ reason });
  }

  scanned(stalePeers: number): void {
    this.counts.evictionScans++;
    this.counts.staleKernelPeers = stalePeers;
    this.staleKernelPeers.set(stalePeers);
  }

  resolverCall(seconds: number, outcome: 'found' | 'unknown' | 'failed'): void {
    this.resolverDuration.observe({ outcome }, seconds);
  }

  error(code: string): void {
    this.counts.errors++;
    this.errorsTotal.inc({ code });
  }

  stats(): GatewayStats {
    const stats = structuredClone(this.counts);
    stats.kernelPeers = this.sources.kernelPeers();
    return stats;
  }
}
