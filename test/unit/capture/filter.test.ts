import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  handshakeFilter, runFilter, parseInitiation, HANDSHAKE_SNAP_LENGTH, MAX_PORTS, ValidationErrorLike,
} from './helpers.js';
import { allFrames, derivedFrames, recorded, recordedFrames, withPorts, ETH_P_IP, ETH_P_IPV6 } from '../../vectors/frames/frames.js';
import { MAX_DESTINATIONS } from '../../../lib/capture/filter.js';
import { RecentPackets } from '../../../lib/capture/duplicates.js';

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

describe('handshakeFilter() and VLAN tags', () => {
  const filter = handshakeFilter();
  const v4 = recorded('01');
  const v6 = recorded('10');

  it('refuses a frame that carried a VLAN id (the stack delivers it on the VLAN device, or drops it)', () => {
    for (const vlanTag of [1, 100, 4095, 0x2000 | 100, 0xf000 | 7]) {
      assert.equal(runFilter(filter, v4, { protocol: ETH_P_IP, vlanTag }), 0, `TCI 0x${vlanTag.toString(16)}`);
      assert.equal(runFilter(filter, v6, { protocol: ETH_P_IPV6, vlanTag, vlanProtocol: 0x88a8 }), 0);
    }
  });

  it('accepts an untagged frame and a priority-tagged one (VLAN id 0, delivered untagged by the stack)', () => {
    assert.equal(runFilter(filter, v4, { protocol: ETH_P_IP }), HANDSHAKE_SNAP_LENGTH);
    for (const vlanTag of [0, 0xa000, 0x1000]) {
      assert.equal(runFilter(filter, v4, { protocol: ETH_P_IP, vlanTag }), HANDSHAKE_SNAP_LENGTH, `TCI 0x${vlanTag.toString(16)}`);
    }
  });
});

describe('handshakeFilter({ destinations })', () => {
  const v4 = recorded('01'); // to 10.77.0.2
  const v6 = recorded('10'); // to fd77::2
  const to4 = (address: string) => {
    const p = Uint8Array.from(v4);
    p.set(address.split('.').map(Number), 16);
    return p;
  };

  it('accepts only the listed destination addresses, IPv4 and IPv6', () => {
    const f = handshakeFilter({ destinations: ['192.0.2.1', '10.77.0.2', 'FD77::2'] });
    assert.deepEqual(f.destinations, ['192.0.2.1', '10.77.0.2', 'fd77::2']);
    assert.equal(runFilter(f, v4, { protocol: ETH_P_IP }), HANDSHAKE_SNAP_LENGTH);
    assert.equal(runFilter(f, v6, { protocol: ETH_P_IPV6 }), HANDSHAKE_SNAP_LENGTH);
    assert.equal(runFilter(f, to4('192.0.2.1'), { protocol: ETH_P_IP }), HANDSHAKE_SNAP_LENGTH);
    for (const other of ['10.77.0.3', '10.77.1.2', '0.0.0.0', '255.255.255.255', '2.0.77.10']) {
      assert.equal(runFilter(f, to4(other), { protocol: ETH_P_IP }), 0, other);
    }
    for (let byte = 24; byte < 40; byte++) {
      const p = Uint8Array.from(v6);
      p[byte] = p[byte]! ^ 1;
      assert.equal(runFilter(f, p, { protocol: ETH_P_IPV6 }), 0, `IPv6 destination byte ${byte} differs`);
    }
    assert.equal(handshakeFilter().destinations, undefined);
  });

  it('refuses a whole family when the list has none of its addresses', () => {
    assert.equal(runFilter(handshakeFilter({ destinations: ['fd77::2'] }), v4, { protocol: ETH_P_IP }), 0);
    assert.equal(runFilter(handshakeFilter({ destinations: ['10.77.0.2'] }), v6, { protocol: ETH_P_IPV6 }), 0);
  });

  it('builds a program the kernel accepts for the largest lists and port sets', () => {
    const v6s = Array.from({ length: MAX_DESTINATIONS - 1 }, (_, i) => `2001:db8::${(i + 1).toString(16)}`);
    const ports = Array.from({ length: MAX_PORTS }, (_, i) => 51820 - i);
    const f = handshakeFilter({ ports, destinations: [...v6s, '10.77.0.2'] });
    assert.ok(f.instructions.length <= 4096, `${f.instructions.length} instructions`);
    assert.equal(runFilter(f, v4, { protocol: ETH_P_IP }), HANDSHAKE_SNAP_LENGTH);
    const last = Uint8Array.from(v6);
    last.set(Buffer.from('20010db80000000000000000000000ff', 'hex'), 24);
    assert.equal(runFilter(f, last, { protocol: ETH_P_IPV6 }), HANDSHAKE_SNAP_LENGTH, '2001:db8::ff, the 255th');
    const v4s = Array.from({ length: MAX_DESTINATIONS }, (_, i) => `10.77.${i >> 8}.${(i & 0xff)}`);
    const g = handshakeFilter({ destinations: v4s });
    assert.equal(runFilter(g, v4, { protocol: ETH_P_IP }), HANDSHAKE_SNAP_LENGTH, '10.77.0.2 is in the list');
    assert.equal(runFilter(g, to4('10.77.1.0'), { protocol: ETH_P_IP }), 0);
  });

  it('rejects bad address lists', () => {
    for (const destinations of [[], ['x'], ['10.0.0.256'], ['fe80::1%lo'], [7], ['10.0.0.1', '10.0.0.1'], '10.0.0.1',
      Array.from({ length: MAX_DESTINATIONS + 1 }, (_, i) => `10.1.${i >> 8}.${i & 0xff}`)]) {
      assert.throws(() => handshakeFilter({ destinations: destinations as string[] }), ValidationErrorLike, JSON.stringify(destinations).slice(0, 40));
    }
  });
});

describe('RecentPackets (copies of one frame seen on stacked devices)', () => {
  const payload = recorded('01').slice(28);
  const tuple = '10.77.0.1:40404>10.77.0.2:51820';

  it('recognises the same bytes and 4-tuple within the window, and nothing else', () => {
    const recent = new RecentPackets();
    const t = 1_796_000_000_000.5;
    assert.equal(recent.isCopy(payload, tuple, t), false);
    assert.equal(recent.isCopy(Uint8Array.from(payload), tuple, t), true, 'same timestamp: the stacked copy');
    assert.equal(recent.isCopy(payload, tuple, t + 9), true, '9 ms later');
    assert.equal(recent.isCopy(payload, '10.77.0.9:40404>10.77.0.2:51820', t), false, 'another source');
    for (const at of [0, 4, 20, 100, 120, 140, 147]) {
      const other = Uint8Array.from(payload);
      other[at] = other[at]! ^ 1;
      assert.equal(recent.isCopy(other, tuple, t), false, `another packet (byte ${at} differs)`);
    }
    assert.equal(recent.isCopy(payload, tuple, t + 100), false, '100 ms later: not a copy');
  });

  it('stays bounded: a packet whose slot was taken since is forgotten', () => {
    const recent = new RecentPackets(10, 1); // one slot: every new packet replaces the last
    const a = Uint8Array.from(payload);
    const b = Uint8Array.from(payload);
    b[8] = b[8]! ^ 1;
    assert.equal(recent.isCopy(a, tuple, 0), false);
    assert.equal(recent.isCopy(b, tuple, 0), false);
    assert.equal(recent.isCopy(Uint8Array.from(a), tuple, 0), false, 'a was replaced by b');
    assert.equal(recent.isCopy(Uint8Array.from(a), tuple, 0), true);
    assert.throws(() => new RecentPackets(10, 1000), RangeError);
  });
});
