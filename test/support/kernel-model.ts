/**
 * A model of how kernel WireGuard applies SET_DEVICE messages (drivers/net/wireguard/
 * netlink.c: set_device, set_peer, set_allowedip), used to check that a config split across
 * many messages has the same effect as the config itself. Written from reading the kernel,
 * and cross-checked against the real kernel by the kernel test tier.
 */
import { attributes, readString } from '../../lib/netlink/attributes.js';
import { genlAttributes } from '../../lib/netlink/genl.js';
import { messagesIn } from '../../lib/netlink/message.js';
import { formatPrefix } from '../../lib/net/ip.js';
import * as uapi from '../../lib/wireguard/uapi.js';

export interface ModelPeer {
  allowedIps: string[];
  presharedKey?: string;
  endpoint?: string;
  keepalive?: number;
}

export class KernelModel {
  privateKey?: string;
  listenPort = 0;
  fwmark = 0;
  readonly peers = new Map<string, ModelPeer>();
  readonly interfaceNames: string[] = [];

  apply(message: Buffer): void {
    for (const msg of messagesIn(message)) {
      let peersAttr: Buffer | undefined;
      let flags = 0;
      for (const attr of genlAttributes(msg.payload)) {
        switch (attr.type) {
          case uapi.WGDEVICE_A_IFNAME: this.interfaceNames.push(readString(attr.value)); break;
          case uapi.WGDEVICE_A_PRIVATE_KEY: this.privateKey = attr.value.toString('hex'); break;
          case uapi.WGDEVICE_A_LISTEN_PORT: this.listenPort = attr.value.readUInt16LE(0); break;
          case uapi.WGDEVICE_A_FWMARK: this.fwmark = attr.value.readUInt32LE(0); break;
          case uapi.WGDEVICE_A_FLAGS: flags = attr.value.readUInt32LE(0); break;
          case uapi.WGDEVICE_A_PEERS: peersAttr = attr.value; break;
        }
      }
      if (flags & uapi.WGDEVICE_F_REPLACE_PEERS) this.peers.clear();
      if (peersAttr) for (const entry of attributes(peersAttr)) this.applyPeer(entry.value);
    }
  }

  private applyPeer(value: Buffer): void {
    let key = '';
    let flags = 0;
    const changes: Partial<ModelPeer> = {};
    let allowed: string[] | undefined;
    for (const attr of attributes(value)) {
      switch (attr.type) {
        case uapi.WGPEER_A_PUBLIC_KEY: key = attr.value.toString('base64'); break;
        case uapi.WGPEER_A_FLAGS: flags = attr.value.readUInt32LE(0); break;
        case uapi.WGPEER_A_PRESHARED_KEY: changes.presharedKey = attr.value.toString('hex'); break;
        case uapi.WGPEER_A_ENDPOINT: changes.endpoint = attr.value.toString('hex'); break;
        case uapi.WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL: changes.keepalive = attr.value.readUInt16LE(0); break;
        case uapi.WGPEER_A_ALLOWEDIPS:
          allowed = [];
          for (const ip of attributes(attr.value)) {
            const fields = new Map([...attributes(ip.value)].map((a) => [a.type, a.value]));
            const address = fields.get(uapi.WGALLOWEDIP_A_IPADDR)!;
            allowed.push(formatPrefix({ family: address.length === 4 ? 4 : 6, bytes: address, length: fields.get(uapi.WGALLOWEDIP_A_CIDR_MASK)![0]! }));
          }
          break;
      }
    }
    let peer = this.peers.get(key);
    if (flags & uapi.WGPEER_F_REMOVE_ME) {
      this.peers.delete(key);
      return;
    }
    if (!peer) {
      if (flags & uapi.WGPEER_F_UPDATE_ONLY) return;
      peer = { allowedIps: [] };
      this.peers.set(key, peer);
    }
    Object.assign(peer, changes);
    if (flags & uapi.WGPEER_F_REPLACE_ALLOWEDIPS) peer.allowedIps = [];
    if (allowed) {
      const present = new Set(peer.allowedIps);
      for (const ip of allowed) if (!present.has(ip)) peer.allowedIps.push(ip);
    }
  }
}
