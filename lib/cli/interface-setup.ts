/**
 * Makes sure the gateway's interface is there before the gateway starts, or refuses:
 *
 * - a WireGuard interface of that name exists: used as it is (never reconfigured), but it must
 *   have a private key and a listen port;
 * - a link of that name exists but is not WireGuard: refused;
 * - nothing of that name exists: created, given the private key and listen port, and brought
 *   up — only with `--private-key-file` and `--listen-port`; refused otherwise.
 *
 * The private key is read from its file into bytes that are wiped once the kernel has them;
 * it is never logged, and no message here names more than the file's path.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { promisify } from 'node:util';
import { decodeKey } from '../keys.js';
import type { WireGuard } from '../wireguard/client.js';
import type { Device } from '../wireguard/types.js';
import { codeOf, messageOf, Refusal } from './refusal.js';
import type { GatewaySettings } from './settings.js';

export type SetupKernel = Pick<WireGuard, 'listDevices' | 'createDevice' | 'setDevice' | 'getDevice'>;

export interface InterfaceSetupDeps {
  /** Whether a link of this name exists at all (default: /sys/class/net/NAME). */
  linkExists?: (name: string) => boolean;
  /** Sets the link up (default: `ip link set dev NAME up`). */
  setLinkUp?: (name: string) => Promise<void>;
}

export type InterfaceSetup = { created: false; device: Device } | { created: true; device: Device };

export async function prepareInterface(kernel: SetupKernel, settings: Pick<GatewaySettings, 'interface' | 'create'>, deps: InterfaceSetupDeps = {}): Promise<InterfaceSetup> {
  const name = settings.interface;
  const linkExists = deps.linkExists ?? ((n: string) => existsSync(`/sys/class/net/${n}`));
  const devices = await kernelCall(() => kernel.listDevices(), 'list the WireGuard interfaces');
  if (devices.includes(name)) {
    const device = await kernelCall(() => kernel.getDevice(name), `read interface ${name}`);
    if (device.publicKey === null) {
      throw new Refusal(`interface ${name} has no private key (set one with wg set ${name} private-key FILE; the daemon configures only an interface it creates)`);
    }
    if (device.listenPort === 0) throw new Refusal(`interface ${name} has no listen port (set one with wg set ${name} listen-port PORT)`);
    return { created: false, device };
  }
  if (linkExists(name)) throw new Refusal(`interface ${name} is not a WireGuard interface`);
  if (settings.create === null) {
    throw new Refusal(`interface ${name} does not exist (create it, or give --private-key-file and --listen-port to have the daemon create it)`);
  }
  const privateKey = readPrivateKey(settings.create.privateKeyFile);
  try {
    await kernelCall(() => kernel.createDevice(name), `create interface ${name}`);
    await kernelCall(() => kernel.setDevice(name, { privateKey, listenPort: settings.create!.listenPort }), `configure interface ${name}`);
  } finally {
    privateKey.fill(0);
  }
  await (deps.setLinkUp ?? ipLinkUp)(name);
  const device = await kernelCall(() => kernel.getDevice(name), `read interface ${name}`);
  return { created: true, device };
}

/** The key file as wg(8) writes it: one base64 key, surrounding white space ignored. */
export function readPrivateKey(path: string): Uint8Array {
  let bytes: Buffer;
  try {
    if (statSync(path).size > 1024) throw new Refusal(`--private-key-file ${path}: expected one base64 key (as wg genkey writes it)`);
    bytes = readFileSync(path);
  } catch (error) {
    if (error instanceof Refusal) throw error;
    throw new Refusal(`--private-key-file ${path}: cannot read it (${codeOf(error) ?? messageOf(error)})`);
  }
  try {
    const text = bytes.toString('latin1').trim();
    return decodeKey(text, '--private-key-file');
  } catch {
    // decodeKey's message says nothing of the content either, but this one names the file.
    throw new Refusal(`--private-key-file ${path}: no private key in it (expected one base64 key, as wg genkey writes it)`);
  } finally {
    bytes.fill(0);
  }
}

async function kernelCall<T>(call: () => Promise<T>, what: string): Promise<T> {
  try {
    return await call();
  } catch (error) {
    const code = codeOf(error);
    if (code === 'EPERM' || code === 'EACCES') throw new Refusal(`cannot ${what}: missing capability CAP_NET_ADMIN (${code})`);
    const operation = (error as { operation?: unknown }).operation;
    if (code === 'EOPNOTSUPP' || (code === 'ENOENT' && operation === 'resolveFamily')) {
      throw new Refusal(`cannot ${what}: this kernel has no WireGuard (${messageOf(error)})`);
    }
    throw error;
  }
}

async function ipLinkUp(name: string): Promise<void> {
  try {
    await promisify(execFile)('ip', ['link', 'set', 'dev', name, 'up']);
  } catch (error) {
    throw new Refusal(`cannot bring interface ${name} up with ip(8) (${codeOf(error) ?? messageOf(error).split('\n')[0]}); bring it up yourself`);
  }
}
