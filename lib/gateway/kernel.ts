/**
 * What the gateway needs of the kernel: the three `WireGuard` calls it makes, as an interface
 * so every stage can be tested against a fake, and one shared dump.
 */
import type { WireGuard } from '../wireguard/client.js';
import type { Device } from '../wireguard/types.js';

export type KernelPort = Pick<WireGuard, 'getDevice' | 'setDevice' | 'removePeers'>;

export interface Dump {
  device: Device;
  /**
   * Counts the dumps of a `SharedDump` in the order they were requested: a dump
   * whose serial is above `SharedDump.serial` as read at some moment was requested after it.
   * Milliseconds cannot say that within one millisecond.
   */
  serial: number;
  /** Unix ms when the dump was requested: peers installed after it may be missing from it. */
  startedAt: number;
  /** Unix ms when it was decoded. */
  finishedAt: number;
}

/**
 * Coalesces dumps, and lets every reader of the device learn from every dump. The settle stage
 * and the eviction scan both read the whole device; at 10^5 peers a dump is seconds of kernel
 * and decoding work in the test VM, so:
 * - every caller that asks while a dump is in flight gets that dump;
 * - every dump, whoever asked for it, goes to the `onDump` listeners: the settle stage reads
 *   handshakes from the eviction scan's dumps instead of taking its own;
 * - `lastDurationMs` says what a dump costs now, for readers that back off on a large device.
 */
export class SharedDump {
  private running: Promise<Dump> | null = null;
  private readonly listeners: Array<(dump: Dump) => void> = [];
  private serials = 0;
  /** Dumps taken, for tests and the bench. */
  count = 0;
  /** Unix ms when the latest dump was decoded, or null before any. Dumps are not kept. */
  lastFinishedAt: number | null = null;
  /** How long the latest dump took from request to decoded, in ms (0 before any). */
  lastDurationMs = 0;
  private lastSerial = 0;

  constructor(private readonly kernel: KernelPort, private readonly interfaceName: string, private readonly now: () => number = Date.now) {}

  /** The serial of the latest dump requested (0 before any). */
  get serial(): number {
    return this.serials;
  }

  /** Whether a dump is in flight. */
  get busy(): boolean {
    return this.running !== null;
  }

  read(): Promise<Dump> {
    if (this.running) return this.running;
    this.count++;
    const serial = ++this.serials;
    const startedAt = this.now();
    this.running = this.kernel.getDevice(this.interfaceName).then((device) => {
      const dump = { device, serial, startedAt, finishedAt: this.now() };
      this.publish(dump);
      return dump;
    }).finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /**
   * A dump of this interface taken elsewhere (the start-up's, streamed into the reconciliation):
   * only what it cost is kept, so readers that back off on a large device know it is large.
   */
  note(startedAt: number, finishedAt: number): void {
    this.lastFinishedAt = finishedAt;
    this.lastDurationMs = Math.max(0, finishedAt - startedAt);
  }

  /** Calls `listener` with every dump from now on, in the turn it is decoded. */
  onDump(listener: (dump: Dump) => void): void {
    this.listeners.push(listener);
  }

  private publish(dump: Dump): void {
    if (dump.serial > this.lastSerial) {
      this.lastSerial = dump.serial;
      this.lastFinishedAt = dump.finishedAt;
      this.lastDurationMs = Math.max(0, dump.finishedAt - dump.startedAt);
    }
    for (const listener of this.listeners) listener(dump);
  }
}
