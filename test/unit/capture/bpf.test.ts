import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import {
  BPF_A, BPF_ABS, BPF_ADD, BPF_ALU, BPF_AND, BPF_B, BPF_DIV, BPF_H, BPF_IMM, BPF_IND, BPF_JA, BPF_JEQ,
  BPF_JGE, BPF_JGT, BPF_JMP, BPF_JSET, BPF_K, BPF_LD, BPF_LDX, BPF_LEN, BPF_LSH, BPF_MEM, BPF_MISC,
  BPF_MOD, BPF_MSH, BPF_MUL, BPF_NEG, BPF_OR, BPF_RET, BPF_RSH, BPF_ST, BPF_STX, BPF_SUB, BPF_TAX,
  BPF_TXA, BPF_W, BPF_X, BPF_XOR, BpfAssembler, BpfProgramError, SKF_AD_IFINDEX, SKF_AD_OFF,
  SKF_AD_PKTTYPE, SKF_AD_PROTOCOL, SKF_AD_VLAN_TAG, SKF_AD_VLAN_TAG_PRESENT, SKF_AD_VLAN_TPID, SKF_AD_MARK,
  SKF_AD_QUEUE, SKF_AD_RXHASH, SKF_AD_HATYPE, SKF_AD_ALU_XOR_X, SKF_AD_RANDOM, SKF_AD_CPU, SKF_AD_NLATTR,
  SKF_AD_NLATTR_NEST, SKF_AD_PAY_OFFSET, SKF_NET_OFF, SKF_LL_OFF, bpfProgram, checkProgram, decodeInstructions, disassemble,
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
  });

  it('reads the VLAN tag, mark, queue, hash and hardware type, and does the XOR-X operation', () => {
    const ld = (n: number) => [insn(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + n), retA];
    const tagged = { protocol: 0x800, vlanTag: 0x2064, mark: 7, queue: 3, hash: 0xdeadbeef, hardwareType: 1 };
    assert.equal(run(ld(SKF_AD_VLAN_TAG_PRESENT), [], tagged), 1);
    assert.equal(run(ld(SKF_AD_VLAN_TAG), [], tagged), 0x2064);
    assert.equal(run(ld(SKF_AD_VLAN_TPID), [], tagged), 0x8100);
    assert.equal(run(ld(SKF_AD_VLAN_TAG_PRESENT), [], { protocol: 0x800 }), 0);
    assert.equal(run(ld(SKF_AD_VLAN_TAG), [], { protocol: 0x800 }), 0);
    assert.equal(run(ld(SKF_AD_MARK), [], tagged), 7);
    assert.equal(run(ld(SKF_AD_QUEUE), [], tagged), 3);
    assert.equal(run(ld(SKF_AD_RXHASH), [], tagged), 0xdeadbeef);
    assert.equal(run(ld(SKF_AD_HATYPE), [], tagged), 1);
    assert.equal(run([insn(BPF_LD | BPF_W | BPF_IMM, 0xff00), insn(BPF_LDX | BPF_W | BPF_IMM, 0x0ff0),
      insn(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_ALU_XOR_X), retA]), 0xf0f0);
  });

  it('refuses before running what depends on the running kernel (random, cpu, netlink attributes, payload offset)', () => {
    for (const n of [SKF_AD_RANDOM, SKF_AD_CPU, SKF_AD_NLATTR, SKF_AD_NLATTR_NEST, SKF_AD_PAY_OFFSET]) {
      // The load is behind a jump never taken: refused up front all the same.
      const program = [insn(BPF_JMP | BPF_JA, 1), insn(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + n), insn(BPF_RET | BPF_K, 1)];
      assert.doesNotThrow(() => checkProgram(program), 'the kernel accepts it');
      assert.throws(() => run(program), /depends on the running kernel/);
    }
  });

  it('loads at SKF_NET_OFF from the network header (offset 0 here), at SKF_LL_OFF from the link header', () => {
    const packet = [0x45, 0, 0, 0xb0];
    assert.equal(run([insn(BPF_LD | BPF_B | BPF_ABS, SKF_NET_OFF), retA], packet), 0x45);
    assert.equal(run([insn(BPF_LD | BPF_H | BPF_ABS, SKF_NET_OFF + 2), retA], packet), 0xb0);
    assert.equal(run([insn(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 1), insn(BPF_RET | BPF_K, 9)], packet), 0, 'past the end');
    assert.equal(run([insn(BPF_LDX | BPF_W | BPF_IMM, 3), insn(BPF_LD | BPF_B | BPF_IND, SKF_NET_OFF), retA], packet), 0xb0);
    assert.equal(run([insn(BPF_LDX | BPF_B | BPF_MSH, SKF_NET_OFF), insn(BPF_MISC | BPF_TXA), retA], packet), 20);
    const linkHeader = Uint8Array.from([0xaa, 0xbb, 0x08, 0x00]);
    assert.equal(runFilter([insn(BPF_LD | BPF_H | BPF_ABS, SKF_LL_OFF + 2), retA], Uint8Array.from(packet), { protocol: 0x800, linkHeader }), 0x800);
    assert.throws(() => run([insn(BPF_LD | BPF_H | BPF_ABS, SKF_LL_OFF), retA], packet), /linkHeader/);
    // Other negative offsets fail, like a load past the end.
    assert.equal(run([insn(BPF_LD | BPF_B | BPF_ABS, 0x80000000), insn(BPF_RET | BPF_K, 9)], packet), 0);
    assert.equal(run([insn(BPF_LD | BPF_B | BPF_ABS, SKF_LL_OFF - 1), insn(BPF_RET | BPF_K, 9)], packet), 0);
    assert.match(disassemble([insn(BPF_LD | BPF_H | BPF_ABS, SKF_NET_OFF + 2), insn(BPF_LD | BPF_B | BPF_ABS, SKF_LL_OFF + 12)]), /ldh \[net\+2\][\s\S]*ldb \[ll\+12\]/);
  });

  it('shifts by X modulo 32, as the kernel does', () => {
    const shift = (op: number, a: number, by: number) =>
      run([insn(BPF_LD | BPF_W | BPF_IMM, a), insn(BPF_LDX | BPF_W | BPF_IMM, by), insn(BPF_ALU | op | BPF_X), retA]);
    assert.equal(shift(BPF_LSH, 1, 32), 1);
    assert.equal(shift(BPF_LSH, 1, 33), 2);
    assert.equal(shift(BPF_RSH, 0x80000000, 63), 1);
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
  });

  it('rejects programs the kernel verifier rejects', () => {
    assert.throws(() => checkProgram([]), BpfProgramError);
    assert.throws(() => checkProgram([insn(BPF_LD | BPF_W | BPF_IMM, 1)]), /end in ret/);
    assert.throws(() => checkProgram([insn(BPF_JMP | BPF_JEQ | BPF_K, 0, 5, 0), insn(BPF_RET | BPF_K)]), /out of the program/);
    assert.throws(() => checkProgram([insn(BPF_JMP | BPF_JA, 1), insn(BPF_RET | BPF_K)]), /out of the program/);
    assert.throws(() => checkProgram([insn(BPF_ST, 16), insn(BPF_RET | BPF_K)]), /M\[16\]/);
    assert.throws(() => checkProgram([insn(BPF_ALU | BPF_DIV | BPF_K, 0), insn(BPF_RET | BPF_K)]), /division/);
    assert.throws(() => checkProgram([insn(BPF_ALU | BPF_MOD | BPF_K, 0), insn(BPF_RET | BPF_K)]), /division/);
  });

  it('refuses what SO_ATTACH_FILTER refuses: ret x, constant shifts >= 32, unknown opcodes, unknown ancillary loads', () => {
    const refused: [string, BpfInstruction[], RegExp][] = [
      ['ret x', [insn(BPF_RET | BPF_X)], /opcode 0xe/],
      ['lsh #32', [insn(BPF_ALU | BPF_LSH | BPF_K, 32), retA], /shift by 32/],
      ['rsh #0xffffffff', [insn(BPF_ALU | BPF_RSH | BPF_K, 0xffffffff), retA], /shift/],
      ['ldh #imm', [insn(BPF_LD | BPF_H | BPF_IMM, 1), retA], /opcode 0x8 /],
      ['ldb len', [insn(BPF_LD | BPF_B | BPF_LEN), retA], /opcode/],
      ['ldxh msh', [insn(BPF_LDX | BPF_H | BPF_MSH, 0), retA], /opcode/],
      ['neg x', [insn(BPF_ALU | BPF_NEG | BPF_X), retA], /opcode/],
      ['ja x', [insn(BPF_JMP | BPF_JA | BPF_X, 0), retA], /opcode/],
      ['class 7 other than tax/txa', [insn(BPF_MISC | 0x40), retA], /opcode/],
      ['unknown ALU op 0xb0', [insn(BPF_ALU | 0xb0 | BPF_K, 1), retA], /opcode/],
      ['st with size bits', [insn(BPF_ST | BPF_H, 0), retA], /opcode/],
      ['ancillary +64', [insn(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + 64), retA], /ancillary/],
      ['ancillary +2 (unaligned)', [insn(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + 2), retA], /ancillary/],
      ['4097 instructions', new Array(4097).fill(retA), /more than 4096/],
    ];
    for (const [what, program, message] of refused) {
      assert.throws(() => checkProgram(program), message, what);
      // Refused even when the bad instruction is never reached.
      if (program.length < 10) {
        assert.throws(() => checkProgram([insn(BPF_RET | BPF_K, 1), ...program]), BpfProgramError, `${what} (unreachable)`);
      }
    }
    // Ancillary offsets are checked for absolute loads only: an indexed load there is a packet load that fails.
    assert.doesNotThrow(() => checkProgram([insn(BPF_LD | BPF_W | BPF_IND, SKF_AD_OFF + 64), retA]));
    assert.doesNotThrow(() => checkProgram([insn(BPF_ALU | BPF_LSH | BPF_K, 31), insn(BPF_ALU | BPF_LSH | BPF_X), retA]));
  });

  it('refuses a load of M[k] unless every path to it stored M[k] first', () => {
    const ldM = (k: number) => insn(BPF_LD | BPF_MEM, k);
    const st = (k: number) => insn(BPF_ST, k);
    assert.throws(() => checkProgram([ldM(0), retA]), /M\[0\] is loaded before it is stored/);
    assert.throws(() => checkProgram([insn(BPF_LDX | BPF_MEM, 3), retA]), /M\[3\]/);
    assert.throws(() => checkProgram([st(1), ldM(0), retA]), /M\[0\]/);
    assert.doesNotThrow(() => checkProgram([st(0), ldM(0), retA]));
    assert.doesNotThrow(() => checkProgram([insn(BPF_STX, 5), insn(BPF_LDX | BPF_MEM, 5), retA]));
    // Stored on one branch only: refused at the join.
    assert.throws(() => checkProgram([
      insn(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1), st(2), ldM(2), retA,
    ]), /M\[2\]/);
    // Stored on both branches: accepted.
    assert.doesNotThrow(() => checkProgram([
      insn(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 2), st(2), insn(BPF_JMP | BPF_JA, 1), st(2), ldM(2), retA,
    ]));
    // Stored before the branch: accepted on every path.
    assert.doesNotThrow(() => checkProgram([st(4), insn(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0), ldM(4), ldM(4), retA]));
    // Only reachable by a jump from before the store: refused.
    assert.throws(() => checkProgram([insn(BPF_JMP | BPF_JA, 2), st(6), retA, ldM(6), retA]), /M\[6\]/);
    assert.throws(() => run([ldM(0), retA]), /M\[0\]/, 'runFilter checks too');
  });
});
