/**
 * `WireGuard`: kernel WireGuard configuration over one generic-netlink connection (plus one
 * rtnetlink connection for creating, deleting and listing interfaces).
 *
 * Every call runs its system calls off the event loop and returns a Promise; calls on one
 * instance may overlap and are carried out one at a time, in call order.
 */
import type { KeyObject } from 'node:crypto';
import { ValidationError, WireGuardError } from '../errors.js';
import type { Progress } from '../errors.js';
import { KEY_LENGTH, decodeKey, describe, privateKeyObject } from '../keys.js';
import type { KeyInput } from '../keys.js';
import { MessageWriter } from '../netlink/attributes.js';
import { NETLINK_GENERIC, NETLINK_ROUTE, NLM_F_DUMP, NLM_F_REQUEST } from '../netlink/constants.js';
import { NetlinkConnection } from '../netlink/connection.js';
import type { RequestContext } from '../netlink/connection.js';
import { beginGenlMessage, resolveFamily } from '../netlink/genl.js';
import { endMessage } from '../netlink/message.js';
import type { NetlinkMessage } from '../netlink/message.js';
import { NativeTransport } from '../netlink/transport.js';
import type { NetlinkTransport } from '../netlink/transport.js';
import { decodeLinks, encodeCreateLink, encodeDeleteLink, encodeListLinks } from '../rtnetlink/link.js';
import { decodeDevice } from './decode.js';
import { DEFAULT_MAX_MESSAGE_BYTES, encodeSetDevice } from './encode.js';
import type { Device, DeviceConfig } from './types.js';
import { WGDEVICE_A_IFNAME, WG_CMD_GET_DEVICE, WG_GENL_NAME, WG_GENL_VERSION } from './uapi.js';
import { validateConfig, wipeConfig } from './validate.js';
import { validateInterfaceName } from '../net/interface-name.js';

export interface WireGuardOptions {
  /**
   * Replace the kernel sockets, e.g. with transports that replay recorded replies in tests.
   * Each is opened lazily on first use when not given.
   */
  transports?: { generic?: NetlinkTransport; route?: NetlinkTransport };
  /**
   * Manage the WireGuard interfaces of another network namespace, given as a path such as
   * `/run/netns/gateway` (what `ip netns add gateway` creates) or `/proc/<pid>/ns/net`.
   * The sockets are created inside it; the calling thread is returned to its own namespace.
   * Needs CAP_SYS_ADMIN in addition to CAP_NET_ADMIN.
   */
  netns?: string;
  /** Upper bound on one SET_DEVICE message (default 32 KiB). */
  maxMessageBytes?: number;
  /** How many times a dump interrupted by a concurrent change is retried (default 8). */
  maxDumpAttempts?: number;
}

export class WireGuard {
  private genericConnection: NetlinkConnection | undefined;
  private routeConnection: NetlinkConnection | undefined;
  private family: Promise<number> | undefined;
  private readonly options: WireGuardOptions;
  private readonly maxMessageBytes: number;
  private readonly maxDumpAttempts: number;
  /** Interface name → its public key (null: no private key), as last seen or set here. */
  private readonly ownPublicKeys = new Map<string, Uint8Array | null>();

  constructor(options: WireGuardOptions = {}) {
    this.options = options;
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.maxDumpAttempts = options.maxDumpAttempts ?? 8;
    if (options.netns !== undefined && (typeof options.netns !== 'string' || options.netns === '')) {
      throw new ValidationError('options.netns', 'expected a path such as /run/netns/NAME');
    }
    if (!Number.isInteger(this.maxMessageBytes) || this.maxMessageBytes < 512 || this.maxMessageBytes > 60000) {
      throw new ValidationError('options.maxMessageBytes', `expected an integer from 512 to 60000, got ${this.maxMessageBytes}`);
    }
  }

  private get generic(): NetlinkConnection {
    this.genericConnection ??= new NetlinkConnection(this.options.transports?.generic ?? this.openSocket(NETLINK_GENERIC, 'open'));
    return this.genericConnection;
  }

  private get route(): NetlinkConnection {
    this.routeConnection ??= new NetlinkConnection(this.options.transports?.route ?? this.openSocket(NETLINK_ROUTE, 'open'));
    return this.routeConnection;
  }

  private openSocket(protocol: number, operation: string): NetlinkTransport {
    try {
      return new NativeTransport(protocol, this.options.netns ?? '');
    } catch (error) {
      const e = error as { errno?: number; code?: string; syscall?: string };
      if (typeof e?.errno !== 'number') throw error;
      const where = this.options.netns ? ` in network namespace ${this.options.netns}` : '';
      const hint = e.syscall === 'setns' && e.code === 'EPERM' ? ' (entering a namespace needs CAP_SYS_ADMIN)' : '';
      throw new WireGuardError(`${operation}: cannot open a netlink socket${where}: ${e.syscall} failed with ${e.code}${hint}`, {
        code: e.code ?? 'EUNKNOWN', errno: e.errno, syscall: e.syscall ?? 'socket', operation,
      });
    }
  }

  /** The "wireguard" generic-netlink family id, resolved once per instance. */
  private resolveFamily(): Promise<number> {
    this.family ??= resolveFamily(this.generic, WG_GENL_NAME, 'resolveFamily').catch((error: unknown) => {
      this.family = undefined;
      if (error instanceof WireGuardError && error.code === 'ENOENT') {
        throw new WireGuardError('this kernel has no WireGuard support (generic netlink family "wireguard" is not registered; try `modprobe wireguard`)', {
          code: 'ENOENT', errno: error.errno, syscall: 'netlink', operation: 'resolveFamily',
        });
      }
      throw error;
    });
    return this.family;
  }

  private async dumpDevice(name: string, operation: string, onPrivateKey?: (key: Buffer) => void): Promise<Device> {
    const family = await this.resolveFamily();
    for (let attempt = 1; ; attempt++) {
      const writer = new MessageWriter(64);
      const start = beginGenlMessage(writer, family, WG_CMD_GET_DEVICE, WG_GENL_VERSION, NLM_F_REQUEST | NLM_F_DUMP);
      writer.attrString(WGDEVICE_A_IFNAME, name);
      endMessage(writer, start);
      const { messages, interrupted } = await this.generic.request([writer.take()], { operation, interface: name });
      if (interrupted) {
        wipeSecrets(messages);
        if (attempt < this.maxDumpAttempts) continue;
        throw new WireGuardError(`${operation} ${name}: the device changed during each of ${attempt} dump attempts; try again`, {
          code: 'EAGAIN', errno: 11, syscall: 'netlink', operation, interface: name,
        });
      }
      const device = decodeDevice(messages, onPrivateKey);
      this.ownPublicKeys.set(name, device.publicKey === null ? null : decodeKey(device.publicKey, 'publicKey'));
      return device;
    }
  }

  /**
   * Reads an interface and all its peers. The private key and preshared keys are not
   * returned (see {@link WireGuard.getPrivateKey}); they are wiped from the reply buffers.
   * A dump that races a concurrent change is retried. Missing interface: ENODEV.
   */
  getDevice(name: string): Promise<Device> {
    return this.dumpDevice(validateInterfaceName(name), 'getDevice');
  }

  /**
   * The interface's private key as an X25519 `KeyObject` (null when none is set). This is the
   * one way jitguard hands out the key: a KeyObject keeps it out of ordinary JS buffers, and
   * every reply buffer that held it is zeroed. Use `crypto.diffieHellman` with it directly.
   */
  async getPrivateKey(name: string): Promise<KeyObject | null> {
    let key: KeyObject | null = null;
    await this.dumpDevice(validateInterfaceName(name), 'getPrivateKey', (bytes) => {
      if (bytes.length === KEY_LENGTH && bytes.some((b) => b !== 0)) key = privateKeyObject(bytes);
    });
    return key;
  }

  /**
   * Applies `config` to an existing interface, with the semantics documented on
   * {@link DeviceConfig}. Validation happens first and changes nothing when it fails. A large
   * config is split across messages; if the kernel rejects a later message, the error's
   * `progress` says exactly which peers were applied.
   */
  async setDevice(name: string, config: DeviceConfig): Promise<void> {
    validateInterfaceName(name);
    const hasPeers = typeof config === 'object' && config !== null && Array.isArray(config.peers) && config.peers.length > 0;
    const knowsOwnKey = this.ownPublicKeys.has(name) || (config as DeviceConfig | null)?.privateKey !== undefined;
    if (hasPeers && !knowsOwnKey) await this.dumpDevice(name, 'setDevice');
    const normalized = validateConfig(config, this.ownPublicKeys.get(name));
    const family = await this.resolveFamily();
    let encoded;
    try {
      encoded = encodeSetDevice(family, name, normalized, this.maxMessageBytes);
    } finally {
      wipeConfig(normalized);
    }
    const { messages, boundaries } = encoded;
    const progress = (completedMessages: number): Progress => {
      const boundary = completedMessages > 0 ? boundaries[completedMessages - 1] : undefined;
      return {
        completedMessages,
        totalMessages: messages.length,
        appliedPeers: boundary?.completedPeers ?? 0,
        partialPeer: boundary?.partialPeer,
      };
    };
    const context: RequestContext = { operation: 'setDevice', interface: name, progress };
    try {
      await this.generic.request(messages, context);
    } finally {
      for (const message of messages) message.fill(0);
    }
    if (config.privateKey !== undefined) this.ownPublicKeys.delete(name); // re-read on next need
  }

  /** Removes peers by public key. Keys that are not on the interface are ignored. */
  removePeers(name: string, publicKeys: KeyInput[]): Promise<void> {
    if (!Array.isArray(publicKeys)) {
      throw new ValidationError('publicKeys', `expected an array of keys, got ${describe(publicKeys)}`);
    }
    return this.setDevice(name, { peers: publicKeys.map((publicKey) => ({ publicKey, remove: true })) });
  }

  /** Names of all WireGuard interfaces in this network namespace. */
  async listDevices(): Promise<string[]> {
    const { messages } = await this.route.request([encodeListLinks()], { operation: 'listDevices' });
    return decodeLinks(messages).filter((link) => link.kind === WG_GENL_NAME).map((link) => link.name);
  }

  /** Creates a WireGuard interface (down, unconfigured). EEXIST if the name is taken. */
  async createDevice(name: string): Promise<void> {
    validateInterfaceName(name);
    await this.route.request([encodeCreateLink(name, WG_GENL_NAME)], { operation: 'createDevice', interface: name });
    this.ownPublicKeys.set(name, null);
  }

  /**
   * Deletes a WireGuard interface. Its peers are removed first, in one SET: the kernel tears
   * peers down far faster that way than one by one inside link deletion (measured ~70×).
   * Refuses (EOPNOTSUPP) to delete an interface that is not WireGuard.
   */
  async deleteDevice(name: string): Promise<void> {
    await this.setDevice(name, { replacePeers: true });
    await this.route.request([encodeDeleteLink(name)], { operation: 'deleteDevice', interface: name });
    this.ownPublicKeys.delete(name);
  }

  /** Closes the sockets. Calls already queued finish first; later calls fail. */
  close(): void {
    this.genericConnection?.close();
    this.routeConnection?.close();
  }
}

function wipeSecrets(messages: NetlinkMessage[]): void {
  decodeDevice(messages); // decoding zeroes every key attribute in place
}
