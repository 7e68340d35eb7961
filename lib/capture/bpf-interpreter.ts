/**
 * A small classic-BPF interpreter with the kernel's semantics, to run a capture filter over
 * recorded packets without a kernel: in the unit tests, and for a user who replaces the
 * filter and wants to check it before attaching it.
 *
 * Semantics followed (kernel Documentation/networking/filter.rst, net/core/filter.c):
 * - A, X and the 16 scratch words M[] start at 0; arithmetic is unsigned 32-bit.
 * - A packet load outside the packet ends the program with 0 (the packet is dropped), as does
 *   a division or modulo by X = 0.
 * - `ld [SKF_AD_OFF + n]` reads ancillary data supplied by the caller (protocol, pkttype,
 *   ifindex), as the kernel reads it from the socket buffer.
 * - Jumps go forward only; the program must end in a return (checked up front, like the
 *   kernel's verifier, which rejects such programs with EINVAL).
 * Offset 0 of `packet` is whatever the socket type puts there: for a SOCK_DGRAM packet socket
 * (the capture's) the network header.
 */
import {
  BPF_A, BPF_ABS, BPF_ADD, BPF_ALU, BPF_AND, BPF_B, BPF_DIV, BPF_H, BPF_IMM, BPF_IND, BPF_JA,
  BPF_JEQ, BPF_JGE, BPF_JGT, BPF_JMP, BPF_JSET, BPF_LD, BPF_LDX, BPF_LEN, BPF_LSH, BPF_MEM,
  BPF_MEMWORDS, BPF_MISC, BPF_MOD, BPF_MSH, BPF_MUL, BPF_NEG, BPF_OR, BPF_RET, BPF_RSH, BPF_ST,
  BPF_STX, BPF_SUB, BPF_TXA, BPF_W, BPF_X, BPF_XOR, type BpfInstruction, type BpfProgram,
  SKF_AD_IFINDEX, SKF_AD_OFF, SKF_AD_PKTTYPE, SKF_AD_PROTOCOL,
} from './bpf.js';

/** What the kernel would know about the packet besides its bytes. */
export interface BpfContext {
  /** skb->protocol, the ethertype in host order: 0x0800 IPv4, 0x86dd IPv6. */
  protocol: number;
  /** skb->pkt_type: PACKET_HOST (0), PACKET_BROADCAST (1), ... PACKET_OUTGOING (4). */
  pktType?: number;
  /** The receiving interface's index. */
  ifindex?: number;
}

export class BpfProgramError extends Error {
  override name = 'BpfProgramError';
  constructor(readonly pc: number, problem: string) {
    super(`instruction ${pc}: ${problem}`);
  }
}

/** Checks what the kernel's verifier checks about control flow and operands. */
export function checkProgram(instructions: readonly BpfInstruction[]): void {
  if (instructions.length === 0) throw new BpfProgramError(0, 'empty program');
  instructions.forEach((insn, pc) => {
    const cls = insn.code & 0x07;
    if (cls === BPF_JMP) {
      const targets = (insn.code & 0xf0) === BPF_JA ? [insn.k] : [insn.jt, insn.jf];
      for (const skip of targets) {
        if (pc + 1 + skip >= instructions.length) throw new BpfProgramError(pc, 'jump out of the program');
      }
    }
    if ((cls === BPF_ST || cls === BPF_STX || ((cls === BPF_LD || cls === BPF_LDX) && (insn.code & 0xe0) === BPF_MEM)) &&
        insn.k >= BPF_MEMWORDS) {
      throw new BpfProgramError(pc, `scratch word M[${insn.k}] does not exist`);
    }
    if (cls === BPF_ALU && (insn.code & BPF_X) === 0 && insn.k === 0 &&
        ((insn.code & 0xf0) === BPF_DIV || (insn.code & 0xf0) === BPF_MOD)) {
      throw new BpfProgramError(pc, 'division by constant 0');
    }
  });
  const last = instructions[instructions.length - 1]!;
  if ((last.code & 0x07) !== BPF_RET) throw new BpfProgramError(instructions.length - 1, 'program must end in ret');
}

function ancillary(pc: number, offset: number, context: BpfContext): number {
  switch (offset) {
    case SKF_AD_PROTOCOL:
      return context.protocol >>> 0;
    case SKF_AD_PKTTYPE:
      return (context.pktType ?? 0) >>> 0;
    case SKF_AD_IFINDEX:
      return (context.ifindex ?? 0) >>> 0;
    default:
      throw new BpfProgramError(pc, `ancillary load SKF_AD_OFF+${offset} is not supported by this interpreter`);
  }
}

const ABORT = Symbol('abort');

function load(packet: Uint8Array, offset: number, size: number): number | typeof ABORT {
  const bytes = size === BPF_W ? 4 : size === BPF_H ? 2 : 1;
  if (offset < 0 || offset + bytes > packet.length) return ABORT;
  if (bytes === 1) return packet[offset]!;
  if (bytes === 2) return (packet[offset]! << 8) | packet[offset + 1]!;
  return ((packet[offset]! << 24) | (packet[offset + 1]! << 16) | (packet[offset + 2]! << 8) | packet[offset + 3]!) >>> 0;
}

/**
 * Runs `program` over `packet` and returns what the kernel would: 0 to drop the packet, else
 * the number of bytes to keep (the snap length).
 */
export function runFilter(program: BpfProgram | readonly BpfInstruction[], packet: Uint8Array, context: BpfContext): number {
  const insns = 'instructions' in program ? program.instructions : program;
  checkProgram(insns);
  let a = 0;
  let x = 0;
  const m = new Uint32Array(BPF_MEMWORDS);
  let pc = 0;
  for (;;) {
    const insn = insns[pc];
    if (insn === undefined) throw new BpfProgramError(pc, 'ran off the end');
    const { code, k } = insn;
    const cls = code & 0x07;
    switch (cls) {
      case BPF_LD: {
        const mode = code & 0xe0;
        const size = code & 0x18;
        if (mode === BPF_IMM) a = k;
        else if (mode === BPF_LEN) a = packet.length;
        else if (mode === BPF_MEM) a = m[k]!;
        else if (mode === BPF_ABS && k >= SKF_AD_OFF) a = ancillary(pc, k - SKF_AD_OFF, context);
        else if (mode === BPF_ABS || mode === BPF_IND) {
          const offset = mode === BPF_ABS ? k : (x + k) >>> 0;
          const value = load(packet, offset, size);
          if (value === ABORT) return 0;
          a = value;
        } else throw new BpfProgramError(pc, `unsupported load 0x${code.toString(16)}`);
        break;
      }
      case BPF_LDX: {
        const mode = code & 0xe0;
        if (mode === BPF_IMM) x = k;
        else if (mode === BPF_LEN) x = packet.length;
        else if (mode === BPF_MEM) x = m[k]!;
        else if (mode === BPF_MSH && (code & 0x18) === BPF_B) {
          const value = load(packet, k, BPF_B);
          if (value === ABORT) return 0;
          x = (value & 0xf) << 2;
        } else throw new BpfProgramError(pc, `unsupported ldx 0x${code.toString(16)}`);
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
          case BPF_LSH: a = operand >= 32 ? 0 : (a << operand) >>> 0; break;
          case BPF_RSH: a = operand >= 32 ? 0 : a >>> operand; break;
          case BPF_NEG: a = (-a) >>> 0; break;
          default: throw new BpfProgramError(pc, `unsupported alu 0x${code.toString(16)}`);
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
        else if (op === BPF_JSET) taken = (a & operand) !== 0;
        else throw new BpfProgramError(pc, `unsupported jump 0x${code.toString(16)}`);
        pc += 1 + (taken ? insn.jt : insn.jf);
        continue;
      }
      case BPF_RET:
        return (code & 0x18) === BPF_A ? a : k;
      case BPF_MISC:
        if ((code & 0xf8) === BPF_TXA) a = x;
        else x = a;
        break;
      default:
        throw new BpfProgramError(pc, `unsupported class 0x${cls.toString(16)}`);
    }
    pc++;
  }
}
