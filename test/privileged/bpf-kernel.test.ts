/**
 * The cBPF checker and interpreter of lib/capture against this machine's kernel: every program
 * is attached with SO_ATTACH_FILTER to a real socket (bpf-attach.c) and the kernel's verdict
 * (EINVAL or accepted) must be checkProgram()'s; for accepted programs the kernel also runs
 * them over a packet, and what it keeps must be what runFilter() returns.
 *
 * The programs: hand-picked edge cases (each one a way the interpreter used to be more
 * permissive than the kernel) and a few thousand random ones from a fixed seed, biased towards
 * almost-valid programs so that both verdicts are common.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import {
  BPF_A, BPF_ABS, BPF_ADD, BPF_ALU, BPF_AND, BPF_B, BPF_DIV, BPF_H, BPF_IMM, BPF_IND, BPF_JA, BPF_JEQ,
  BPF_JGE, BPF_JGT, BPF_JMP, BPF_JSET, BPF_K, BPF_LD, BPF_LDX, BPF_LEN, BPF_LSH, BPF_MEM, BPF_MISC,
  BPF_MOD, BPF_MSH, BPF_MUL, BPF_NEG, BPF_OR, BPF_RET, BPF_RSH, BPF_ST, BPF_STX, BPF_SUB, BPF_TAX,
  BPF_TXA, BPF_W, BPF_X, BPF_XOR, SKF_AD_HATYPE, SKF_AD_IFINDEX, SKF_AD_OFF, SKF_LL_OFF, SKF_NET_OFF,
  encodeInstructions, type BpfInstruction,
} from '../../lib/capture/bpf.js';
import { BpfProgramError, checkProgram, runFilter } from '../../lib/capture/bpf-interpreter.js';
import { compileHelper, privilegeProblem } from './capture-harness.js';

const problem = privilegeProblem(['cc']);
if (problem !== null && process.env.CI === 'true') {
  it('has what the kernel comparison needs', () => assert.fail(problem));
}

const EINVAL = 22;
const insn = (code: number, k = 0, jt = 0, jf = 0): BpfInstruction => ({ code, jt, jf, k: k >>> 0 });

interface Case {
  program: BpfInstruction[];
  packet?: Uint8Array;
  what: string;
}

interface KernelVerdict {
  accepted: boolean;
  errno?: number;
  /** Bytes received, 0 when dropped, undefined without a packet. */
  kept?: number;
}

function askKernel(cases: readonly Case[]): KernelVerdict[] {
  const input = cases.map((c) => `${c.program.length === 0 ? '-' : encodeInstructions(c.program).toString('hex')} ${c.packet ? Buffer.from(c.packet).toString('hex') : '-'}\n`).join('');
  const output = execFileSync(compileHelper('bpf-attach'), [], { input, encoding: 'utf8', maxBuffer: 64 << 20 });
  const lines = output.trim().split('\n');
  assert.equal(lines.length, cases.length, 'one kernel verdict per case');
  return lines.map((line) => {
    const [verdict, detail] = line.split(' ');
    if (verdict === 'refused') return { accepted: false, errno: Number(detail) };
    if (detail === '-') return { accepted: true };
    return { accepted: true, kept: detail === 'dropped' ? 0 : Number(detail) };
  });
}

function ourVerdict(program: BpfInstruction[]): { accepted: boolean; why?: string } {
  try {
    checkProgram(program);
    return { accepted: true };
  } catch (error) {
    if (!(error instanceof BpfProgramError)) throw error;
    return { accepted: false, why: error.message };
  }
}

// An AF_UNIX datagram carries no device, protocol or link-layer header: the context the
// kernel's filter sees there. Loads of the device's ifindex or type exit the program early
// when there is no device (convert_bpf_extensions), which no real capture sees: not compared.
const unixContext = { protocol: 0, pktType: 0, linkHeader: new Uint8Array(0) };
const needsDevice = (program: BpfInstruction[]) =>
  program.some((i) => (i.code & 0xe7) === (BPF_LD | BPF_ABS) && (i.k === SKF_AD_OFF + SKF_AD_IFINDEX || i.k === SKF_AD_OFF + SKF_AD_HATYPE));

function ourRun(program: BpfInstruction[], packet: Uint8Array): number | undefined {
  if (needsDevice(program)) return undefined;
  try {
    const result = runFilter(program, packet, unixContext);
    return result === 0 ? 0 : Math.min(result, packet.length);
  } catch (error) {
    if (error instanceof BpfProgramError && /depends on the running kernel/.test(error.message)) return undefined;
    throw error;
  }
}

function compare(cases: readonly Case[]): { accepted: number; refused: number; ran: number } {
  const kernel = askKernel(cases);
  const mismatches: string[] = [];
  let ran = 0;
  cases.forEach((c, i) => {
    const k = kernel[i]!;
    const ours = ourVerdict(c.program);
    const listing = c.program.map((x) => `${x.code.toString(16)}/${x.jt}/${x.jf}/${x.k.toString(16)}`).join(' ');
    if (!k.accepted && k.errno !== EINVAL) mismatches.push(`${c.what}: the kernel failed with errno ${k.errno} (not EINVAL): ${listing}`);
    if (k.accepted !== ours.accepted) {
      mismatches.push(`${c.what}: kernel ${k.accepted ? 'accepts' : 'refuses'}, checkProgram ${ours.accepted ? 'accepts' : `refuses (${ours.why})`}: ${listing}`);
      return;
    }
    if (k.accepted && c.packet !== undefined) {
      const expected = ourRun(c.program, c.packet);
      if (expected === undefined) return;
      ran++;
      if (expected !== k.kept) {
        mismatches.push(`${c.what}: over ${Buffer.from(c.packet).toString('hex')} the kernel kept ${k.kept}, runFilter ${expected}: ${listing}`);
      }
    }
  });
  assert.equal(mismatches.length, 0, `${mismatches.length} of ${cases.length} differ:\n${mismatches.slice(0, 15).join('\n')}`);
  const accepted = kernel.filter((k) => k.accepted).length;
  return { accepted, refused: cases.length - accepted, ran };
}

/** A small deterministic generator (mulberry32), so that a failure can be reproduced. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Written out here from the kernel's chk_code_allowed, independently of the interpreter's table.
const KNOWN_GOOD = [
  0x04, 0x0c, 0x14, 0x1c, 0x24, 0x2c, 0x34, 0x3c, 0x94, 0x9c, 0x54, 0x5c, 0x44, 0x4c, 0xa4, 0xac, 0x64, 0x6c, 0x74, 0x7c, 0x84,
  0x20, 0x28, 0x30, 0x80, 0x40, 0x48, 0x50, 0x00, 0x60, 0x81, 0xb1, 0x01, 0x61, 0x02, 0x03, 0x07, 0x87, 0x06, 0x16,
  0x05, 0x15, 0x1d, 0x35, 0x3d, 0x25, 0x2d, 0x45, 0x4d,
];

function randomCase(next: () => number, n: number): Case {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!;
  const below = (max: number) => Math.floor(next() * max);
  const length = 1 + below(10);
  const program: BpfInstruction[] = [];
  for (let pc = 0; pc < length; pc++) {
    const roll = next();
    const code = roll < 0.8 ? pick(KNOWN_GOOD) : roll < 0.9 ? below(0x100) : pick(KNOWN_GOOD) ^ (1 << below(8));
    const k = pick([
      () => below(8), () => pick([15, 16, 17, 31, 32, 33, 63, 64]), () => 0xffffffff, () => 0x80000000,
      () => SKF_AD_OFF + 4 * below(17), () => SKF_AD_OFF + below(66), () => SKF_NET_OFF + below(40),
      () => SKF_LL_OFF + below(20), () => below(70), () => Math.floor(next() * 2 ** 32),
    ])();
    const remaining = length - pc - 1;
    const jump = () => (next() < 0.9 ? below(Math.max(1, remaining)) : below(remaining + 3));
    program.push(insn(code, (code & 0xf7) === (BPF_JMP | BPF_JA) && next() < 0.9 ? below(Math.max(1, remaining)) : k, jump(), jump()));
  }
  if (next() < 0.85) program[length - 1] = next() < 0.5 ? insn(BPF_RET | BPF_A) : insn(BPF_RET | BPF_K, below(80));
  const packet = Uint8Array.from({ length: 1 + below(64) }, () => below(256));
  return { program, packet, what: `random #${n}` };
}

describe('lib/capture cBPF against the kernel (SO_ATTACH_FILTER on a real socket)', { skip: problem ?? false }, () => {
  it('refuses and accepts the hand-picked edge cases exactly as the kernel does', () => {
    const ret = insn(BPF_RET | BPF_K, 1);
    const retA = insn(BPF_RET | BPF_A);
    const packet = Uint8Array.from([0x45, 0x00, 0x00, 0x30, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11]);
    const cases: Case[] = [
      { what: 'ret x', program: [insn(BPF_RET | BPF_X)] },
      { what: 'ret k', program: [ret], packet },
      { what: 'lsh #31', program: [insn(BPF_LD | BPF_IMM, 1), insn(BPF_ALU | BPF_LSH | BPF_K, 31), retA], packet },
      { what: 'lsh #32', program: [insn(BPF_ALU | BPF_LSH | BPF_K, 32), retA] },
      { what: 'rsh #32', program: [insn(BPF_ALU | BPF_RSH | BPF_K, 32), retA] },
      { what: 'lsh x by 33', program: [insn(BPF_LD | BPF_IMM, 1), insn(BPF_LDX | BPF_IMM, 33), insn(BPF_ALU | BPF_LSH | BPF_X), retA], packet },
      { what: 'rsh x by 36', program: [insn(BPF_LD | BPF_IMM, 0x80), insn(BPF_LDX | BPF_IMM, 36), insn(BPF_ALU | BPF_RSH | BPF_X), retA], packet },
      { what: 'M[0] before any store', program: [insn(BPF_LD | BPF_MEM, 0), retA] },
      { what: 'M[3] stored on one branch only', program: [insn(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1), insn(BPF_ST, 3), insn(BPF_LDX | BPF_MEM, 3), retA] },
      { what: 'M[3] stored on both branches', program: [insn(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 2), insn(BPF_ST, 3), insn(BPF_JMP | BPF_JA, 1), insn(BPF_STX, 3), insn(BPF_LDX | BPF_MEM, 3), insn(BPF_MISC | BPF_TXA), retA], packet },
      { what: 'M[16]', program: [insn(BPF_ST, 16), ret] },
      { what: 'div #0', program: [insn(BPF_ALU | BPF_DIV | BPF_K, 0), ret] },
      { what: 'mod #0', program: [insn(BPF_ALU | BPF_MOD | BPF_K, 0), ret] },
      { what: 'div x = 0 at run time', program: [insn(BPF_LD | BPF_IMM, 5), insn(BPF_ALU | BPF_DIV | BPF_X), ret], packet },
      { what: 'unknown opcode, unreachable', program: [ret, insn(0xff)] },
      { what: 'ldh #imm', program: [insn(BPF_LD | BPF_H | BPF_IMM, 1), ret] },
      { what: 'ldb len', program: [insn(BPF_LD | BPF_B | BPF_LEN), ret] },
      { what: 'neg x', program: [insn(BPF_ALU | BPF_NEG | BPF_X), ret] },
      { what: 'ja out of range', program: [insn(BPF_JMP | BPF_JA, 1), ret] },
      { what: 'ja huge', program: [insn(BPF_JMP | BPF_JA, 0xffffffff), ret] },
      { what: 'jeq jt out of range', program: [insn(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0), ret] },
      { what: 'jeq jf to the last', program: [insn(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1), ret, ret], packet },
      { what: 'no final ret', program: [insn(BPF_LD | BPF_IMM, 1)] },
      { what: 'empty', program: [] },
      { what: '4096 instructions', program: new Array(4096).fill(ret) },
      { what: '4097 instructions', program: new Array(4097).fill(ret) },
      { what: 'ancillary proto', program: [insn(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF), retA], packet },
      { what: 'ancillary +64', program: [insn(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + 64), retA] },
      { what: 'ancillary +2', program: [insn(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + 2), retA] },
      { what: 'ancillary vlan present (byte load)', program: [insn(BPF_LD | BPF_B | BPF_ABS, SKF_AD_OFF + 48), insn(BPF_ALU | BPF_ADD | BPF_K, 3), retA], packet },
      { what: 'indexed load at SKF_AD_OFF + 64', program: [insn(BPF_LD | BPF_W | BPF_IND, SKF_AD_OFF + 64), ret], packet },
      { what: 'SKF_NET_OFF + 3', program: [insn(BPF_LD | BPF_B | BPF_ABS, SKF_NET_OFF + 3), retA], packet },
      { what: 'SKF_NET_OFF + 9 indexed by 0', program: [insn(BPF_LD | BPF_B | BPF_IND, SKF_NET_OFF + 9), retA], packet },
      { what: 'SKF_LL_OFF without a link header', program: [insn(BPF_LD | BPF_B | BPF_ABS, SKF_LL_OFF), ret], packet },
      { what: 'offset 0x80000000', program: [insn(BPF_LD | BPF_B | BPF_ABS, 0x80000000), ret], packet },
      { what: 'msh at SKF_NET_OFF', program: [insn(BPF_LDX | BPF_B | BPF_MSH, SKF_NET_OFF), insn(BPF_MISC | BPF_TXA), retA], packet },
    ];
    compare(cases);
  });

  it('agrees on 4,000 random programs: verdict, and what is kept of a packet', (t) => {
    const seed = 0x6a67;
    const next = random(seed);
    const cases = Array.from({ length: 4000 }, (_, n) => randomCase(next, n));
    const { accepted, refused, ran } = compare(cases);
    t.diagnostic(`seed ${seed}: kernel accepted ${accepted}, refused ${refused}; ${ran} compared over a packet`);
    assert.ok(accepted > 400 && refused > 400, `both verdicts common (accepted ${accepted}, refused ${refused})`);
    assert.ok(ran > 300, `${ran} programs run`);
  });
});

