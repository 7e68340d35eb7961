/**
 * The typed view of the addon's PacketSocket (csrc/packet_socket.cc). Only lib/capture talks
 * to it, and only with validated arguments.
 */
import { loadBinding } from '../native/binding.js';

/** Words per packet in the metadata array delivered with each batch. */
export const META_STRIDE = 9;
export const META_OFFSET = 0;
export const META_CAPTURED = 1;
/** The packet's real length from its network header on (PACKET_AUXDATA tp_len), not the captured part. */
export const META_LENGTH = 2;
export const META_IFINDEX = 3;
export const META_PKTTYPE = 4;
export const META_PROTOCOL = 5;
export const META_SECONDS = 6;
export const META_NANOS = 7;
/** 0x10000 | TCI when the frame carried a VLAN tag, else 0. */
export const META_VLAN = 8;
export const META_VLAN_PRESENT = 0x10000;

/** Called once per wake-up: an error (then the poll stays stopped until resume()), or a batch. */
export type OnPackets = (error: Error | null, data?: Buffer, meta?: Uint32Array) => void;

export interface NativePacketSocket {
  ref(): void;
  unref(): void;
  /** Cumulative PACKET_STATISTICS (packets passed the filter, incl. drops; drops) and batches delivered. */
  stats(): { packets: number; drops: number; wakeups: number };
  /** Stops reading until resume() (packets wait in the socket's receive buffer). */
  pause(): void;
  /** Reads again after pause() or after an error was delivered. */
  resume(): void;
  /** The interface `name` in the socket's namespace now; throws an errno error (ENODEV) when it does not exist. */
  link(name: string): { ifindex: number; up: boolean };
  /** Binds again, to another interface index (one deleted and created anew under the same name). */
  bind(ifindex: number): void;
  close(): void;
  readonly closed: boolean;
  /** The bound interface index; 0 for every interface. */
  readonly ifindex: number;
}

export interface NativePacketSocketOptions {
  /** Packets read per wake-up (1..1024). */
  batch: number;
  /** SO_RCVBUF(FORCE) in bytes; 0 keeps the system default. */
  rcvbuf: number;
  /** Bytes kept per packet (1..65536). */
  slot: number;
  /** Path of the network namespace to open the socket in; '' for the caller's own. */
  netns: string;
  /** Tests only: throw once the socket is fully open, to check that nothing outlives the throw. */
  testFailAfterOpen?: boolean;
}

export interface LocalAddress {
  name: string;
  family: 4 | 6;
  address: Buffer;
}

export interface PacketSocketClass {
  /** `ifindex` 0: every interface of the namespace. */
  new (ifindex: number, filter: Buffer, onPackets: OnPackets, options: NativePacketSocketOptions): NativePacketSocket;
  /** if_nametoindex(3) in the network namespace at `netns` ('' for the caller's own). */
  interfaceIndex(name: string, netns: string): number;
  /** Every IP address of the network namespace at `netns` ('' for the caller's own). */
  localAddresses(netns: string): LocalAddress[];
}

export function packetSocketClass(): PacketSocketClass {
  return loadBinding<{ PacketSocket: PacketSocketClass }>().PacketSocket;
}
