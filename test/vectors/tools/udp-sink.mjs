#!/usr/bin/env node
// Records every UDP datagram that reaches <addr>:<port> as one JSON line
// { receivedAtUnixMs, family, from, len, hex } on stdout. Used by the vector capture
// scripts inside the "gateway" network namespace: nothing answers, we only listen.
// Usage: node udp-sink.mjs <bind-address> <port> <seconds>
import dgram from 'node:dgram';

const [addr = '0.0.0.0', portStr = '51820', secondsStr = '30'] = process.argv.slice(2);
const type = addr.includes(':') ? 'udp6' : 'udp4';
const sock = dgram.createSocket({ type, ipv6Only: type === 'udp6' });
sock.on('message', (msg, rinfo) => {
  const line = {
    receivedAtUnixMs: Date.now(),
    family: rinfo.family,
    from: rinfo.family === 'IPv6' ? `[${rinfo.address}]:${rinfo.port}` : `${rinfo.address}:${rinfo.port}`,
    len: msg.length,
    hex: msg.toString('hex'),
  };
  process.stdout.write(JSON.stringify(line) + '\n');
});
sock.bind(Number(portStr), addr, () => {
  process.stderr.write(`udp-sink listening on ${addr} ${portStr} for ${secondsStr}s\n`);
});
setTimeout(() => { sock.close(); }, Number(secondsStr) * 1000);
