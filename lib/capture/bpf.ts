/**
 * Classic BPF (cBPF) as the Linux kernel takes it in SO_ATTACH_FILTER: an array of
 * `struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }`, 8 bytes each, host byte order.
 *
 * This module has the opcode constants, a small assembler with symbolic jump labels, the
 * binary encoding and a disassembler in the style of `tcpdump -d`, so that a program can be
 * built, inspected, replaced and compared. References: the kernel's
 * Documentation/networking/filter.rst and include/uapi/linux/{filter,bpf_common}.h.
 */
import { endianness } from 'node:os';
import { ValidationError } from '../errors.js';

// Instruction classes.
export const BPF_LD = 0x00;
export const BPF_LDX = 0x01;
export const BPF_ST = 0x02;
export const BPF_STX = 0x03;
export const BPF_ALU = 0x04;
export const BPF_JMP = 0x05;
export const BPF_RET = 0x06;
export const BPF_MISC = 0x07;
// Load sizes.
export const BPF_W = 0x00;
export const BPF_H = 0x08;
export const BPF_B = 0x10;
// Load modes.
export const BPF_IMM = 0x00;
export const BPF_ABS = 0x20;
export const BPF_IND = 0x40;
export const BPF_MEM = 0x60;
export const BPF_LEN = 0x80;
export const BPF_MSH = 0xa0;
// ALU operations.
export const BPF_ADD = 0x00;
export const BPF_SUB = 0x10;
export const BPF_MUL = 0x20;
export const BPF_DIV = 0x30;
export const BPF_OR = 0x40;
export const BPF_AND = 0x50;
export const BPF_LSH = 0x60;
export const BPF_RSH = 0x70;
export const BPF_NEG = 0x80;
export const BPF_MOD = 0x90;
export const BPF_XOR = 0xa0;
// Jumps.
export const BPF_JA = 0x00;
export const BPF_JEQ = 0x10;
export const BPF_JGT = 0x20;
export const BPF_JGE = 0x30;
export const BPF_JSET = 0x40;
// Operand source (ALU, JMP) and RET value.
export const BPF_K = 0x00;
export const BPF_X = 0x08;
export const BPF_A = 0x10;
// MISC.
export const BPF_TAX = 0x00;
export const BPF_TXA = 0x80;

/** Scratch memory words (M[0..15]). */
export const BPF_MEMWORDS = 16;
/** The kernel's limit on program length (BPF_MAXINSNS). */
export const BPF_MAXINSNS = 4096;

/**
 * Negative load offsets (linux/filter.h), as u32. A load at SKF_NET_OFF + n reads byte n of the
 * network header, at SKF_LL_OFF + n byte n of the link-layer header, whatever the socket type
 * puts at offset 0. For the capture's SOCK_DGRAM packet socket the network header *is* offset 0.
 */
export const SKF_NET_OFF = 0xfff00000; // -0x100000
export const SKF_LL_OFF = 0xffe00000; // -0x200000

/**
 * Ancillary loads: `ld [SKF_AD_OFF + SKF_AD_*]` (absolute loads only) read socket-buffer fields,
 * not packet bytes. These are all the kernel accepts (net/core/filter.c, bpf_anc_helper); any
 * other offset at or above SKF_AD_OFF makes SO_ATTACH_FILTER fail with EINVAL.
 */
export const SKF_AD_OFF = 0xfffff000; // -0x1000 as u32
export const SKF_AD_PROTOCOL = 0; // skb->protocol, host order (the ethertype: 0x0800, 0x86dd)
export const SKF_AD_PKTTYPE = 4; // skb->pkt_type (PACKET_HOST = 0, ...)
export const SKF_AD_IFINDEX = 8; // skb->dev->ifindex
export const SKF_AD_NLATTR = 12; // netlink attribute search (netlink sockets)
export const SKF_AD_NLATTR_NEST = 16;
export const SKF_AD_MARK = 20; // skb->mark
export const SKF_AD_QUEUE = 24; // skb->queue_mapping
export const SKF_AD_HATYPE = 28; // skb->dev->type (ARPHRD_*)
export const SKF_AD_RXHASH = 32; // skb->hash
export const SKF_AD_CPU = 36; // the CPU running the filter
export const SKF_AD_ALU_XOR_X = 40; // A ^= X (an operation, not a field)
export const SKF_AD_VLAN_TAG = 44; // the VLAN TCI the stack took off the frame (PCP, DEI, VID)
export const SKF_AD_VLAN_TAG_PRESENT = 48; // 1 when the frame carried a VLAN tag, else 0
export const SKF_AD_PAY_OFFSET = 52; // transport payload offset (flow dissector)
export const SKF_AD_RANDOM = 56; // a random number
export const SKF_AD_VLAN_TPID = 60; // the tag's protocol (0x8100, 0x88a8)

/** Short names for the ancillary loads, as the kernel's bpf_dbg writes them. */
export const ANCILLARY_NAMES: Readonly<Record<number, string>> = Object.freeze({
  [SKF_AD_PROTOCOL]: 'proto', [SKF_AD_PKTTYPE]: 'type', [SKF_AD_IFINDEX]: 'ifidx', [SKF_AD_NLATTR]: 'nla',
  [SKF_AD_NLATTR_NEST]: 'nlan', [SKF_AD_MARK]: 'mark', [SKF_AD_QUEUE]: 'queue', [SKF_AD_HATYPE]: 'hatype',
  [SKF_AD_RXHASH]: 'rxhash', [SKF_AD_CPU]: 'cpu', [SKF_AD_ALU_XOR_X]: 'xor_x', [SKF_AD_VLAN_TAG]: 'vlan_tci',
  [SKF_AD_VLAN_TAG_PRESENT]: 'vlan_avail', [SKF_AD_PAY_OFFSET]: 'poff', [SKF_AD_RANDOM]: 'rand',
  [SKF_AD_VLAN_TPID]: 'vlan_tpid',
});

/** sockaddr_ll.sll_pkttype / skb->pkt_type values (linux/if_packet.h). */
export const PACKET_HOST = 0;
export const PACKET_BROADCAST = 1;
export const PACKET_MULTICAST = 2;
export const PACKET_OTHERHOST = 3;
export const PACKET_OUTGOING = 4;

/** One `struct sock_filter`. */
export interface BpfInstruction {
  /** u16 opcode: class | size | mode, or class | op | source. */
  readonly code: number;
  /** u8: instructions to skip when a conditional jump is taken. */
  readonly jt: number;
  /** u8: instructions to skip when it is not. */
  readonly jf: number;
  /** u32 operand. */
  readonly k: number;
}

/** A program: its instructions, their SO_ATTACH_FILTER encoding, and a readable listing. */
export interface BpfProgram {
  readonly instructions: readonly BpfInstruction[];
  /** The instructions as an array of struct sock_filter (8 bytes each, host byte order). */
  encode(): Buffer;
  /** A `tcpdump -d` style listing. */
  toString(): string;
}

const littleEndian = endianness() === 'LE';

/** Checks the shape of every instruction (field ranges, length 1..4096), as the boundary needs. */
export function validateInstructions(instructions: unknown, path = 'filter'): readonly BpfInstruction[] {
  if (!Array.isArray(instructions)) throw new ValidationError(path, 'must be an array of BPF instructions');
  if (instructions.length === 0 || instructions.length > BPF_MAXINSNS) {
    throw new ValidationError(path, `must have 1..${BPF_MAXINSNS} instructions (has ${instructions.length})`);
  }
  return instructions.map((insn: unknown, i) => {
    const at = `${path}[${i}]`;
    if (typeof insn !== 'object' || insn === null) throw new ValidationError(at, 'must be { code, jt, jf, k }');
    const { code, jt, jf, k } = insn as Record<string, unknown>;
    const field = (value: unknown, name: string, max: number): number => {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
        throw new ValidationError(`${at}.${name}`, `must be an integer 0..${max}`);
      }
      return value;
    };
    return { code: field(code, 'code', 0xffff), jt: field(jt, 'jt', 0xff), jf: field(jf, 'jf', 0xff), k: field(k, 'k', 0xffffffff) };
  });
}

/** Encodes instructions as struct sock_filter[] in host byte order. */
export function encodeInstructions(instructions: readonly BpfInstruction[]): Buffer {
  const buffer = Buffer.alloc(instructions.length * 8);
  instructions.forEach((insn, i) => {
    const at = i * 8;
    if (littleEndian) {
      buffer.writeUInt16LE(insn.code, at);
      buffer.writeUInt32LE(insn.k >>> 0, at + 4);
    } else {
      buffer.writeUInt16BE(insn.code, at);
      buffer.writeUInt32BE(insn.k >>> 0, at + 4);
    }
    buffer.writeUInt8(insn.jt, at + 2);
    buffer.writeUInt8(insn.jf, at + 3);
  });
  return buffer;
}

/** Decodes struct sock_filter[] (host byte order) back into instructions. */
export function decodeInstructions(bytes: Uint8Array): BpfInstruction[] {
  if (bytes.length % 8 !== 0) throw new ValidationError('filter', 'length must be a multiple of 8 bytes');
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: BpfInstruction[] = [];
  for (let at = 0; at < buffer.length; at += 8) {
    out.push({
      code: littleEndian ? buffer.readUInt16LE(at) : buffer.readUInt16BE(at),
      jt: buffer.readUInt8(at + 2),
      jf: buffer.readUInt8(at + 3),
      k: littleEndian ? buffer.readUInt32LE(at + 4) : buffer.readUInt32BE(at + 4),
    });
  }
  return out;
}

/** Wraps (and freezes) instructions as a {@link BpfProgram}. */
export function bpfProgram(instructions: readonly BpfInstruction[]): BpfProgram {
  const frozen = Object.freeze(validateInstructions(instructions).map((insn) => Object.freeze({ ...insn })));
  return {
    instructions: frozen,
    encode: () => encodeInstructions(frozen),
    toString: () => disassemble(frozen),
  };
}

const hex = (n: number) => `0x${(n >>> 0).toString(16)}`;

/** A load offset, naming the negative bases. */
function offsetText(k: number): string {
  if (k >= SKF_AD_OFF) return `${k}`;
  if (k >= SKF_NET_OFF) return `net+${k - SKF_NET_OFF}`;
  if (k >= SKF_LL_OFF) return `ll+${k - SKF_LL_OFF}`;
  return `${k}`;
}

function operand(insn: BpfInstruction): string {
  const size = insn.code & 0x18;
  const width = size === BPF_B ? 'b' : size === BPF_H ? 'h' : '';
  switch (insn.code & 0xe0) {
    case BPF_IMM:
      return `#${hex(insn.k)}`;
    case BPF_ABS:
      if (insn.k >= SKF_AD_OFF) return `#${ANCILLARY_NAMES[insn.k - SKF_AD_OFF] ?? `ancillary+${insn.k - SKF_AD_OFF}`}`;
      return `[${offsetText(insn.k)}]`;
    case BPF_IND:
      return `[x + ${offsetText(insn.k)}]`;
    case BPF_MEM:
      return `M[${insn.k}]`;
    case BPF_LEN:
      return '#pktlen';
    case BPF_MSH:
      return `4*([${insn.k}]&0xf)`;
    default:
      return `?${width}`;
  }
}

/** One instruction as text, `tcpdump -d` style (`(003) jeq #0x800 jt 4 jf 12`). */
export function formatInstruction(insn: BpfInstruction, pc: number): string {
  const cls = insn.code & 0x07;
  const size = insn.code & 0x18;
  const width = size === BPF_B ? 'b' : size === BPF_H ? 'h' : '';
  const src = (insn.code & BPF_X) !== 0 ? 'x' : `#${hex(insn.k)}`;
  let text: string;
  switch (cls) {
    case BPF_LD:
      text = `ld${width} ${operand(insn)}`;
      break;
    case BPF_LDX:
      text = (insn.code & 0xe0) === BPF_MSH ? `ldxb ${operand(insn)}` : `ldx ${operand(insn)}`;
      break;
    case BPF_ST:
      text = `st M[${insn.k}]`;
      break;
    case BPF_STX:
      text = `stx M[${insn.k}]`;
      break;
    case BPF_ALU: {
      const names: Record<number, string> = {
        [BPF_ADD]: 'add', [BPF_SUB]: 'sub', [BPF_MUL]: 'mul', [BPF_DIV]: 'div', [BPF_OR]: 'or',
        [BPF_AND]: 'and', [BPF_LSH]: 'lsh', [BPF_RSH]: 'rsh', [BPF_NEG]: 'neg', [BPF_MOD]: 'mod', [BPF_XOR]: 'xor',
      };
      const op = insn.code & 0xf0;
      text = op === BPF_NEG ? 'neg' : `${names[op] ?? '?alu'} ${src}`;
      break;
    }
    case BPF_JMP: {
      const op = insn.code & 0xf0;
      if (op === BPF_JA) {
        text = `ja ${pc + 1 + insn.k}`;
      } else {
        const names: Record<number, string> = { [BPF_JEQ]: 'jeq', [BPF_JGT]: 'jgt', [BPF_JGE]: 'jge', [BPF_JSET]: 'jset' };
        text = `${names[op] ?? '?jmp'} ${src} jt ${pc + 1 + insn.jt} jf ${pc + 1 + insn.jf}`;
      }
      break;
    }
    case BPF_RET:
      text = (insn.code & 0x18) === BPF_A ? 'ret a' : (insn.code & 0x18) === BPF_X ? 'ret x' : `ret #${insn.k}`;
      break;
    default:
      text = (insn.code & 0xf8) === BPF_TXA ? 'txa' : 'tax';
  }
  return `(${String(pc).padStart(3, '0')}) ${text}`;
}

/** The whole program as text, one instruction per line. */
export function disassemble(instructions: readonly BpfInstruction[]): string {
  return instructions.map((insn, pc) => formatInstruction(insn, pc)).join('\n');
}

type Target = string | number; // a label, or a relative skip count

interface Pending {
  code: number;
  k: number;
  jt: Target;
  jf: Target;
}

/**
 * A tiny assembler: instructions in order, with jump targets given as labels that are resolved
 * to the 8-bit relative offsets cBPF uses (forward only, as the kernel requires).
 */
export class BpfAssembler {
  private readonly pending: Pending[] = [];
  private readonly labels = new Map<string, number>();

  /** Any non-jump instruction. */
  op(code: number, k = 0): this {
    this.pending.push({ code, k: k >>> 0, jt: 0, jf: 0 });
    return this;
  }

  /** A conditional jump: `jt`/`jf` are labels, or 0 for the next instruction. */
  jump(code: number, k: number, jt: Target, jf: Target): this {
    this.pending.push({ code, k: k >>> 0, jt, jf });
    return this;
  }

  /** An unconditional jump to a label. */
  ja(label: string): this {
    this.pending.push({ code: BPF_JMP | BPF_JA, k: 0, jt: label, jf: 0 });
    return this;
  }

  label(name: string): this {
    if (this.labels.has(name)) throw new Error(`BPF assembler: label ${name} defined twice`);
    this.labels.set(name, this.pending.length);
    return this;
  }

  assemble(): BpfInstruction[] {
    return this.pending.map((p, pc) => {
      const offset = (target: Target): number => {
        if (typeof target === 'number') return target;
        const at = this.labels.get(target);
        if (at === undefined) throw new Error(`BPF assembler: undefined label ${target}`);
        const skip = at - pc - 1;
        if (skip < 0) throw new Error(`BPF assembler: backward jump to ${target} at ${pc}`);
        return skip;
      };
      if (p.code === (BPF_JMP | BPF_JA)) return { code: p.code, jt: 0, jf: 0, k: offset(p.jt) };
      const jt = offset(p.jt);
      const jf = offset(p.jf);
      if (jt > 0xff || jf > 0xff) throw new Error(`BPF assembler: jump at ${pc} is longer than 255 instructions`);
      return { code: p.code, jt, jf, k: p.k };
    });
  }
}
