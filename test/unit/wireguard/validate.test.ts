import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { ValidationError } from '../../../lib/errors.js';
import { decodeKey, derivePublicKey, privateKeyBytes } from '../../../lib/keys.js';
import { validateConfig } from '../../../lib/wireguard/validate.js';
import { validateInterfaceName } from '../../../lib/net/interface-name.js';
import { key, keyBytes } from '../../support/keys.js';

function rejects(config: unknown, path: RegExp | string, message: RegExp, own?: Uint8Array) {
  assert.throws(() => validateConfig(config, own), (error: unknown) => {
    assert.ok(error instanceof ValidationError, `expected ValidationError, got ${String(error)}`);
    if (typeof path === 'string') assert.equal(error.path, path);
    else assert.match(error.path, path);
    assert.match(error.message, message);
    assert.equal(error.code, 'ERR_JITGUARD_INVALID_ARGUMENT');
    return true;
  });
}

describe('config validation (before anything reaches the kernel)', () => {
  it('accepts keys as base64 and as 32 bytes, and private keys as KeyObjects', () => {
    const { privateKey } = generateKeyPairSync('x25519');
    const raw = privateKeyBytes(privateKey, 'k');
    const normalized = validateConfig({ privateKey, peers: [{ publicKey: keyBytes(1) }, { publicKey: key(2) }] }, undefined);
    assert.deepEqual(normalized.privateKey, raw);
    assert.deepEqual(normalized.peers[0]!.publicKey, keyBytes(1));
    assert.deepEqual(normalized.peers[1]!.publicKey, keyBytes(2));
  });

  it('rejects bad keys without echoing them', () => {
    const secret = key(9, 'secret');
    rejects({ privateKey: secret.slice(0, 43) }, 'config.privateKey', /44-character base64 key, got 43/);
    rejects({ privateKey: `${secret.slice(0, 42)}!=` }, 'config.privateKey', /base64 of 32 bytes/);
    rejects({ peers: [{ publicKey: new Uint8Array(31) }] }, 'config.peers[0].publicKey', /expected 32 bytes, got 31/);
    rejects({ peers: [{ publicKey: 42 }] }, 'config.peers[0].publicKey', /got a number/);
    rejects({ peers: [{ publicKey: key(1), presharedKey: 'x' }] }, 'config.peers[0].presharedKey', /got 1 characters/);
    // The trailing character of a 32-byte key can only take 16 values.
    rejects({ peers: [{ publicKey: `${key(1).slice(0, 42)}B=` }] }, 'config.peers[0].publicKey', /base64 of 32 bytes/);
    try {
      validateConfig({ privateKey: `${secret.slice(0, 42)}!=` }, undefined);
    } catch (error) {
      assert.ok(!String((error as Error).message).includes(secret.slice(0, 20)));
    }
  });

  it('rejects bad CIDRs, ports, endpoints and keepalives with their path', () => {
    rejects({ peers: [{ publicKey: key(1), allowedIps: ['10.0.0.0/33'] }] }, 'config.peers[0].allowedIps[0]', /0 to 32/);
    rejects({ peers: [{ publicKey: key(1), allowedIps: '10.0.0.0/8' }] }, 'config.peers[0].allowedIps', /array of CIDR/);
    rejects({ peers: [{ publicKey: key(1), allowedIps: [7] }] }, 'config.peers[0].allowedIps[0]', /CIDR string/);
    rejects({ listenPort: 65536 }, 'config.listenPort', /0 to 65535, got 65536/);
    rejects({ listenPort: 1.5 }, 'config.listenPort', /integer/);
    rejects({ fwmark: -1 }, 'config.fwmark', /0 to 4294967295/);
    rejects({ peers: [{ publicKey: key(1), endpoint: '192.0.2.7' }] }, 'config.peers[0].endpoint', /needs a port/);
    rejects({ peers: [{ publicKey: key(1), persistentKeepalive: 70000 }] }, 'config.peers[0].persistentKeepalive', /0 to 65535/);
    rejects({ replacePeers: 'yes' }, 'config.replacePeers', /boolean/);
  });

  it('rejects duplicate peers, unknown fields, and remove combined with changes', () => {
    rejects({ peers: [{ publicKey: key(1) }, { publicKey: keyBytes(1) }] }, 'config.peers[1].publicKey', /same public key as config.peers\[0\]/);
    rejects({ peers: [{ publicKey: key(1), allowedIPs: [] }] }, 'config.peers[0].allowedIPs', /unknown field/);
    rejects({ listen_port: 1 }, 'config.listen_port', /unknown field/);
    rejects({ peers: [{ publicKey: key(1), remove: true, endpoint: '192.0.2.1:1' }] }, 'config.peers[0]', /remove cannot be combined with endpoint/);
    rejects(null, 'config', /config object/);
    rejects({ peers: {} }, 'config.peers', /array of peers/);
  });

  it('rejects a peer equal to the interface key, known or being set', () => {
    const priv = keyBytes(5, 'device');
    const pub = derivePublicKey(priv);
    rejects({ peers: [{ publicKey: pub }] }, 'config.peers[0].publicKey', /own public key/, pub);
    rejects({ privateKey: priv, peers: [{ publicKey: pub }] }, 'config.peers[0].publicKey', /own public key/);
    // Clearing the private key in the same call makes that peer legal again.
    assert.equal(validateConfig({ privateKey: null, peers: [{ publicKey: pub }] }, pub).peers.length, 1);
  });

  it('rejects what the kernel would silently rewrite: a prefix on two peers, updateOnly under replacePeers', () => {
    rejects({ peers: [{ publicKey: key(1), allowedIps: ['10.0.0.0/24'] }, { publicKey: key(2), allowedIps: ['10.0.0.9/24'] }] }, 'config.peers[1].allowedIps[0]', /same prefix as an allowed IP of config.peers\[0\]/);
    rejects({ replacePeers: true, peers: [{ publicKey: key(1), updateOnly: true }] }, 'config.peers[0].updateOnly', /replacePeers/);
  });

  it('decodes base64 keys without leaving a copy in the shared buffer pool', () => {
    const raw = Buffer.alloc(32); // not from the pool
    for (let i = 0; i < 32; i++) raw[i] = (i * 37 + 11) & 0xff;
    const secret = raw.toString('base64');
    const bytes = decodeKey(secret, 'k');
    assert.deepEqual(Buffer.from(bytes.buffer, bytes.byteOffset, 32), raw);
    const pool = Buffer.from(Buffer.from('x').buffer); // the pool the next small Buffer.from() would use
    assert.equal(pool.indexOf(raw), -1, 'key bytes found in the shared buffer pool');
  });

  it('masks host bits of allowed IPs, as the kernel stores them', () => {
    const n = validateConfig({ peers: [{ publicKey: key(1), allowedIps: ['10.1.2.3/8', 'fd00::1/64', '0.0.0.0/0'] }] }, undefined);
    assert.deepEqual(n.peers[0]!.allowedIps!.map((p) => Array.from(p.bytes).slice(0, 4)), [[10, 0, 0, 0], [0xfd, 0, 0, 0], [0, 0, 0, 0]]);
  });

  it('checks interface names', () => {
    assert.equal(validateInterfaceName('wg0'), 'wg0');
    assert.throws(() => validateInterfaceName('a'.repeat(16)), /1 to 15 bytes, got 16/);
    assert.throws(() => validateInterfaceName(''), /1 to 15 bytes, got 0/);
    assert.throws(() => validateInterfaceName('wg 0'), /whitespace/);
    assert.throws(() => validateInterfaceName(undefined), /interface name string/);
  });
});

describe('a decoded preshared key is wiped when a later check fails (issue 8, item 11)', () => {
  /** How many 32-byte arrays equal to `secret` were zeroed with fill(0) while `run` ran. */
  function wipesOf(secret: Uint8Array, run: () => void): number {
    const original = Uint8Array.prototype.fill;
    let wiped = 0;
    Uint8Array.prototype.fill = function (this: Uint8Array, ...args: Parameters<Uint8Array['fill']>) {
      if (args[0] === 0 && this.length === secret.length && Buffer.compare(this, secret) === 0) wiped++;
      return original.apply(this, args);
    } as Uint8Array['fill'];
    try {
      run();
    } finally {
      Uint8Array.prototype.fill = original;
    }
    return wiped;
  }

  const psk = keyBytes(7, 'psk');
  const failing: Array<[string, Record<string, unknown>[]]> = [
    ['a bad endpoint', [{ publicKey: key(1), presharedKey: psk, endpoint: 'nope' }]],
    ['a bad keepalive', [{ publicKey: key(1), presharedKey: key(7, 'psk'), persistentKeepalive: 70000 }]],
    ['a bad allowed IP', [{ publicKey: key(1), presharedKey: psk, allowedIps: ['10.0.0.0/33'] }]],
    ['a duplicate public key', [{ publicKey: key(1) }, { publicKey: key(1), presharedKey: psk }]],
    ['a prefix shared with another peer', [{ publicKey: key(1), allowedIps: ['10.0.0.0/24'] }, { publicKey: key(2), presharedKey: psk, allowedIps: ['10.0.0.0/24'] }]],
  ];
  for (const [what, peers] of failing) {
    it(`after ${what}`, () => {
      const wiped = wipesOf(psk, () => assert.throws(() => validateConfig({ peers }, undefined), ValidationError));
      assert.ok(wiped >= 1, 'the decoded preshared key was dropped without being zeroed');
    });
  }
});
