/**
 * Attribute policies for decoding replies: for each attribute type of a nest, the length its
 * value must have, as the kernel's `nla_policy` for that attribute says (and as wgctrl-go's
 * decoders check). A decoder walks attributes through `policed()`, so every value it reads
 * has the length it reads; anything else is a {@link NetlinkDecodeError}, never a RangeError.
 *
 * Types a policy does not name are passed through unchecked: newer kernels add attributes,
 * and decoders ignore the ones they do not know.
 */
import { NetlinkDecodeError, attributes } from './attributes.js';
import type { Attribute } from './attributes.js';

export type AttributeRule =
  /** A fixed-size integer: exactly 1, 2, 4 or 8 bytes. */
  | { kind: 'u8' | 'u16' | 'u32' | 'u64' }
  /** Bytes: exactly `length`, or between `min` and `max`. */
  | { kind: 'binary'; length?: number; min?: number; max?: number }
  /** A NUL-terminated string of at most `max` bytes, its NUL included. */
  | { kind: 'string'; max: number }
  /** Nested attributes, checked by the decoder of the nest with its own policy. */
  | { kind: 'nested' };

export interface AttributePolicy {
  /** Names the nest in error messages: 'WGDEVICE_A', 'WGPEER_A', … */
  readonly name: string;
  readonly rules: Readonly<Record<number, AttributeRule>>;
}

const INTEGER_LENGTH = { u8: 1, u16: 2, u32: 4, u64: 8 } as const;

function problem(rule: AttributeRule, length: number): string | undefined {
  switch (rule.kind) {
    case 'u8':
    case 'u16':
    case 'u32':
    case 'u64': {
      const expected = INTEGER_LENGTH[rule.kind];
      return length === expected ? undefined : `expected ${expected} bytes (${rule.kind})`;
    }
    case 'binary':
      if (rule.length !== undefined && length !== rule.length) return `expected ${rule.length} bytes`;
      if (rule.min !== undefined && length < rule.min) return `expected at least ${rule.min} bytes`;
      if (rule.max !== undefined && length > rule.max) return `expected at most ${rule.max} bytes`;
      return undefined;
    case 'string':
      if (length === 0 || length > rule.max) return `expected a string of 1 to ${rule.max} bytes`;
      return undefined;
    case 'nested':
      return undefined;
  }
}

/**
 * Checks one attribute's value length against the policy (a NetlinkDecodeError if it breaks
 * it). For decoders that walk attributes by offset, where a value view per attribute would
 * cost more than the decoding (a dump of 10^5 peers has ~10^6 attributes).
 */
export function checkAttribute(policy: AttributePolicy, type: number, length: number): void {
  const rule = policy.rules[type];
  if (rule === undefined) return;
  const wrong = problem(rule, length);
  if (wrong !== undefined) throw new NetlinkDecodeError(`${policy.name} attribute ${type} has ${length} bytes; ${wrong}`);
}

/** Like `attributes()`, but every attribute the policy names is checked first. */
export function* policed(data: Buffer, policy: AttributePolicy): Generator<Attribute> {
  for (const attr of attributes(data)) {
    checkAttribute(policy, attr.type, attr.value.length);
    yield attr;
  }
}
