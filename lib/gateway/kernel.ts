/**
 * What the gateway needs of the kernel: the three `WireGuard` calls it makes, as an interface
 * so every stage can be tested against a fake, and one shared dump.
 */
import type { WireGuard } from '../wireguard/client.js';
import type { Device } from '../wireguard/types.js';

export type KernelPort = Pick<WireGuard, 'getDevice' | 'setDevice' | 'removePeers'>;

/**
 * Coalesces dumps: every caller that asks while a dump is in flight gets that dump. The settle
 * stage and the eviction scan both read the whole device; at 10^5 peers a dump is seconds of
 * kernel work in the test VM, and two at once would be twice that for the same answer.
 */
export interface Dump {
  device: Device;
  /** Unix ms when the dump was requested: peers installed after it may be missing from it. */
  startedAt: number;
}

export class SharedDump {
  private running: Promise<Dump> | null = null;
  /** Dumps taken, for tests and the bench. */
  count = 0;

  constructor(private readonly kernel: KernelPort, private readonly interfaceName: string, private readonly now: () => number = Date.now) {}

  read(): Promise<Dump> {
    if (this.running) return this.running;
    this.count++;
    const startedAt = this.now();
    this.running = this.kernel.getDevice(this.interfaceName).then((device) => ({ device, startedAt })).finally(() => {
      this.running = null;
    });
    return this.running;
  }
}
