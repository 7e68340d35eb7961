/**
 * The command line and the config file, before anything runs: commander's parse, the merge
 * (flags override the file), and validation into settings with one refusal per mistake.
 */
import assert from 'node:assert/strict';
import { describe, it, after } from 'node:test';
import { parseArguments } from '../../../lib/cli/arguments.js';
import { configSettings, mergeSettings, readConfigFile } from '../../../lib/cli/config-file.js';
import { parseListenAddress } from '../../../lib/cli/listen-address.js';
import { Refusal } from '../../../lib/cli/refusal.js';
import { gatewaySettings } from '../../../lib/cli/settings.js';
import { TempDir } from './support/daemon-harness.js';

const dir = new TempDir();
after(() => dir.remove());

function gateway(argv: string[]) {
  const parsed = parseArguments(['gateway', ...argv]);
  assert.equal(parsed.command, 'gateway');
  return parsed as Extract<typeof parsed, { command: 'gateway' }>;
}

const settingsOf = (argv: string[]) => gatewaySettings(gateway(argv).flags);

describe('parseArguments', () => {
  it('takes every flag of the issue\'s table, as typed', () => {
    const { flags, configFile } = gateway([
      '--interface', 'wg0', '--private-key-file', '/k', '--listen-port', '51820', '--capture-interface', 'eth0',
      '--resolver', 'http://cp/v1/peers', '--resolver-header', 'X-A: 1', '--resolver-header', '@/h', '--resolver-token-file', '/t',
      '--db', '/db', '--idle-timeout', '600', '--evict-interval', '30', '--handshake-grace', '30', '--metrics', '127.0.0.1:9100',
      '--admin', '127.0.0.1:9101', '--admin-token-file', '/a', '--websocket', '0.0.0.0:443', '--tls-cert', '/c', '--tls-key', '/k2',
      '--config', '/cfg.json', '--log-level', 'debug',
    ]);
    assert.equal(configFile, '/cfg.json');
    assert.deepEqual(flags, {
      interface: 'wg0', privateKeyFile: '/k', listenPort: '51820', captureInterface: 'eth0', resolver: 'http://cp/v1/peers',
      resolverHeader: ['X-A: 1', '@/h'], resolverTokenFile: '/t', db: '/db', idleTimeout: '600', evictInterval: '30',
      handshakeGrace: '30', metrics: '127.0.0.1:9100', admin: '127.0.0.1:9101', adminTokenFile: '/a', websocket: '0.0.0.0:443',
      tlsCert: '/c', tlsKey: '/k2', logLevel: 'debug',
    });
  });

  it('leaves out flags not given, so they cannot override the config file', () => {
    assert.deepEqual(gateway(['--interface', 'wg0']).flags, { interface: 'wg0' });
  });

  it('accepts --flag=value', () => {
    assert.deepEqual(gateway(['--interface=wg1', '--db=/x']).flags, { interface: 'wg1', db: '/x' });
  });

  it('--help and --version print and exit 0', () => {
    const help = parseArguments(['gateway', '--help']);
    assert.equal(help.command, 'exit');
    for (const flag of ['--interface', '--capture-interface', '--resolver', '--resolver-header', '--resolver-token-file', '--db', '--idle-timeout',
      '--evict-interval', '--handshake-grace', '--metrics', '--admin', '--admin-token-file', '--websocket', '--tls-cert', '--tls-key', '--config', '--log-level']) {
      assert.ok((help as { output: string }).output.includes(flag), flag);
    }
    const version = parseArguments(['--version']);
    assert.deepEqual(version, { command: 'exit', output: '0.1.0\n' });
  });

  it('parses ws-connect', () => {
    assert.deepEqual(parseArguments(['ws-connect', '--url', 'wss://gw:443/', '--listen', '127.0.0.1:51821', '--insecure']), {
      command: 'ws-connect', flags: { url: 'wss://gw:443/', listen: '127.0.0.1:51821', insecure: true },
    });
  });

  for (const [argv, message] of [
    [['gateway', '--bogus'], /unknown option '--bogus'/],
    [['gateway', '--interface'], /argument missing/],
    [['gateway', '--log-level', 'loud'], /'loud' is invalid/],
    [['gateway', 'extra'], /too many arguments/],
    [['nonsense'], /unknown command 'nonsense'/],
    [[], /expected a command: gateway or ws-connect/],
    [['ws-connect', '--listen', '127.0.0.1:1'], /--url/],
  ] as const) {
    it(`refuses ${JSON.stringify(argv)}`, () => {
      assert.throws(() => parseArguments(argv), (error: unknown) => error instanceof Refusal && message.test(error.message));
    });
  }
});

describe('gatewaySettings', () => {
  it('defaults: no resolver, no listeners, log level info', () => {
    const settings = settingsOf(['--interface', 'wg0', '--db', '/db']);
    assert.deepEqual(settings, {
      interface: 'wg0', create: null, captureInterface: null, resolver: null, db: '/db', idleTimeout: undefined,
      evictInterval: undefined, handshakeGrace: undefined, metrics: null, admin: null, websocket: null, logLevel: 'info',
    });
  });

  it('turns every flag into its setting', () => {
    const settings = settingsOf([
      '--interface', 'wg0', '--private-key-file', '/k', '--listen-port', '51820', '--capture-interface', 'eth0',
      '--resolver', 'https://cp.example/v1/peers/', '--resolver-header', 'X-Region: ams', '--resolver-header', '@/etc/h', '--resolver-token-file', '/t',
      '--db', '/db', '--idle-timeout', '600', '--evict-interval', '0.5', '--handshake-grace', '30', '--metrics', '[::1]:9100',
      '--admin', 'localhost:0', '--admin-token-file', '/a', '--websocket', '0.0.0.0:443', '--tls-cert', '/c', '--tls-key', '/k2', '--log-level', 'warn',
    ]);
    assert.deepEqual(settings, {
      interface: 'wg0', create: { privateKeyFile: '/k', listenPort: 51820 }, captureInterface: 'eth0',
      resolver: { url: 'https://cp.example/v1/peers', headers: [{ kind: 'value', name: 'X-Region', value: 'ams' }, { kind: 'file', path: '/etc/h' }], tokenFile: '/t' },
      db: '/db', idleTimeout: 600, evictInterval: 0.5, handshakeGrace: 30, metrics: { host: '::1', port: 9100 },
      admin: { listen: { host: 'localhost', port: 0 }, tokenFile: '/a' },
      websocket: { listen: { host: '0.0.0.0', port: 443 }, tls: { certFile: '/c', keyFile: '/k2' } }, logLevel: 'warn',
    });
  });

  const base = ['--interface', 'wg0', '--db', '/db'];
  for (const [argv, message] of [
    [['--db', '/db'], /--interface is required/],
    [['--interface', 'wg0'], /--db is required/],
    [['--interface', 'a/b', '--db', '/db'], /--interface: interface names cannot contain/],
    [['--interface', 'averyveryverylongname', '--db', '/db'], /--interface: interface names are 1 to 15 bytes/],
    [[...base, '--capture-interface', 'e th0'], /--capture-interface/],
    [[...base, '--listen-port', '51820'], /--private-key-file and --listen-port go together/],
    [[...base, '--private-key-file', '/k'], /--private-key-file and --listen-port go together/],
    [[...base, '--private-key-file', '/k', '--listen-port', '70000'], /--listen-port: expected a port from 1 to 65535/],
    [[...base, '--private-key-file', '/k', '--listen-port', '0'], /--listen-port/],
    [[...base, '--resolver', 'ftp://x/'], /--resolver: expected an http:\/\/ or https:\/\/ URL, got ftp:/],
    [[...base, '--resolver', 'not a url'], /--resolver: expected an http/],
    [[...base, '--resolver', 'http://user:pw@cp/'], /credentials/],
    [[...base, '--resolver', 'http://cp/?a=1'], /without \?query/],
    [[...base, '--resolver-header', 'X: y'], /--resolver-header needs --resolver/],
    [[...base, '--resolver-token-file', '/t'], /--resolver-token-file needs --resolver/],
    [[...base, '--resolver', 'http://cp/', '--resolver-header', 'no colon'], /--resolver-header #1: expected 'Name: value'/],
    [[...base, '--resolver', 'http://cp/', '--resolver-header', 'Bad Name: v'], /not an HTTP token/],
    [[...base, '--resolver', 'http://cp/', '--resolver-header', 'Host: x'], /set by the resolver itself/],
    [[...base, '--resolver', 'http://cp/', '--resolver-header', 'X: a\rb'], /control character/],
    [[...base, '--resolver', 'http://cp/', '--resolver-header', 'Authorization: Bearer x', '--resolver-token-file', '/t'], /both set the Authorization header/],
    [[...base, '--idle-timeout', 'abc'], /--idle-timeout: expected a non-negative number of seconds/],
    [[...base, '--evict-interval', '-1'], /--evict-interval/],
    [[...base, '--handshake-grace', '1e3'], /--handshake-grace/],
    [[...base, '--metrics', '9100'], /--metrics: expected HOST:PORT/],
    [[...base, '--metrics', '::1:9100'], /--metrics: expected HOST:PORT/],
    [[...base, '--metrics', '127.0.0.1:99999'], /--metrics: port 99999 is above 65535/],
    [[...base, '--metrics', '[10.0.0.1]:80'], /not an IPv6 address/],
    [[...base, '--metrics', 'bad_host!:80'], /not an IP address or host name/],
    [[...base, '--websocket', 'localhost:443'], /--websocket: expected a numeric IP address, got 'localhost'/],
    [[...base, '--admin', '127.0.0.1:9101'], /--admin needs --admin-token-file/],
    [[...base, '--admin-token-file', '/a'], /--admin-token-file needs --admin/],
    [[...base, '--websocket', '0.0.0.0:443', '--tls-cert', '/c'], /--tls-cert and --tls-key go together/],
    [[...base, '--tls-cert', '/c', '--tls-key', '/k'], /need --websocket/],
  ] as const) {
    it(`refuses ${argv.join(' ')}`, () => {
      assert.throws(() => settingsOf([...argv]), (error: unknown) => error instanceof Refusal && message.test(error.message));
    });
  }

  it('never echoes a header value in a refusal', () => {
    const secret = 'sk_live_do_not_print';
    assert.throws(() => settingsOf([...base, '--resolver', 'http://cp/', '--resolver-header', `Bad Name: ${secret}`]),
      (error: Error) => !error.message.includes(secret));
    assert.throws(() => settingsOf([...base, '--resolver', 'http://cp/', '--resolver-header', `X: ${secret}\u0001`]),
      (error: Error) => !error.message.includes(secret));
  });
});

describe('--config', () => {
  it('merges a JSON file with flags: flags override key by key, lists replace lists', () => {
    const path = dir.file('gw.json', JSON.stringify({
      interface: 'wg0', db: 'peers.db', idleTimeout: 900, evictInterval: 15, resolver: 'http://cp/v1/peers',
      resolverHeader: ['X-From: file', '@headers.txt'], resolverTokenFile: 'token', metrics: '127.0.0.1:9100',
    }));
    const flags = gateway(['--config', path, '--idle-timeout', '300', '--resolver-header', 'X-From: flag']);
    const settings = gatewaySettings(mergeSettings(readConfigFile(path), flags.flags));
    assert.equal(settings.interface, 'wg0');
    assert.equal(settings.idleTimeout, 300, 'the flag wins');
    assert.equal(settings.evictInterval, 15, 'the file fills what no flag gave');
    assert.equal(settings.db, dir.join('peers.db'), 'relative to the config file');
    assert.deepEqual(settings.resolver, { url: 'http://cp/v1/peers', headers: [{ kind: 'value', name: 'X-From', value: 'flag' }], tokenFile: dir.join('token') });
    assert.deepEqual(settings.metrics, { host: '127.0.0.1', port: 9100 });
  });

  it('resolves @FILE headers relative to the config file and keeps absolute paths', () => {
    const raw = configSettings({ resolverHeader: ['@h.txt', '@/etc/h'], db: '/var/lib/j.db', tlsCert: 'c.pem' }, '/etc/jitguard/gw.json');
    assert.deepEqual(raw, { resolverHeader: ['@/etc/jitguard/h.txt', '@/etc/h'], db: '/var/lib/j.db', tlsCert: '/etc/jitguard/c.pem' });
  });

  it('validates config values as it validates flags (numbers or strings)', () => {
    assert.equal(gatewaySettings(configSettings({ interface: 'wg0', db: '/d', handshakeGrace: '12' }, '/c.json')).handshakeGrace, 12);
    assert.throws(() => gatewaySettings(configSettings({ interface: 'wg0', db: '/d', idleTimeout: -5 }, '/c.json')), /--idle-timeout/);
    assert.throws(() => gatewaySettings(configSettings({ interface: 7, db: '/d' }, '/c.json')), /--interface/);
  });

  for (const [name, content, message] of [
    ['not JSON', '{"interface": "wg0",', /not valid JSON/],
    ['an array', '[]', /expected a JSON object/],
    ['an unknown key', '{"interfce": "wg0"}', /unknown key 'interfce'/],
    ['a flag spelled with dashes', '{"idle-timeout": 5}', /unknown key 'idle-timeout'/],
  ] as const) {
    it(`refuses a config file that is ${name}`, () => {
      const path = dir.file(`bad-${name.replaceAll(' ', '-')}.json`, content);
      assert.throws(() => readConfigFile(path), (error: unknown) => error instanceof Refusal && message.test(error.message));
    });
  }

  it('refuses a config file that cannot be read, naming the errno', () => {
    assert.throws(() => readConfigFile(dir.join('missing.json')), /--config .*missing\.json: cannot read it \(ENOENT\)/);
  });

  it('does not quote the file in a JSON refusal (it may hold a header value)', () => {
    const path = dir.file('secret.json', '{"resolverHeader": ["X-Key: sk_secret_value"] oops}');
    assert.throws(() => readConfigFile(path), (error: Error) => !error.message.includes('sk_secret_value'));
  });
});

describe('parseListenAddress', () => {
  it('takes IPv4, bracketed IPv6, host names and port 0', () => {
    assert.deepEqual(parseListenAddress('0.0.0.0:443', '--x'), { host: '0.0.0.0', port: 443 });
    assert.deepEqual(parseListenAddress('[::]:0', '--x'), { host: '::', port: 0 });
    assert.deepEqual(parseListenAddress('gw.internal:8080', '--x'), { host: 'gw.internal', port: 8080 });
  });
});
