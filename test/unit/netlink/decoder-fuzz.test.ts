/**
 * Fuzzing the reply decoders with recorded kernel replies (test/fixtures/netlink/) mutated:
 * bytes overwritten, u16 and u32 fields (attribute and message lengths, types) rewritten,
 * datagrams truncated or extended. Whatever the bytes, a call resolves or rejects with a
 * documented error class: NetlinkDecodeError for a reply that does not parse, WireGuardError
 * for a kernel error the mutation produced. Never a RangeError from a Buffer read, never a
 * TypeError. Fixed seed, so a failure reproduces.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { NetlinkDecodeError, WireGuard, WireGuardError } from '../../../lib/index.js';
import { restamp } from '../../support/replay-transport.js';
import type { ExchangeResult, NetlinkTransport } from '../../../lib/netlink/transport.js';

interface Fixture {
  exchanges: Array<{ replies: string[]; completed: number }>;
}

function replies(name: string, exchange: number): Buffer[] {
  const fixture = JSON.parse(readFileSync(new URL(`../../fixtures/netlink/${name}.json`, import.meta.url), 'utf8')) as Fixture;
  return fixture.exchanges[exchange]!.replies.map((hex) => Buffer.from(hex, 'hex'));
}

const familyReply = replies('get-device-multipart', 0);
const deviceDump = replies('get-device-multipart', 1);
const enodev = replies('get-device-enodev', 1);
const extack = replies('set-device-extack', 0);
const linkDump = replies('list-links', 0);

type Mutation =
  | { kind: 'byte'; at: number; value: number }
  | { kind: 'u16'; at: number; value: number }
  | { kind: 'u32'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'extend'; bytes: number[] };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('byte' as const), at: fc.nat(), value: fc.nat(255) }),
  // Small values and lengths near the real ones are what walks past an end.
  fc.record({ kind: fc.constant('u16' as const), at: fc.nat(), value: fc.oneof(fc.nat(64), fc.nat(0xffff)) }),
  fc.record({ kind: fc.constant('u32' as const), at: fc.nat(), value: fc.oneof(fc.nat(64), fc.nat(0xffffffff), fc.constant(0x80000000)) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('extend' as const), bytes: fc.array(fc.nat(255), { maxLength: 12 }) }),
);

/** Applies mutations to a copy of one datagram of `datagrams`. */
function mutate(datagrams: Buffer[], which: number, mutations: Mutation[]): Buffer[] {
  const out = datagrams.map((d) => Buffer.from(d));
  const index = which % out.length;
  let target = out[index]!;
  for (const m of mutations) {
    if (target.length === 0) break;
    // Attribute and message fields are 4-aligned more often than not: aim there half the time.
    switch (m.kind) {
      case 'byte':
        target[m.at % target.length] = m.value;
        break;
      case 'u16': {
        const at = (m.at % Math.max(1, target.length - 1)) & ~(m.at & 1 ? 0 : 3);
        if (at + 2 <= target.length) target.writeUInt16LE(m.value, at);
        break;
      }
      case 'u32': {
        const at = (m.at % Math.max(1, target.length - 3)) & ~(m.at & 1 ? 0 : 3);
        if (at + 4 <= target.length) target.writeUInt32LE(m.value >>> 0, at);
        break;
      }
      case 'truncate':
        target = target.subarray(0, m.at % (target.length + 1));
        break;
      case 'extend':
        target = Buffer.concat([target, Buffer.from(m.bytes)]);
        break;
    }
  }
  out[index] = target;
  return out;
}

/**
 * Answers each exchange with the next recorded datagrams, stamped with the request's sequence
 * number before they are mutated (so the mutation, not the stamping, meets the odd lengths).
 * The last step repeats: a mutation that sets NLM_F_DUMP_INTR makes the dump retry.
 */
class MutatingReplay implements NetlinkTransport {
  constructor(private readonly steps: Array<{ datagrams: Buffer[]; mutate?: (d: Buffer[]) => Buffer[] }>) {}
  async exchange(messages: Buffer[]): Promise<ExchangeResult> {
    const step = this.steps.length > 1 ? this.steps.shift()! : this.steps[0]!;
    const seq = messages[messages.length - 1]!.readUInt32LE(8);
    const stamped = step.datagrams.map((d) => {
      const copy = Buffer.from(d);
      restamp(copy, seq);
      return copy;
    });
    return { replies: step.mutate ? step.mutate(stamped) : stamped, completed: messages.length };
  }
  close(): void {}
}

function documented(error: unknown): boolean {
  return error instanceof NetlinkDecodeError || error instanceof WireGuardError;
}

const RUNS = 3000;
const SEED = 0x1a2b3c;

async function outcome(call: () => Promise<unknown>): Promise<unknown> {
  try {
    await call();
    return undefined;
  } catch (error) {
    return error;
  }
}

describe('decoders under mutated recorded replies', () => {
  it(`getDevice, resolveFamily and listDevices let only documented errors escape (${RUNS} cases, seed ${SEED})`, async () => {
    const seen = { resolved: 0, decode: 0, kernel: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('family', 'dump', 'enodev', 'extack', 'links'),
        fc.nat(),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        async (target, which, mutations) => {
          let error: unknown;
          const apply = (d: Buffer[]) => mutate(d, which, mutations);
          if (target === 'links') {
            const route = new MutatingReplay([{ datagrams: linkDump, mutate: apply }]);
            error = await outcome(() => new WireGuard({ transports: { route } }).listDevices());
          } else {
            const second = { dump: deviceDump, enodev, extack, family: deviceDump }[target];
            const generic = new MutatingReplay([
              { datagrams: familyReply, mutate: target === 'family' ? apply : undefined },
              { datagrams: second, mutate: target === 'family' ? undefined : apply },
            ]);
            error = await outcome(() => new WireGuard({ transports: { generic } }).getDevice('wg0'));
          }
          if (error === undefined) seen.resolved++;
          else if (error instanceof NetlinkDecodeError) seen.decode++;
          else if (error instanceof WireGuardError) seen.kernel++;
          assert.ok(error === undefined || documented(error), `undocumented ${(error as Error)?.name}: ${(error as Error)?.message}`);
        },
      ),
      { seed: SEED, numRuns: RUNS },
    );
    // The mutations must reach the decoders, not just be ignored: each outcome occurs.
    assert.ok(seen.decode > RUNS / 10, `only ${seen.decode} decode errors`);
    assert.ok(seen.resolved > 0 && seen.kernel > 0, JSON.stringify(seen));
  });
});
