import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isIPv6 } from 'node:net';
import { formatAddress, parseAddress, parseEndpoint, parsePrefix, formatEndpoint } from '../../../lib/net/ip.js';

/** xorshift32 with a fixed seed: the same corpus every run. */
function prng(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

/** Strings near the IPv6 grammar: right and wrong group counts, digits, separators and tails. */
function ipv6Candidates(count: number): string[] {
  const random = prng(0x5eed6);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const hex = '0123456789abcdefABCDEF';
  const group = () => Array.from({ length: pick([0, 1, 1, 2, 3, 4, 4, 4, 5]) }, () => pick([...hex])).join('');
  const octet = () => pick(['0', '1', '9', '10', '99', '100', '199', '249', '250', '255', '256', '300', '01', '001']);
  const out: string[] = [];
  for (let c = 0; c < count; c++) {
    const parts: string[] = [];
    const groups = Math.floor(random() * 10);
    for (let g = 0; g < groups; g++) parts.push(group());
    let text = parts.join(':');
    if (random() < 0.5) {
      const at = Math.floor(random() * (text.length + 1));
      text = text.slice(0, at) + pick(['::', '::', ':', ':::']) + text.slice(at);
    }
    if (random() < 0.25) text += `${pick([':', '::', ''])}${octet()}.${octet()}.${octet()}.${octet()}`;
    if (random() < 0.05) {
      const at = Math.floor(random() * (text.length + 1));
      text = text.slice(0, at) + pick(['g', ' ', '.', '-', 'x', '::']) + text.slice(at);
    }
    out.push(text);
  }
  return out;
}

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

  it('reads IPv6 as node:net and the WHATWG URL parser do, on 20,000 generated strings', () => {
    const edges = ['::', '::1', '1::', '1::2', '::ffff:1.2.3.4', '1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:7:1.2.3.4', '1::2:3:4:5:6:7',
      '1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:8::', '::1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9',
      ':1::', '1:', ':1', '1::2::3', '00000::', '0000::', 'FfFf::', '::0.0.0.0', '::1.2.3', '1.2.3.4::', ':::1'];
    let valid = 0;
    for (const text of [...edges, ...ipv6Candidates(20_000)]) {
      const parsed = parseAddress(text);
      const expected = isIPv6(text);
      if (parsed?.family === 4) continue; // dotted quads are IPv4's
      assert.equal(parsed !== null, expected, `${JSON.stringify(text)}: node:net says ${expected ? 'valid' : 'invalid'}`);
      if (parsed === null) continue;
      valid++;
      // The same 16 bytes: both texts canonicalise to one form under an independent parser.
      const canonical = (t: string) => new URL(`http://[${t}]/`).hostname;
      assert.equal(canonical(formatAddress(parsed.bytes)), canonical(text), JSON.stringify(text));
    }
    assert.ok(valid > 2000, `the corpus holds valid addresses too (${valid})`);
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
