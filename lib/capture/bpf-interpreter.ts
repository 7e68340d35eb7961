/**
 * A small classic-BPF interpreter with the kernel's semantics, to run a capture filter over
 * recorded packets without a kernel: in the unit tests, and for a user who replaces the
 * filter and wants to check it before attaching it.
 *
 * {@link checkProgram} refuses exactly what the kernel's SO_ATTACH_FILTER checker refuses
 * (net/core/filter.c: bpf_check_basics_ok, bpf_check_classic, check_load_and_stores), before
 * anything runs; the privileged tier compares it with a real socket on random programs.
 *
 * Semantics followed when running (net/core/filter.c converts classic programs to eBPF):
 * - A and X start at 0; arithmetic is unsigned 32-bit; a shift by X uses the low 5 bits of X
 *   (a shift by a constant of 32 or more is refused up front).
 * - A packet load outside the packet ends the program with 0 (the packet is dropped), as does
 *   a division or modulo by X = 0.
 * - Offsets are signed 32-bit: a load at SKF_NET_OFF + n reads byte n of the network header,
 *   which is offset 0 of `packet` (a SOCK_DGRAM packet socket, the capture's); SKF_LL_OFF + n
 *   reads byte n of `context.linkHeader`; any other negative offset fails (0).
 * - `ld [SKF_AD_OFF + n]` reads ancillary data supplied by the caller (protocol, pkttype,
 *   ifindex, VLAN tag, ...), as the kernel reads it from the socket buffer. The ones that
 *   depend on the running kernel (random, cpu, netlink attributes, payload offset) are refused
 *   before running: the kernel accepts them, this interpreter cannot reproduce them.
 */
import {
  BPF_ABS, BPF_ADD, BPF_ALU, BPF_AND, BPF_B, BPF_DIV, BPF_H, BPF_IMM, BPF_IND, BPF_JA, BPF_JEQ,
  BPF_JGE, BPF_JGT, BPF_JMP, BPF_JSET, BPF_K, BPF_LD, BPF_LDX, BPF_LEN, BPF_LSH, BPF_MAXINSNS,
  BPF_MEM, BPF_MEMWORDS, BPF_MISC, BPF_MOD, BPF_MSH, BPF_MUL, BPF_NEG, BPF_OR, BPF_RET, BPF_RSH,
  BPF_ST, BPF_STX, BPF_SUB, BPF_TAX, BPF_TXA, BPF_W, BPF_X, BPF_XOR, BPF_A, type BpfInstruction,
  type BpfProgram, SKF_AD_ALU_XOR_X, SKF_AD_CPU, SKF_AD_HATYPE, SKF_AD_IFINDEX, SKF_AD_MARK,
  SKF_AD_NLATTR, SKF_AD_NLATTR_NEST, SKF_AD_OFF, SKF_AD_PAY_OFFSET, SKF_AD_PKTTYPE,
  SKF_AD_PROTOCOL, SKF_AD_QUEUE, SKF_AD_RANDOM, SKF_AD_RXHASH, SKF_AD_VLAN_TAG,
  SKF_AD_VLAN_TAG_PRESENT, SKF_AD_VLAN_TPID, SKF_LL_OFF, SKF_NET_OFF, ANCILLARY_NAMES,
} from './bpf.js';

/** What the kernel would know about the packet besides its bytes. Absent fields read as 0. */
export interface BpfContext {
  /** skb->protocol, the ethertype in host order: 0x0800 IPv4, 0x86dd IPv6. */
  protocol: number;
  /** skb->pkt_type: PACKET_HOST (0), PACKET_BROADCAST (1), ... PACKET_OUTGOING (4). */
  pktType?: number;
  /** The receiving interface's index. */
  ifindex?: number;
  /**
   * The VLAN TCI (priority, DEI, VLAN id) of a frame that carried a VLAN tag: the stack takes
   * the tag off before the filter runs. Undefined for an untagged frame (SKF_AD_VLAN_TAG_PRESENT
   * reads 1 exactly when this is given).
   */
  vlanTag?: number;
  /** The tag's protocol (0x8100 for 802.1Q, 0x88a8 for 802.1ad); default 0x8100 when vlanTag is given. */
  vlanProtocol?: number;
  /** skb->mark. */
  mark?: number;
  /** skb->queue_mapping. */
  queue?: number;
  /** skb->dev->type (ARPHRD_ETHER = 1, ...). */
  hardwareType?: number;
  /** skb->hash. */
  hash?: number;
  /** The link-layer header, for loads at SKF_LL_OFF + n (none when absent: such loads fail). */
  linkHeader?: Uint8Array;
}

export class BpfProgramError extends Error {
  override name = 'BpfProgramError';
  constructor(readonly pc: number, problem: string) {
    super(`instruction ${pc}: ${problem}`);
  }
}

/** Every opcode the kernel accepts (chk_code_allowed): the exact 16-bit values, nothing else. */
const ALLOWED_CODES: ReadonlySet<number> = new Set([
  ...[BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_MOD, BPF_AND, BPF_OR, BPF_XOR, BPF_LSH, BPF_RSH]
    .flatMap((op) => [BPF_ALU | op | BPF_K, BPF_ALU | op | BPF_X]),
  BPF_ALU | BPF_NEG,
  BPF_LD | BPF_W | BPF_ABS, BPF_LD | BPF_H | BPF_ABS, BPF_LD | BPF_B | BPF_ABS,
  BPF_LD | BPF_W | BPF_LEN,
  BPF_LD | BPF_W | BPF_IND, BPF_LD | BPF_H | BPF_IND, BPF_LD | BPF_B | BPF_IND,
  BPF_LD | BPF_IMM, BPF_LD | BPF_MEM,
  BPF_LDX | BPF_W | BPF_LEN, BPF_LDX | BPF_B | BPF_MSH, BPF_LDX | BPF_IMM, BPF_LDX | BPF_MEM,
  BPF_ST, BPF_STX,
  BPF_MISC | BPF_TAX, BPF_MISC | BPF_TXA,
  BPF_RET | BPF_K, BPF_RET | BPF_A,
  BPF_JMP | BPF_JA,
  ...[BPF_JEQ, BPF_JGE, BPF_JGT, BPF_JSET].flatMap((op) => [BPF_JMP | op | BPF_K, BPF_JMP | op | BPF_X]),
]);

const KERNEL_ANCILLARY: ReadonlySet<number> = new Set([
  SKF_AD_PROTOCOL, SKF_AD_PKTTYPE, SKF_AD_IFINDEX, SKF_AD_NLATTR, SKF_AD_NLATTR_NEST, SKF_AD_MARK,
  SKF_AD_QUEUE, SKF_AD_HATYPE, SKF_AD_RXHASH, SKF_AD_CPU, SKF_AD_ALU_XOR_X, SKF_AD_VLAN_TAG,
  SKF_AD_VLAN_TAG_PRESENT, SKF_AD_PAY_OFFSET, SKF_AD_RANDOM, SKF_AD_VLAN_TPID,
]);

/** Ancillary loads whose value depends on the running kernel, not on the packet and its context. */
const NOT_REPRODUCIBLE: ReadonlySet<number> = new Set([SKF_AD_NLATTR, SKF_AD_NLATTR_NEST, SKF_AD_CPU, SKF_AD_PAY_OFFSET, SKF_AD_RANDOM]);

const isConditionalJump = (code: number) => (code & 0x07) === BPF_JMP && code !== (BPF_JMP | BPF_JA);
const isAbsoluteLoad = (code: number) => code === (BPF_LD | BPF_W | BPF_ABS) || code === (BPF_LD | BPF_H | BPF_ABS) || code === (BPF_LD | BPF_B | BPF_ABS);

/**
 * Refuses, with the instruction and the reason, every program the kernel's SO_ATTACH_FILTER
 * refuses with EINVAL, and accepts every other one.
 */
export function checkProgram(instructions: readonly BpfInstruction[]): void {
  const length = instructions.length;
  if (length === 0) throw new BpfProgramError(0, 'empty program');
  if (length > BPF_MAXINSNS) throw new BpfProgramError(BPF_MAXINSNS, `more than ${BPF_MAXINSNS} instructions`);
  instructions.forEach((insn, pc) => {
    const { code, k } = insn;
    if (!ALLOWED_CODES.has(code)) throw new BpfProgramError(pc, `opcode 0x${code.toString(16)} is not a classic-BPF instruction the kernel accepts`);
    if ((code === (BPF_ALU | BPF_DIV | BPF_K) || code === (BPF_ALU | BPF_MOD | BPF_K)) && k === 0) {
      throw new BpfProgramError(pc, 'division by constant 0');
    }
    if ((code === (BPF_ALU | BPF_LSH | BPF_K) || code === (BPF_ALU | BPF_RSH | BPF_K)) && k >= 32) {
      throw new BpfProgramError(pc, `shift by ${k} (a constant shift must be 0..31)`);
    }
    if ((code === (BPF_LD | BPF_MEM) || code === (BPF_LDX | BPF_MEM) || code === BPF_ST || code === BPF_STX) && k >= BPF_MEMWORDS) {
      throw new BpfProgramError(pc, `scratch word M[${k}] does not exist`);
    }
    if (code === (BPF_JMP | BPF_JA) && k >= length - pc - 1) throw new BpfProgramError(pc, 'jump out of the program');
    if (isConditionalJump(code) && (pc + 1 + insn.jt >= length || pc + 1 + insn.jf >= length)) {
      throw new BpfProgramError(pc, 'jump out of the program');
    }
    if (isAbsoluteLoad(code) && k >= SKF_AD_OFF && !KERNEL_ANCILLARY.has(k - SKF_AD_OFF)) {
      throw new BpfProgramError(pc, `ancillary load SKF_AD_OFF+${k - SKF_AD_OFF} does not exist`);
    }
  });
  const last = instructions[length - 1]!.code;
  if (last !== (BPF_RET | BPF_K) && last !== (BPF_RET | BPF_A)) throw new BpfProgramError(length - 1, 'program must end in ret');
  checkScratchInitialised(instructions);
}

/**
 * The kernel's check_load_and_stores: a load of M[k] is refused unless every path to it
 * stores M[k] first. One pass in program order (jumps go forward only): the set of words
 * known to be written flows into the next instruction and into each jump target, and a target
 * keeps only what every path into it has written.
 */
function checkScratchInitialised(instructions: readonly BpfInstruction[]): void {
  const ALL = 0xffff;
  const masks = new Array<number>(instructions.length).fill(ALL);
  let valid = 0;
  instructions.forEach(({ code, k, jt, jf }, pc) => {
    valid &= masks[pc]!;
    if (code === BPF_ST || code === BPF_STX) {
      valid |= 1 << k;
    } else if (code === (BPF_LD | BPF_MEM) || code === (BPF_LDX | BPF_MEM)) {
      if ((valid & (1 << k)) === 0) throw new BpfProgramError(pc, `M[${k}] is loaded before it is stored on some path`);
    } else if (code === (BPF_JMP | BPF_JA)) {
      masks[pc + 1 + k] = masks[pc + 1 + k]! & valid;
      valid = ALL;
    } else if (isConditionalJump(code)) {
      masks[pc + 1 + jt] = masks[pc + 1 + jt]! & valid;
      masks[pc + 1 + jf] = masks[pc + 1 + jf]! & valid;
      valid = ALL;
    }
    // As in the kernel, a ret does not reset `valid`: the instruction after it is only
    // reachable by jumps, and its mask already holds what they carry; `valid` after a ret
    // adds nothing the kernel would not also assume.
  });
}

/** Refuses, before running, what this interpreter cannot reproduce (the kernel would accept it). */
function checkReproducible(instructions: readonly BpfInstruction[], context: BpfContext): void {
  instructions.forEach(({ code, k }, pc) => {
    if (!isAbsoluteLoad(code)) return;
    if (k >= SKF_AD_OFF && NOT_REPRODUCIBLE.has(k - SKF_AD_OFF)) {
      throw new BpfProgramError(pc, `ancillary load #${ANCILLARY_NAMES[k - SKF_AD_OFF]!} depends on the running kernel; this interpreter cannot run it`);
    }
    if (k >= SKF_LL_OFF && k < SKF_NET_OFF && context.linkHeader === undefined) {
      throw new BpfProgramError(pc, 'a link-layer load (SKF_LL_OFF) needs context.linkHeader');
    }
  });
}

function ancillary(offset: number, context: BpfContext, x: number, a: number): number {
  switch (offset) {
    case SKF_AD_PROTOCOL: return context.protocol >>> 0;
    case SKF_AD_PKTTYPE: return (context.pktType ?? 0) >>> 0;
    case SKF_AD_IFINDEX: return (context.ifindex ?? 0) >>> 0;
    case SKF_AD_MARK: return (context.mark ?? 0) >>> 0;
    case SKF_AD_QUEUE: return (context.queue ?? 0) & 0xffff;
    case SKF_AD_HATYPE: return (context.hardwareType ?? 0) & 0xffff;
    case SKF_AD_RXHASH: return (context.hash ?? 0) >>> 0;
    case SKF_AD_ALU_XOR_X: return (a ^ x) >>> 0;
    case SKF_AD_VLAN_TAG: return (context.vlanTag ?? 0) & 0xffff;
    case SKF_AD_VLAN_TAG_PRESENT: return context.vlanTag === undefined ? 0 : 1;
    case SKF_AD_VLAN_TPID: return context.vlanTag === undefined ? 0 : (context.vlanProtocol ?? 0x8100) & 0xffff;
    default: throw new Error(`unreachable: ancillary ${offset} passed the checks`);
  }
}

const ABORT = Symbol('abort');

function read(bytes: Uint8Array, at: number, size: number): number | typeof ABORT {
  const width = size === BPF_W ? 4 : size === BPF_H ? 2 : 1;
  if (at < 0 || at + width > bytes.length) return ABORT;
  if (width === 1) return bytes[at]!;
  if (width === 2) return (bytes[at]! << 8) | bytes[at + 1]!;
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

/** A packet load at a signed 32-bit offset, with the kernel's negative bases. */
function load(pc: number, packet: Uint8Array, context: BpfContext, offset: number, size: number): number | typeof ABORT {
  const signed = offset | 0;
  if (signed >= 0) return read(packet, signed, size);
  if (signed >= (SKF_NET_OFF | 0)) return read(packet, signed - (SKF_NET_OFF | 0), size);
  if (signed >= (SKF_LL_OFF | 0)) {
    if (context.linkHeader === undefined) throw new BpfProgramError(pc, 'a link-layer load (SKF_LL_OFF) needs context.linkHeader');
    return read(context.linkHeader, signed - (SKF_LL_OFF | 0), size);
  }
  return ABORT;
}

/**
 * Runs `program` over `packet` (network header at offset 0) and returns what the kernel would
 * return: 0 to drop, else the number of bytes to keep. Throws a BpfProgramError, before
 * running anything, for a program the kernel would refuse or this interpreter cannot run.
 */
export function runFilter(program: BpfProgram | readonly BpfInstruction[], packet: Uint8Array, context: BpfContext): number {
  const insns = 'instructions' in program ? program.instructions : program;
  checkProgram(insns);
  checkReproducible(insns, context);
  let a = 0;
  let x = 0;
  const m = new Uint32Array(BPF_MEMWORDS);
  let pc = 0;
  for (;;) {
    const insn = insns[pc]!;
    const { code, k } = insn;
    switch (code & 0x07) {
      case BPF_LD: {
        const mode = code & 0xe0;
        if (mode === BPF_IMM) a = k;
        else if (mode === BPF_LEN) a = packet.length;
        else if (mode === BPF_MEM) a = m[k]!;
        else if (mode === BPF_ABS && k >= SKF_AD_OFF) a = ancillary(k - SKF_AD_OFF, context, x, a);
        else {
          const value = load(pc, packet, context, mode === BPF_ABS ? k : (x + k) >>> 0, code & 0x18);
          if (value === ABORT) return 0;
          a = value;
        }
        break;
      }
      case BPF_LDX: {
        const mode = code & 0xe0;
        if (mode === BPF_IMM) x = k;
        else if (mode === BPF_LEN) x = packet.length;
        else if (mode === BPF_MEM) x = m[k]!;
        else {
          // BPF_MSH: the only other load checkProgram lets through.
          const value = load(pc, packet, context, k, BPF_B);
          if (value === ABORT) return 0;
          x = (value & 0xf) << 2;
        }
        break;
      }
      case BPF_ST:
        m[k] = a;
        break;
      case BPF_STX:
        m[k] = x;
        break;
      case BPF_ALU: {
        const operand = (code & BPF_X) !== 0 ? x : k;
        switch (code & 0xf0) {
          case BPF_ADD: a = (a + operand) >>> 0; break;
          case BPF_SUB: a = (a - operand) >>> 0; break;
          case BPF_MUL: a = Math.imul(a, operand) >>> 0; break;
          case BPF_DIV: if (operand === 0) return 0; a = Math.floor(a / operand) >>> 0; break;
          case BPF_MOD: if (operand === 0) return 0; a = (a % operand) >>> 0; break;
          case BPF_OR: a = (a | operand) >>> 0; break;
          case BPF_AND: a = (a & operand) >>> 0; break;
          case BPF_XOR: a = (a ^ operand) >>> 0; break;
          // JavaScript's shift operators also use the low 5 bits of the count, as the kernel does.
          case BPF_LSH: a = (a << operand) >>> 0; break;
          case BPF_RSH: a = a >>> operand; break;
          default: a = (-a) >>> 0; // BPF_NEG
        }
        break;
      }
      case BPF_JMP: {
        const op = code & 0xf0;
        if (op === BPF_JA) {
          pc += 1 + k;
          continue;
        }
        const operand = (code & BPF_X) !== 0 ? x : k;
        let taken: boolean;
        if (op === BPF_JEQ) taken = a === operand;
        else if (op === BPF_JGT) taken = a > operand;
        else if (op === BPF_JGE) taken = a >= operand;
        else taken = ((a & operand) >>> 0) !== 0; // BPF_JSET
        pc += 1 + (taken ? insn.jt : insn.jf);
        continue;
      }
      case BPF_RET:
        return code === (BPF_RET | BPF_A) ? a : k;
      default: // BPF_MISC
        if (code === (BPF_MISC | BPF_TXA)) a = x;
        else if (code === (BPF_MISC | BPF_TAX)) x = a;
    }
    pc++;
  }
}
