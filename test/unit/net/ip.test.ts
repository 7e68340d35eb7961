import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatAddress, parseAddress, parseEndpoint, parsePrefix, formatEndpoint } from '../../../lib/net/ip.js';

describe('IP addresses', () => {
  it('round-trips addresses to the inet_ntop form', () => {
    const cases: Array<[string, string]> = [
      ['192.0.2.7', '192.0.2.7'],
      ['fd00::7', 'fd00::7'],
      ['FD00:0:0:0:0:0:0:7', 'fd00::7'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['::', '::'],
      ['::1', '::1'],
      ['1::', '1::'],
      ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
      ['64:ff9b::192.0.2.1', '64:ff9b::c000:201'],
      ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
      ['1:0:3:4:5:6:7:8', '1:0:3:4:5:6:7:8'],
    ];
    for (const [input, expected] of cases) {
      const parsed = parseAddress(input);
      assert.ok(parsed, input);
      assert.equal(formatAddress(parsed.bytes), expected, input);
    }
  });

  it('rejects what is not a numeric address', () => {
    for (const bad of ['', 'example.com', '256.0.0.1', '1.2.3', 'fe80::1%eth0', ':::', '1.2.3.4/32']) {
      assert.equal(parseAddress(bad), null, bad);
    }
  });

  it('parses prefixes, defaulting to host prefixes', () => {
    assert.deepEqual(parsePrefix('10.0.0.7'), { family: 4, bytes: Uint8Array.of(10, 0, 0, 7), length: 32 });
    assert.equal((parsePrefix('fd00::/64') as { length: number }).length, 64);
    assert.match(parsePrefix('10.0.0.0/33') as string, /0 to 32/);
    assert.match(parsePrefix('fd00::/129') as string, /0 to 128/);
    assert.match(parsePrefix('10.0.0.0/-1') as string, /0 to 32/);
    assert.match(parsePrefix('10.0.0.0/ 8') as string, /0 to 32/);
    assert.match(parsePrefix('nope/8') as string, /expected an IPv4 or IPv6 prefix/);
  });

  it('parses endpoints with ports, brackets and numeric zones', () => {
    const v4 = parseEndpoint('192.0.2.7:40001');
    assert.equal(typeof v4, 'object');
    assert.equal(formatEndpoint(v4 as never), '192.0.2.7:40001');
    assert.equal(formatEndpoint(parseEndpoint('[FD00::7]:51820') as never), '[fd00::7]:51820');
    assert.equal(formatEndpoint(parseEndpoint('[fe80::1%3]:1') as never), '[fe80::1%3]:1');
    assert.match(parseEndpoint('192.0.2.7') as string, /needs a port/);
    assert.match(parseEndpoint('192.0.2.7:0') as string, /1 to 65535/);
    assert.match(parseEndpoint('192.0.2.7:65536') as string, /1 to 65535/);
    assert.match(parseEndpoint('fd00::7:51820') as string, /brackets|numeric/);
    assert.match(parseEndpoint('[fd00::7]51820') as string, /\[ipv6\]:port/);
    assert.match(parseEndpoint('[fe80::1%eth0]:1') as string, /numeric interface index/);
    assert.match(parseEndpoint('host.example:1') as string, /not resolved/);
  });
});
