/**
 * `WireGuard`: kernel WireGuard configuration over one generic-netlink connection (plus one
 * rtnetlink connection for creating, deleting and listing interfaces).
 *
 * Every call runs its system calls off the event loop and returns a Promise; calls on one
 * instance may overlap and reach the kernel one at a time, in call order. A dump is decoded
 * a few milliseconds at a time between turns of the event loop (10^5 peers would otherwise
 * hold it for hundreds of milliseconds), so the Promise of a large `getDevice` may settle
 * after those of calls made after it; what it returns is still the kernel's state before them.
 */
import type { KeyObject } from 'node:crypto';
import { ValidationError, WireGuardError, errnoName } from '../errors.js';
import { KEY_LENGTH, decodeKey, derivePublicKey, describe, privateKeyObject } from '../keys.js';
import type { KeyInput } from '../keys.js';
import { MessageWriter, NetlinkDecodeError } from '../netlink/attributes.js';
import { NETLINK_GENERIC, NETLINK_ROUTE, NLM_F_DUMP, NLM_F_REQUEST } from '../netlink/constants.js';
import { NetlinkConnection } from '../netlink/connection.js';
import type { RequestContext } from '../netlink/connection.js';
import { beginGenlMessage, resolveFamily } from '../netlink/genl.js';
import { endMessage } from '../netlink/message.js';
import type { NetlinkMessage } from '../netlink/message.js';
import { DEFAULT_REPLY_TIMEOUT_MS, NativeTransport, validateReplyTimeout } from '../netlink/transport.js';
import type { NetlinkTransport } from '../netlink/transport.js';
import { decodeLinks, encodeCreateLink, encodeDeleteLink, encodeListLinks } from '../rtnetlink/link.js';
import { decodeDevice, decodeDeviceInSlices } from './decode.js';
import { runInSlices, SliceClock } from '../slices.js';
import { DEFAULT_MAX_MESSAGE_BYTES, encodeSetDevice, progressAfter } from './encode.js';
import { PIPELINE_MIN_PEERS, SetMessageSource } from './set-pipeline.js';
import type { Device, DeviceConfig, DeviceWithPrivateKey, GetDeviceOptions } from './types.js';
import { WGDEVICE_A_IFNAME, WG_CMD_GET_DEVICE, WG_GENL_NAME, WG_GENL_VERSION } from './uapi.js';
import { rejectOwnKeyPeer, validateConfig, validateConfigSteps, wipeConfig, type NormalizedConfig } from './validate.js';
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
  /** How many times a dump interrupted by a concurrent change is tried, 1 to 1000 (default 8). */
  maxDumpAttempts?: number;
  /**
   * How long one wait for the kernel's answer may last, in milliseconds (default 10,000;
   * 1 to 3,600,000). Per wait, not per call, and it never counts the kernel's work: the kernel
   * applies a message inside sendmsg() and queues its answer before that returns, so this
   * bounds only an answer that never comes. A call whose wait times out fails with
   * `ETIMEDOUT`, and the socket is replaced on the next call.
   */
  replyTimeoutMs?: number;
}

/** Upper bound on `maxDumpAttempts`: a dump that races changes this often will not settle. */
const MAX_DUMP_ATTEMPTS = 1000;

export class WireGuard {
  private genericConnection: NetlinkConnection | undefined;
  private routeConnection: NetlinkConnection | undefined;
  private family: Promise<number> | undefined;
  private readonly options: WireGuardOptions;
  private readonly maxMessageBytes: number;
  private readonly maxDumpAttempts: number;
  private readonly replyTimeoutMs: number;
  /** Interface name → its public key (null: no private key), as last seen or set here. */
  private readonly ownPublicKeys = new Map<string, Uint8Array | null>();
  /**
   * Counts the writes to `ownPublicKeys` made by calls that changed the key, so a dump whose
   * decoding ends after such a call (decoding runs in slices) does not put back the old key.
   */
  private ownKeyChanges = 0;
  private closing: Promise<void> | undefined;
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(options: WireGuardOptions = {}) {
    this.options = options;
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.maxDumpAttempts = options.maxDumpAttempts ?? 8;
    this.replyTimeoutMs = validateReplyTimeout(options.replyTimeoutMs ?? DEFAULT_REPLY_TIMEOUT_MS, 'options.replyTimeoutMs');
    if (options.netns !== undefined && (typeof options.netns !== 'string' || options.netns === '')) {
      throw new ValidationError('options.netns', 'expected a path such as /run/netns/NAME');
    }
    if (!Number.isInteger(this.maxMessageBytes) || this.maxMessageBytes < 512 || this.maxMessageBytes > 60000) {
      throw new ValidationError('options.maxMessageBytes', `expected an integer from 512 to 60000, got ${this.maxMessageBytes}`);
    }
    if (!Number.isInteger(this.maxDumpAttempts) || this.maxDumpAttempts < 1 || this.maxDumpAttempts > MAX_DUMP_ATTEMPTS) {
      throw new ValidationError('options.maxDumpAttempts', `expected an integer from 1 to ${MAX_DUMP_ATTEMPTS}, got ${typeof this.maxDumpAttempts === 'number' ? this.maxDumpAttempts : describe(this.maxDumpAttempts)}`);
    }
  }

  private get generic(): NetlinkConnection {
    const given = this.options.transports?.generic;
    if (!this.genericConnection) {
      this.genericConnection = new NetlinkConnection(() => given ?? this.openSocket(NETLINK_GENERIC, 'open'), NETLINK_GENERIC);
      if (this.closing) this.genericConnection.cancelWaits(); // first used by a call made before close()
    }
    return this.genericConnection;
  }

  private get route(): NetlinkConnection {
    const given = this.options.transports?.route;
    if (!this.routeConnection) {
      this.routeConnection = new NetlinkConnection(() => given ?? this.openSocket(NETLINK_ROUTE, 'open'), NETLINK_ROUTE);
      if (this.closing) this.routeConnection.cancelWaits(); // first used by a call made before close()
    }
    return this.routeConnection;
  }

  /** Runs one public operation: refused after close(), and awaited by close() before the sockets go. */
  private operation<T>(name: string, body: () => Promise<T>): Promise<T> {
    if (this.closing) {
      return Promise.reject(new WireGuardError(`${name}: the WireGuard instance is closed`, {
        code: 'ERR_JITGUARD_CLOSED', syscall: 'netlink', operation: name,
      }));
    }
    const running = (async () => body())();
    this.inFlight.add(running);
    const forget = () => this.inFlight.delete(running);
    running.then(forget, forget);
    return running;
  }

  private openSocket(protocol: number, operation: string): NetlinkTransport {
    try {
      return new NativeTransport(protocol, this.options.netns ?? '', this.replyTimeoutMs);
    } catch (error) {
      const e = error as { errno?: number; code?: string; syscall?: string };
      if (typeof e?.errno !== 'number') throw error;
      const code = e.code ?? errnoName(e.errno);
      const where = this.options.netns ? ` in network namespace ${this.options.netns}` : '';
      const hint = e.syscall === 'setns' && code === 'EPERM' ? ' (entering a namespace needs CAP_SYS_ADMIN)' : '';
      throw new WireGuardError(`${operation}: cannot open a netlink socket${where}: ${e.syscall} failed with ${code}${hint}`, {
        code, errno: e.errno, syscall: e.syscall ?? 'socket', operation,
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

  /**
   * Runs a dump until the kernel returns a consistent one (no NLM_F_DUMP_INTR), then decodes
   * it. The reply datagrams are zeroed afterwards whatever happens: a WireGuard dump carries
   * the private key and preshared keys.
   */
  private async dump<T>(
    connection: NetlinkConnection,
    request: () => Buffer,
    context: RequestContext,
    decode: (messages: NetlinkMessage[]) => T | Promise<T>,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const { messages, interrupted, datagrams } = await connection.request([request()], context);
      try {
        if (!interrupted) return await decode(messages);
      } catch (error) {
        throw error instanceof NetlinkDecodeError ? NetlinkDecodeError.inContext(error, context) : error;
      } finally {
        await wipeInSlices(datagrams);
      }
      if (attempt >= this.maxDumpAttempts) {
        const subject = context.interface === undefined ? context.operation : `${context.operation} ${context.interface}`;
        throw new WireGuardError(`${subject}: the kernel state changed during each of ${attempt} dump attempts; try again`, {
          code: 'EAGAIN', errno: 11, syscall: 'netlink', operation: context.operation, interface: context.interface,
        });
      }
    }
  }

  private async dumpDevice(name: string, operation: string, onPrivateKey?: (key: Buffer) => void, onPeers?: GetDeviceOptions['onPeers']): Promise<Device> {
    const family = await this.resolveFamily();
    const request = () => encodeGetDevice(family, name);
    let changesBefore = 0;
    const device = await this.dump(this.generic, request, { operation, interface: name }, (messages) => {
      // The kernel has answered: any call that changes the key from here on comes after it.
      changesBefore = this.ownKeyChanges;
      return decodeDeviceInSlices(messages, { onPrivateKey, onPeers });
    });
    if (this.ownKeyChanges === changesBefore) {
      this.ownPublicKeys.set(name, device.publicKey === null ? null : decodeKey(device.publicKey, 'publicKey'));
    }
    return device;
  }

  /**
   * Learns the interface's own public key, for the own-key check of a SET that may create
   * peers: from the head of a dump (one datagram, whatever the number of peers; the first
   * install of a fresh process used to dump the whole device for this, 13.9 s at 100,000
   * peers in the test VM) when the transport can read just that, else from a whole dump.
   */
  private async learnOwnKey(name: string, operation: string): Promise<void> {
    const family = await this.resolveFamily();
    const changesBefore = this.ownKeyChanges;
    const head = await this.generic.requestFirstReply(encodeGetDevice(family, name), { operation, interface: name });
    if (head === undefined) {
      await this.dumpDevice(name, operation);
      return;
    }
    try {
      const device = decodeDevice(head.messages);
      // A call that changed the key after this one was queued has noted the new key itself.
      if (this.ownKeyChanges === changesBefore) {
        this.ownPublicKeys.set(name, device.publicKey === null ? null : decodeKey(device.publicKey, 'publicKey'));
      }
    } catch (error) {
      throw error instanceof NetlinkDecodeError ? NetlinkDecodeError.inContext(error, { operation, interface: name }) : error;
    } finally {
      for (const datagram of head.datagrams) datagram.fill(0);
    }
  }

  /** A dump of `name` that also reads its private key (null when none is set). */
  private async dumpDeviceWithKey(name: string, operation: string, onPeers?: GetDeviceOptions['onPeers']): Promise<DeviceWithPrivateKey> {
    let privateKey: KeyObject | null = null;
    const device = await this.dumpDevice(name, operation, (bytes) => {
      if (bytes.length === KEY_LENGTH && bytes.some((b) => b !== 0)) privateKey = privateKeyObject(bytes);
    }, onPeers);
    return Object.assign(device, { privateKey });
  }

  /**
   * Reads an interface and all its peers, in one dump. The private key is returned only when
   * asked for (`{ privateKey: true }`), and then as an X25519 `KeyObject` (null when none is
   * set), read from the same dump; preshared keys never (a peer has `hasPresharedKey`). Both
   * are wiped from the reply buffers. A dump that races a concurrent change is retried.
   * `onPeers` takes the peers in batches instead (see `GetDeviceOptions`). Missing interface:
   * ENODEV.
   */
  getDevice(name: string): Promise<Device>;
  getDevice(name: string, options: GetDeviceOptions & { privateKey: true }): Promise<DeviceWithPrivateKey>;
  getDevice(name: string, options?: GetDeviceOptions): Promise<Device | DeviceWithPrivateKey>;
  getDevice(name: string, options?: GetDeviceOptions): Promise<Device | DeviceWithPrivateKey> {
    return this.operation('getDevice', async () => {
      const { privateKey, onPeers } = readGetDeviceOptions(options);
      const valid = validateInterfaceName(name);
      return privateKey ? this.dumpDeviceWithKey(valid, 'getDevice', onPeers) : this.dumpDevice(valid, 'getDevice', undefined, onPeers);
    });
  }

  /**
   * The interface's private key as an X25519 `KeyObject` (null when none is set): the same as
   * `(await getDevice(name, { privateKey: true })).privateKey`, one dump. A KeyObject keeps the
   * key out of ordinary JS buffers, and every reply buffer that held it is zeroed. Use
   * `crypto.diffieHellman` with it directly.
   */
  getPrivateKey(name: string): Promise<KeyObject | null> {
    return this.operation('getPrivateKey', async () => (await this.dumpDeviceWithKey(validateInterfaceName(name), 'getPrivateKey')).privateKey);
  }

  /**
   * Applies `config` to an existing interface, with the semantics documented on
   * {@link DeviceConfig}. Validation happens first and changes nothing when it fails. A large
   * config is split across messages; if the kernel rejects a later message, the error's
   * `progress` says exactly which peers were applied. A peer equal to the interface's own
   * public key is refused (the kernel would ignore it): when this instance does not know that
   * key yet (it has neither set the private key nor read the device), the first call that may
   * create peers reads it, from the first datagram of a dump only, whatever the peer count.
   */
  setDevice(name: string, config: DeviceConfig): Promise<void> {
    return this.operation('setDevice', () => this.applyConfig(name, config));
  }

  private async applyConfig(name: string, config: DeviceConfig): Promise<void> {
    validateInterfaceName(name);
    if (isLargeConfig(config)) return this.applyLargeConfig(name, config);
    // Everything is validated before anything is sent; only then, if some peer could be
    // created and the interface's own key is not known, is it read (once per instance and
    // interface, from the head of a dump), to refuse a peer the kernel would silently ignore.
    const normalized = validateConfig(config, this.ownPublicKeys.get(name));
    try {
      const ownKeyUnknown = normalized.privateKey === undefined && !this.ownPublicKeys.has(name);
      if (ownKeyUnknown && normalized.peers.some((peer) => !peer.remove && !peer.updateOnly)) {
        await this.learnOwnKey(name, 'setDevice');
        rejectOwnKeyPeer(normalized, this.ownPublicKeys.get(name) ?? null);
      }
      const family = await this.resolveFamily();
      const { messages, boundaries } = encodeSetDevice(family, name, normalized, this.maxMessageBytes);
      const progress = (completed: number) => progressAfter(boundaries, messages.length, completed);
      try {
        await this.generic.request(messages, { operation: 'setDevice', interface: name, progress, small: isSmallSet(normalized, messages.length) });
      } finally {
        for (const message of messages) message.fill(0);
      }
      this.noteOwnKey(name, normalized);
    } finally {
      wipeConfig(normalized);
    }
  }

  /**
   * A config of more than PIPELINE_MIN_PEERS peers: validated in slices of the event loop when
   * its turn on the connection comes, then sent as a pipeline (set-pipeline.ts), so that
   * neither its validation nor its encoding holds the event loop, and its messages never all
   * exist at once. Here the interface's own key, when needed and unknown, is read before the
   * config is validated (a read changes nothing), so that validation can run in the request's
   * own turn and the SET still reaches the kernel in call order.
   */
  private async applyLargeConfig(name: string, config: DeviceConfig): Promise<void> {
    if (config.privateKey === undefined && !this.ownPublicKeys.has(name) && mayCreatePeers(config)) {
      await this.learnOwnKey(name, 'setDevice');
    }
    const family = await this.resolveFamily();
    let normalized: NormalizedConfig | undefined;
    let source: SetMessageSource | undefined;
    try {
      await this.generic.requestPipelined(async () => {
        const clock = new SliceClock();
        normalized = await runInSlices(validateConfigSteps(config, this.ownPublicKeys.get(name), clock), clock);
        source = new SetMessageSource(family, name, normalized, this.maxMessageBytes);
        return source;
      }, { operation: 'setDevice', interface: name, progress: (completed) => source!.progress(completed) });
      this.noteOwnKey(name, normalized!);
    } finally {
      if (normalized) wipeConfig(normalized);
    }
  }

  /** After a successful SET that set or cleared the private key: the interface's public key is known. */
  private noteOwnKey(name: string, normalized: NormalizedConfig): void {
    if (normalized.privateKey === undefined) return;
    this.ownPublicKeys.set(name, normalized.privateKey === null ? null : derivePublicKey(normalized.privateKey));
    this.ownKeyChanges++;
  }

  /** Removes peers by public key. Keys that are not on the interface are ignored. */
  removePeers(name: string, publicKeys: KeyInput[]): Promise<void> {
    return this.operation('removePeers', async () => {
      if (!Array.isArray(publicKeys)) {
        throw new ValidationError('publicKeys', `expected an array of keys, got ${describe(publicKeys)}`);
      }
      await this.applyConfig(name, { peers: publicKeys.map((publicKey) => ({ publicKey, remove: true })) });
    });
  }

  /** Names of all WireGuard interfaces in this network namespace. */
  listDevices(): Promise<string[]> {
    return this.operation('listDevices', async () => {
      const links = await this.dump(this.route, encodeListLinks, { operation: 'listDevices' }, decodeLinks);
      return links.filter((link) => link.kind === WG_GENL_NAME).map((link) => link.name);
    });
  }

  /** Creates a WireGuard interface (down, unconfigured). EEXIST if the name is taken. */
  createDevice(name: string): Promise<void> {
    return this.operation('createDevice', async () => {
      validateInterfaceName(name);
      await this.route.request([encodeCreateLink(name, WG_GENL_NAME)], {
        operation: 'createDevice',
        interface: name,
        explain: { EOPNOTSUPP: 'this kernel cannot create WireGuard interfaces (is the wireguard module available?)' },
      });
      this.ownPublicKeys.set(name, null);
      this.ownKeyChanges++;
    });
  }

  /**
   * Deletes a WireGuard interface. Its peers are removed first, in one SET: the kernel tears
   * peers down far faster that way than one by one inside link deletion (measured ~70×).
   * Refuses (EOPNOTSUPP) to delete an interface that is not WireGuard.
   */
  deleteDevice(name: string): Promise<void> {
    return this.operation('deleteDevice', async () => {
      await this.applyConfig(name, { replacePeers: true });
      await this.route.request([encodeDeleteLink(name)], { operation: 'deleteDevice', interface: name });
      this.ownPublicKeys.delete(name);
      this.ownKeyChanges++;
    });
  }

  /**
   * Closes the sockets; resolves once they are closed (it never rejects, so it may be called
   * without `await`; calling it again returns the same Promise). Later calls fail with
   * ERR_JITGUARD_CLOSED. Calls already made finish first, except that a wait for an answer
   * the kernel has not sent ends at once with ECANCELED (a kernel that answers has answered
   * by then, so no real answer is cut off).
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    const connections = () => [this.genericConnection, this.routeConnection].filter((c) => c !== undefined);
    for (const connection of connections()) connection.cancelWaits();
    const settled = [...this.inFlight].map((p) => p.catch(() => undefined));
    this.closing = Promise.all(settled)
      .then(() => Promise.all(connections().map((c) => c.close())))
      .then(() => undefined, () => undefined);
    return this.closing;
  }
}

/** A GET_DEVICE dump request for one interface. */
function encodeGetDevice(family: number, name: string): Buffer {
  const writer = new MessageWriter(64);
  const start = beginGenlMessage(writer, family, WG_CMD_GET_DEVICE, WG_GENL_VERSION, NLM_F_REQUEST | NLM_F_DUMP);
  writer.attrString(WGDEVICE_A_IFNAME, name);
  endMessage(writer, start);
  return writer.take();
}

/** `getDevice`'s options: undefined, or an object with at most `privateKey` (a boolean) and `onPeers` (a function). */
function readGetDeviceOptions(options: unknown): { privateKey: boolean; onPeers: GetDeviceOptions['onPeers'] } {
  if (options === undefined) return { privateKey: false, onPeers: undefined };
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ValidationError('options', `expected an object such as { privateKey: true }, got ${describe(options)}`);
  }
  for (const name of Object.keys(options)) {
    if (name !== 'privateKey' && name !== 'onPeers') throw new ValidationError(`options.${name}`, 'unknown option (getDevice takes privateKey and onPeers)');
  }
  const { privateKey, onPeers } = options as GetDeviceOptions;
  if (privateKey !== undefined && typeof privateKey !== 'boolean') {
    throw new ValidationError('options.privateKey', `expected a boolean, got ${describe(privateKey)}`);
  }
  if (onPeers !== undefined && typeof onPeers !== 'function') {
    throw new ValidationError('options.onPeers', `expected a function, got ${describe(onPeers)}`);
  }
  return { privateKey: privateKey === true, onPeers };
}

/**
 * Whether some peer of a not yet validated config could be created (one that neither removes
 * nor only updates): it stops at the first such peer, so it costs next to nothing.
 */
function mayCreatePeers(config: DeviceConfig): boolean {
  for (const peer of config.peers ?? []) {
    const p = peer as { remove?: unknown; updateOnly?: unknown } | null;
    if (p === null || typeof p !== 'object' || (p.remove !== true && p.updateOnly !== true)) return true;
  }
  return false;
}

/** Whether a `setDevice` config is large enough for the pipeline (checked before validation, so only its peer count). */
function isLargeConfig(config: unknown): boolean {
  const peers = (config as { peers?: unknown } | null)?.peers;
  return Array.isArray(peers) && peers.length > PIPELINE_MIN_PEERS;
}

/** Peers a SET may create or update and still count as small (see `RequestContext.small`). */
const SMALL_SET_PEERS = 16;

/**
 * A SET whose kernel work is short enough to do on the event loop: one message, a few peers,
 * no removal (each waits for an RCU grace period inside sendmsg), no replacement of all peers,
 * no new private key (it recomputes a DH for every peer on the interface).
 */
function isSmallSet(config: NormalizedConfig, messages: number): boolean {
  return messages === 1 && config.privateKey === undefined && !config.replacePeers &&
    config.peers.length <= SMALL_SET_PEERS && config.peers.every((peer) => !peer.remove);
}

/**
 * Zeroes reply datagrams, a few milliseconds at a time: a dump of 10^5 peers is ~17 MB, whose
 * zeroing alone held the test VM's event loop for ~100 ms. The secrets in them (private and
 * preshared keys) were zeroed already as the decoder met them; this is the rest.
 */
async function wipeInSlices(datagrams: Buffer[]): Promise<void> {
  const clock = new SliceClock();
  for (const datagram of datagrams) {
    datagram.fill(0);
    if (clock.due()) await clock.pause();
  }
}
