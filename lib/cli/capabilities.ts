/**
 * The capabilities the daemon needs, checked before it touches the kernel so a missing one is
 * a one-line refusal naming it rather than an EPERM from deep inside a netlink call.
 *
 * Read from `CapEff` in /proc/self/status (what the kernel checks), not from the user id: the
 * daemon is meant to run as an ordinary user holding exactly these two (systemd's
 * `AmbientCapabilities=`), and root without them (a container's dropped set) must be refused too.
 */
import { readFileSync } from 'node:fs';
import { Refusal } from './refusal.js';

/** Bit numbers from linux/capability.h. */
export const CAPABILITIES = {
  CAP_NET_ADMIN: 12,
  CAP_NET_RAW: 13,
  CAP_NET_BIND_SERVICE: 10,
} as const;

export type CapabilityName = keyof typeof CAPABILITIES;

const WHY: Record<CapabilityName, string> = {
  CAP_NET_ADMIN: 'to read and configure the WireGuard interface over netlink',
  CAP_NET_RAW: 'to capture handshake initiations (AF_PACKET)',
  CAP_NET_BIND_SERVICE: 'to listen on a port below 1024',
};

/** The effective set from a /proc/<pid>/status text; null if it has no CapEff line. */
export function effectiveCapabilities(statusText: string): bigint | null {
  const match = /^CapEff:\s*([0-9a-fA-F]{1,16})\s*$/m.exec(statusText);
  return match ? BigInt(`0x${match[1]}`) : null;
}

export function hasCapability(effective: bigint, name: CapabilityName): boolean {
  return ((effective >> BigInt(CAPABILITIES[name])) & 1n) === 1n;
}

/**
 * Throws a `Refusal` naming the first capability of `required` the process lacks.
 * `statusText` defaults to /proc/self/status (tests pass their own).
 */
export function requireCapabilities(required: readonly CapabilityName[], statusText?: string): void {
  const text = statusText ?? readFileSync('/proc/self/status', 'utf8');
  const effective = effectiveCapabilities(text);
  if (effective === null) throw new Refusal('cannot read the effective capabilities (no CapEff in /proc/self/status)');
  for (const name of required) {
    if (!hasCapability(effective, name)) {
      throw new Refusal(`missing capability ${name} (needed ${WHY[name]}); run as root or grant it, e.g. systemd AmbientCapabilities=${required.join(' ')}`);
    }
  }
}
