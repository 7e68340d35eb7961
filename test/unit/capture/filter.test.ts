import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  handshakeFilter, runFilter, parseInitiation, HANDSHAKE_SNAP_LENGTH, MAX_PORTS, ValidationErrorLike,
} from './helpers.js';
import { allFrames, derivedFrames, recorded, recordedFrames, withPorts, ETH_P_IP, ETH_P_IPV6 } from '../../vectors/frames/frames.js';

describe('handshakeFilter() over recorded and derived frames', () => {
  const filter = handshakeFilter();

  it('has recorded vectors, real initiations among them', () => {
    const frames = recordedFrames();
    assert.ok(frames.length >= 20, `only ${frames.length} recorded frames`);
    assert.equal(frames.filter((f) => f.accept).length, 3);
  });

  for (const frame of allFrames()) {
    it(`${frame.accept ? 'accepts' : 'rejects'} ${frame.name} (${frame.why})`, () => {
      const verdict = runFilter(filter, frame.bytes, { protocol: frame.protocol, pktType: frame.pktType });
      assert.equal(verdict, frame.accept ? HANDSHAKE_SNAP_LENGTH : 0);
      if (frame.accept) assert.ok(verdict >= frame.bytes.length, 'snap length must keep the whole packet');
    });
  }

  it('covers every kind of vector the issue lists', () => {
    const names = derivedFrames().map((f) => f.name).join(' ');
    for (const needed of ['ipv4-options', 'payload-147', 'payload-149', 'response', 'cookie', 'keepalive',
      'port-51821', 'first-fragment', 'nonfirst-fragment', 'ipv6-hop-by-hop', 'ipv6-fragment-header']) {
      assert.ok(names.includes(needed), `missing a ${needed} vector`);
    }
    const recordedNames = recordedFrames().map((f) => f.name).join(' ');
    for (const needed of ['icmp', 'icmp6', 'tcp', 'type2', 'type4']) assert.ok(recordedNames.includes(needed), needed);
  });

  it('accepts exactly the configured ports', () => {
    const f = handshakeFilter({ ports: [443, 51820, 65535] });
    const v4 = recorded('01');
    const v6 = recorded('10');
    for (const port of [1, 442, 443, 444, 51819, 51820, 51821, 65534, 65535]) {
      const expected = [443, 51820, 65535].includes(port) ? HANDSHAKE_SNAP_LENGTH : 0;
      assert.equal(runFilter(f, withPorts(v4, port), { protocol: ETH_P_IP }), expected, `v4 port ${port}`);
      assert.equal(runFilter(f, withPorts(v6, port), { protocol: ETH_P_IPV6 }), expected, `v6 port ${port}`);
    }
  });

  it('builds a valid program for the largest port set', () => {
    const ports = Array.from({ length: MAX_PORTS }, (_, i) => 1000 + i);
    const f = handshakeFilter({ ports });
    assert.equal(f.instructions.length, 48 + MAX_PORTS);
    const v4 = recorded('01');
    assert.equal(runFilter(f, withPorts(v4, 1000 + MAX_PORTS - 1), { protocol: ETH_P_IP }), HANDSHAKE_SNAP_LENGTH);
    assert.equal(runFilter(f, withPorts(v4, 1000 + MAX_PORTS), { protocol: ETH_P_IP }), 0);
    assert.equal(runFilter(f, withPorts(v4, 1000), { protocol: ETH_P_IP, pktType: 3 }), 0);
  });

  it('rejects bad port lists', () => {
    for (const ports of [[], [0], [65536], [1.5], ['51820'], [51820, 51820], Array.from({ length: MAX_PORTS + 1 }, (_, i) => i + 1)]) {
      assert.throws(() => handshakeFilter({ ports: ports as number[] }), ValidationErrorLike, JSON.stringify(ports).slice(0, 40));
    }
    assert.throws(() => handshakeFilter(null as never), ValidationErrorLike);
  });

  it('agrees with parseInitiation() on random mutations of real initiations', () => {
    const bases = [recorded('01'), recorded('10'), recorded('17')];
    const mutation = fc.record({
      base: fc.integer({ min: 0, max: bases.length - 1 }),
      edits: fc.array(fc.record({ at: fc.integer({ min: 0, max: 215 }), value: fc.integer({ min: 0, max: 255 }) }), { maxLength: 3 }),
      // Bias edits towards the header bytes that matter.
      headerEdit: fc.option(fc.record({ at: fc.constantFrom(0, 2, 3, 4, 5, 6, 7, 9, 20, 22, 23, 24, 25, 28, 29, 30, 31, 40, 42, 43, 44, 45, 48, 49, 50, 51), value: fc.integer({ min: 0, max: 255 }) })),
      cut: fc.option(fc.integer({ min: 0, max: 215 })),
      extra: fc.option(fc.integer({ min: 1, max: 8 })),
    });
    fc.assert(fc.property(mutation, ({ base, edits, headerEdit, cut, extra }) => {
      let p = Uint8Array.from(bases[base]!);
      for (const e of [...edits, ...(headerEdit ? [headerEdit] : [])]) if (e.at < p.length) p[e.at] = e.value;
      if (cut !== null) p = p.slice(0, cut);
      if (extra !== null) p = Uint8Array.from([...p, ...new Array<number>(extra).fill(0)]);
      const protocol = p.length > 0 && p[0]! >> 4 === 6 ? ETH_P_IPV6 : ETH_P_IP;
      const parsed = parseInitiation(p);
      const expected = parsed !== null && parsed.destination.port === 51820;
      assert.equal(runFilter(filter, p, { protocol, pktType: 0 }) > 0, expected);
    }), { numRuns: 5000 });
  });
});
