/**
 * The typed view of the addon's PacketSocket (csrc/packet_socket.cc). Only lib/capture talks
 * to it, and only with validated arguments.
 */
import { loadBinding } from '../native/binding.js';

/** Words per packet in the metadata array delivered with each batch. */
export const META_STRIDE = 8;
export const META_OFFSET = 0;
export const META_CAPTURED = 1;
export const META_LENGTH = 2;
export const META_IFINDEX = 3;
export const META_PKTTYPE = 4;
export const META_PROTOCOL = 5;
export const META_SECONDS = 6;
export const META_NANOS = 7;

/** Called once per wake-up: an error (then nothing more is read), or a batch. */
export type OnPackets = (error: Error | null, data?: Buffer, meta?: Uint32Array) => void;

export interface NativePacketSocket {
  ref(): void;
  unref(): void;
  /** Cumulative PACKET_STATISTICS (packets passed the filter, incl. drops; drops) and batches delivered. */
  stats(): { packets: number; drops: number; wakeups: number };
  close(): void;
  readonly closed: boolean;
}

export interface NativePacketSocketOptions {
  /** Packets read per wake-up (1..1024). */
  batch: number;
  /** SO_RCVBUF(FORCE) in bytes; 0 keeps the system default. */
  rcvbuf: number;
  /** Bytes kept per packet (1..65536). */
  slot: number;
}

export interface PacketSocketClass {
  new (ifindex: number, filter: Buffer, onPackets: OnPackets, options: NativePacketSocketOptions): NativePacketSocket;
  interfaceIndex(name: string): number;
  interfaceName(index: number): string;
}

export function packetSocketClass(): PacketSocketClass {
  return loadBinding<{ PacketSocket: PacketSocketClass }>().PacketSocket;
}
