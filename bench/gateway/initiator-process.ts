/**
 * The synthetic clients, in their own process inside the clients' network namespace: builds
 * initiations with initiator.ts (all of them before any clock starts), holds one UDP socket per
 * source address, and sends a prepared set as fast as dgram goes, over the veth link, through
 * the gateway's capture, exactly as real clients' packets arrive.
 *
 *   node initiator-process.mjs      (started by the bench runner through `ip netns exec`)
 */
import { createSocket, type Socket } from 'node:dgram';
import { InitiationBuilder, newKeyPair, tai64n } from './initiator.js';
import { serve } from './rpc.js';

const unixNow = () => performance.timeOrigin + performance.now();

export type PacketKind = 'honest' | 'forged' | 'garbage-mac1' | 'garbage' | 'replay';

export interface PrepareParams {
  name: string;
  kind: PacketKind;
  count: number;
  /** Base64 public key of the gateway's interface. */
  responderPublicKey: string;
  /** forged: the keys claimed, in rotation (keys the gateway's store knows). */
  claimed?: string[];
}

export interface SendParams {
  name: string;
  target: { address: string; port: number };
  /** 'spread': packet i from source i mod sources; 'single': every packet from the first source. */
  sources: 'spread' | 'single';
  /** Only packets [start, end) of the set. */
  slice?: [number, number];
}

export interface SendReport {
  startedAt: number;
  finishedAt: number;
  sent: number;
}

const sockets: Socket[] = [];
const prepared = new Map<string, Buffer[]>();
let received = 0;
let receivedInitiations = 0;

serve({
  /** One socket per source address (each bound to an address the namespace holds). */
  async sockets(params: { addresses: string[] }) {
    for (const address of params.addresses) {
      const socket = createSocket('udp4');
      socket.on('message', (message) => {
        received++;
        if (message.length === 148 && message[0] === 1) receivedInitiations++;
      });
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(0, address, () => {
          socket.off('error', reject);
          resolve();
        });
      });
      sockets.push(socket);
    }
    return sockets.length;
  },

  /** Builds `count` packets of `kind`; returns the honest initiators' public keys (base64). */
  prepare(params: PrepareParams) {
    const t0 = performance.now();
    const builder = new InitiationBuilder(Buffer.from(params.responderPublicKey, 'base64'));
    const packets: Buffer[] = new Array(params.count);
    const publicKeys: string[] = [];
    const claimed = (params.claimed ?? []).map((k) => Buffer.from(k, 'base64'));
    const timestamp = tai64n(Date.now());
    switch (params.kind) {
      case 'honest':
        for (let i = 0; i < params.count; i++) {
          const keys = newKeyPair();
          publicKeys.push(keys.publicKey.toString('base64'));
          packets[i] = builder.honest(keys, timestamp);
        }
        break;
      case 'forged':
        if (claimed.length === 0) throw new Error('forged: no claimed keys');
        for (let i = 0; i < params.count; i++) packets[i] = builder.forged(claimed[i % claimed.length]!, timestamp);
        break;
      case 'garbage-mac1':
        for (let i = 0; i < params.count; i++) packets[i] = builder.garbageWithMac1();
        break;
      case 'garbage':
        for (let i = 0; i < params.count; i++) packets[i] = InitiationBuilder.garbage();
        break;
      case 'replay': {
        const keys = newKeyPair();
        publicKeys.push(keys.publicKey.toString('base64'));
        const one = builder.honest(keys, timestamp);
        packets.fill(one);
        break;
      }
    }
    prepared.set(params.name, packets);
    return { publicKeys, prepareMs: performance.now() - t0 };
  },

  /** Sends a prepared set; resolves once dgram has handed every packet to the kernel. */
  async send(params: SendParams): Promise<SendReport> {
    const all = prepared.get(params.name);
    if (!all) throw new Error(`no prepared set ${params.name}`);
    const packets = params.slice ? all.slice(params.slice[0], params.slice[1]) : all;
    if (sockets.length === 0) throw new Error('no sockets');
    const { address, port } = params.target;
    let pending = packets.length;
    let failed: Error | null = null;
    const startedAt = unixNow();
    await new Promise<void>((resolve) => {
      const done = (error: Error | null) => {
        if (error) failed = error;
        if (--pending === 0) resolve();
      };
      for (let i = 0; i < packets.length; i++) {
        const socket = params.sources === 'single' ? sockets[0]! : sockets[i % sockets.length]!;
        socket.send(packets[i]!, port, address, done);
      }
    });
    const finishedAt = unixNow();
    if (failed) throw failed;
    return { startedAt, finishedAt, sent: packets.length };
  },

  /** Datagrams the sockets received, and how many of them were handshake initiations (the gateway kernel initiating back). */
  received: () => ({ received, receivedInitiations }),

  drop(params: { name: string }) {
    prepared.delete(params.name);
  },
});
