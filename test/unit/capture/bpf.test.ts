import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import {
  BPF_A, BPF_ABS, BPF_ADD, BPF_ALU, BPF_AND, BPF_B, BPF_DIV, BPF_H, BPF_IMM, BPF_IND, BPF_JA, BPF_JEQ,
  BPF_JGE, BPF_JGT, BPF_JMP, BPF_JSET, BPF_K, BPF_LD, BPF_LDX, BPF_LEN, BPF_LSH, BPF_MEM, BPF_MISC,
  BPF_MOD, BPF_MSH, BPF_MUL, BPF_NEG, BPF_OR, BPF_RET, BPF_RSH, BPF_ST, BPF_STX, BPF_SUB, BPF_TAX,
  BPF_TXA, BPF_W, BPF_X, BPF_XOR, BpfAssembler, BpfProgramError, SKF_AD_IFINDEX, SKF_AD_OFF,
  SKF_AD_PKTTYPE, SKF_AD_PROTOCOL, bpfProgram, checkProgram, decodeInstructions, disassemble,
  encodeInstructions, handshakeFilter, runFilter, ValidationErrorLike, type BpfInstruction,
} from './helpers.js';

const insn = (code: number, k = 0, jt = 0, jf = 0): BpfInstruction => ({ code, jt, jf, k });
const retA = insn(BPF_RET | BPF_A);
const run = (program: BpfInstruction[], packet: number[] = [], context = { protocol: 0x800, pktType: 0, ifindex: 7 }) =>
  runFilter(program, Uint8Array.from(packet), context);

describe('cBPF encoding', () => {
  it('encodes struct sock_filter as the kernel lays it out (little-endian host)', () => {
    const bytes = encodeInstructions([insn(BPF_LD | BPF_H | BPF_ABS, 12, 0, 0), insn(BPF_JMP | BPF_JEQ | BPF_K, 0x800, 1, 2)]);
    assert.equal(bytes.toString('hex'), '28000000' + '0c000000' + '15000102' + '00080000');
  });

  it('round-trips the handshake filter', () => {
    const f = handshakeFilter({ ports: [51820, 443] });
    assert.deepEqual(decodeInstructions(f.encode()), f.instructions);
    assert.equal(f.encode().length, f.instructions.length * 8);
  });

  it('exposes an immutable, inspectable program', () => {
    const f = handshakeFilter();
    assert.ok(Object.isFrozen(f.instructions));
    assert.throws(() => { (f.instructions as BpfInstruction[]).push(insn(0)); });
    assert.match(f.toString(), /ldxb 4\*\(\[0\]&0xf\)/);
    assert.match(f.toString(), /ld #type/);
    assert.match(f.toString(), /ld #proto/);
    assert.match(f.toString(), /jeq #0xca6c/);
    assert.deepEqual(f.ports, [51820]);
  });

  it('rejects malformed instructions at the boundary', () => {
    assert.throws(() => bpfProgram([]), ValidationErrorLike);
    assert.throws(() => bpfProgram([{ code: 0x10000, jt: 0, jf: 0, k: 0 }]), ValidationErrorLike);
    assert.throws(() => bpfProgram([{ code: 6, jt: 256, jf: 0, k: 0 }]), ValidationErrorLike);
    assert.throws(() => bpfProgram([{ code: 6, jt: 0, jf: 0, k: -1 }]), ValidationErrorLike);
    assert.throws(() => bpfProgram([{ code: 6, jt: 0, jf: 0 } as never]), ValidationErrorLike);
    assert.throws(() => decodeInstructions(new Uint8Array(7)), ValidationErrorLike);
    assert.equal(bpfProgram(new Array(4096).fill(insn(BPF_RET | BPF_K, 1))).instructions.length, 4096);
    assert.throws(() => bpfProgram(new Array(4097).fill(insn(BPF_RET | BPF_K, 1))), ValidationErrorLike);
  });

  it('assembles forward label jumps and refuses what cBPF cannot encode', () => {
    const a = new BpfAssembler();
    a.op(BPF_LD | BPF_W | BPF_IMM, 5).jump(BPF_JMP | BPF_JEQ | BPF_K, 5, 'yes', 0).op(BPF_RET | BPF_K, 0).label('yes').op(BPF_RET | BPF_K, 9);
    assert.equal(run(a.assemble()), 9);
    const back = new BpfAssembler().label('top').op(BPF_LD | BPF_W | BPF_IMM, 0).ja('top');
    assert.throws(() => back.assemble(), /backward/);
    const far = new BpfAssembler().jump(BPF_JMP | BPF_JEQ | BPF_K, 0, 'end', 0);
    for (let i = 0; i < 256; i++) far.op(BPF_LD | BPF_W | BPF_IMM, i);
    far.label('end').op(BPF_RET | BPF_K, 0);
    assert.throws(() => far.assemble(), /longer than 255/);
    assert.throws(() => new BpfAssembler().ja('nowhere').assemble(), /undefined label/);
    assert.match(disassemble(a.assemble()), /\(001\) jeq #0x5 jt 3 jf 2/);
  });
});

describe('cBPF interpreter', () => {
  it('loads words, halves and bytes big-endian, absolute and indexed', () => {
    const packet = [0x12, 0x34, 0x56, 0x78, 0x9a];
    assert.equal(run([insn(BPF_LD | BPF_W | BPF_ABS, 1), retA], packet), 0x3456789a);
    assert.equal(run([insn(BPF_LD | BPF_H | BPF_ABS, 3), retA], packet), 0x789a);
    assert.equal(run([insn(BPF_LD | BPF_B | BPF_ABS, 4), retA], packet), 0x9a);
    assert.equal(run([insn(BPF_LDX | BPF_W | BPF_IMM, 2), insn(BPF_LD | BPF_H | BPF_IND, 1), retA], packet), 0x789a);
    assert.equal(run([insn(BPF_LD | BPF_W | BPF_LEN), retA], packet), 5);
    assert.equal(run([insn(BPF_LDX | BPF_W | BPF_LEN), insn(BPF_MISC | BPF_TXA), retA], packet), 5);
  });

  it('returns 0 for a load past the end, absolute or indexed', () => {
    const packet = [1, 2, 3, 4];
    assert.equal(run([insn(BPF_LD | BPF_W | BPF_ABS, 1), insn(BPF_RET | BPF_K, 99)], packet), 0);
    assert.equal(run([insn(BPF_LD | BPF_B | BPF_ABS, 4), insn(BPF_RET | BPF_K, 99)], packet), 0);
    assert.equal(run([insn(BPF_LD | BPF_B | BPF_ABS, 3), insn(BPF_RET | BPF_K, 99)], packet), 99);
    // X + k wraps at 32 bits (the kernel adds them with a 32-bit ALU op): 0xffffffff + 2 = 1.
    assert.equal(run([insn(BPF_LDX | BPF_W | BPF_IMM, 0xffffffff), insn(BPF_LD | BPF_B | BPF_IND, 2), insn(BPF_RET | BPF_K, 99)], packet), 99);
    assert.equal(run([insn(BPF_LDX | BPF_W | BPF_IMM, 0xfffffff0), insn(BPF_LD | BPF_B | BPF_IND, 2), insn(BPF_RET | BPF_K, 99)], packet), 0);
    assert.equal(run([insn(BPF_LDX | BPF_W | BPF_IMM, 2), insn(BPF_LD | BPF_H | BPF_IND, 1), insn(BPF_RET | BPF_K, 99)], packet), 0);
    assert.equal(run([insn(BPF_LDX | BPF_B | BPF_MSH, 4), insn(BPF_RET | BPF_K, 99)], packet), 0);
  });

  it('computes 4*(P[k]&0xf) for the MSH load', () => {
    assert.equal(run([insn(BPF_LDX | BPF_B | BPF_MSH, 1), insn(BPF_MISC | BPF_TXA), retA], [0, 0x4f]), 60);
    assert.equal(run([insn(BPF_LDX | BPF_B | BPF_MSH, 0), insn(BPF_MISC | BPF_TXA), retA], [0x45]), 20);
  });

  it('reads the ancillary protocol, packet type and ifindex from the context', () => {
    const ctx = { protocol: 0x86dd, pktType: 3, ifindex: 42 };
    assert.equal(run([insn(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_PROTOCOL), retA], [], ctx), 0x86dd);
    assert.equal(run([insn(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_PKTTYPE), retA], [], ctx), 3);
    assert.equal(run([insn(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_IFINDEX), retA], [], ctx), 42);
    assert.throws(() => run([insn(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + 20), retA]), BpfProgramError);
  });

  it('does unsigned 32-bit arithmetic', () => {
    const alu = (op: number, a: number, k: number, src = BPF_K) =>
      run([insn(BPF_LD | BPF_W | BPF_IMM, a), insn(BPF_LDX | BPF_W | BPF_IMM, k), insn(BPF_ALU | op | src, k), retA]);
    assert.equal(alu(BPF_ADD, 0xffffffff, 2), 1);
    assert.equal(alu(BPF_SUB, 1, 2), 0xffffffff);
    assert.equal(alu(BPF_SUB, 176, 20, BPF_X), 156);
    assert.equal(alu(BPF_MUL, 0x10000, 0x10001), 0x10000);
    assert.equal(alu(BPF_DIV, 7, 2), 3);
    assert.equal(alu(BPF_MOD, 7, 4), 3);
    assert.equal(alu(BPF_OR, 0xf0, 0x0f), 0xff);
    assert.equal(alu(BPF_AND, 0x45, 0xf0), 0x40);
    assert.equal(alu(BPF_XOR, 0xff, 0x0f), 0xf0);
    assert.equal(alu(BPF_LSH, 1, 31), 0x80000000);
    assert.equal(alu(BPF_RSH, 0x80000000, 31), 1);
    assert.equal(run([insn(BPF_LD | BPF_W | BPF_IMM, 1), insn(BPF_ALU | BPF_NEG), retA]), 0xffffffff);
    // Division by X = 0 ends the program with 0, as in the kernel.
    assert.equal(run([insn(BPF_LD | BPF_W | BPF_IMM, 1), insn(BPF_ALU | BPF_DIV | BPF_X), insn(BPF_RET | BPF_K, 9)]), 0);
    assert.equal(run([insn(BPF_LD | BPF_W | BPF_IMM, 1), insn(BPF_ALU | BPF_MOD | BPF_X), insn(BPF_RET | BPF_K, 9)]), 0);
  });

  it('jumps on eq, gt, ge, set (K and X) and always', () => {
    const cond = (op: number, a: number, k: number, src = BPF_K) =>
      run([insn(BPF_LD | BPF_W | BPF_IMM, a), insn(BPF_LDX | BPF_W | BPF_IMM, k), insn(BPF_JMP | op | src, k, 1, 0),
        insn(BPF_RET | BPF_K, 0), insn(BPF_RET | BPF_K, 1)]);
    assert.equal(cond(BPF_JEQ, 5, 5), 1);
    assert.equal(cond(BPF_JEQ, 5, 6), 0);
    assert.equal(cond(BPF_JGT, 0xffffffff, 1), 1); // unsigned
    assert.equal(cond(BPF_JGT, 5, 5), 0);
    assert.equal(cond(BPF_JGE, 5, 5, BPF_X), 1);
    assert.equal(cond(BPF_JGE, 4, 5, BPF_X), 0);
    assert.equal(cond(BPF_JSET, 0x2000, 0x3fff), 1);
    assert.equal(cond(BPF_JSET, 0x4000, 0x3fff), 0);
    assert.equal(run([insn(BPF_JMP | BPF_JA, 1), insn(BPF_RET | BPF_K, 0), insn(BPF_RET | BPF_K, 7)]), 7);
  });

  it('has scratch memory and the register moves', () => {
    assert.equal(run([insn(BPF_LD | BPF_W | BPF_IMM, 11), insn(BPF_ST, 15), insn(BPF_LD | BPF_W | BPF_IMM, 0),
      insn(BPF_LD | BPF_W | BPF_MEM, 15), retA]), 11);
    assert.equal(run([insn(BPF_LDX | BPF_W | BPF_IMM, 12), insn(BPF_STX, 3), insn(BPF_LDX | BPF_W | BPF_MEM, 3),
      insn(BPF_MISC | BPF_TXA), retA]), 12);
    assert.equal(run([insn(BPF_LD | BPF_W | BPF_IMM, 13), insn(BPF_MISC | BPF_TAX), insn(BPF_LD | BPF_W | BPF_IMM, 0),
      insn(BPF_MISC | BPF_TXA), retA]), 13);
    assert.equal(run([insn(BPF_LD | BPF_W | BPF_MEM, 0), retA]), 0); // starts zeroed
  });

  it('rejects programs the kernel verifier rejects', () => {
    assert.throws(() => checkProgram([]), BpfProgramError);
    assert.throws(() => checkProgram([insn(BPF_LD | BPF_W | BPF_IMM, 1)]), /end in ret/);
    assert.throws(() => checkProgram([insn(BPF_JMP | BPF_JEQ | BPF_K, 0, 5, 0), insn(BPF_RET | BPF_K)]), /out of the program/);
    assert.throws(() => checkProgram([insn(BPF_JMP | BPF_JA, 1), insn(BPF_RET | BPF_K)]), /out of the program/);
    assert.throws(() => checkProgram([insn(BPF_ST, 16), insn(BPF_RET | BPF_K)]), /M\[16\]/);
    assert.throws(() => checkProgram([insn(BPF_ALU | BPF_DIV | BPF_K, 0), insn(BPF_RET | BPF_K)]), /division/);
  });
});
