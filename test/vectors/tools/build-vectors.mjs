#!/usr/bin/env node
// Turns a capture (udp-sink JSON lines + the key map written by a capture script) into a
// vector file under test/vectors/. Every datagram of 148 bytes whose first byte is 1 becomes
// one initiation vector; the expected initiator key is looked up by the UDP source port,
// which each capture script pins per client (`listen-port`).
// Usage: node build-vectors.mjs <meta.json> <sink.jsonl>... > out.json
import { readFileSync } from 'node:fs';

const [metaPath, ...sinkPaths] = process.argv.slice(2);
if (!metaPath || sinkPaths.length === 0) {
  process.stderr.write('usage: build-vectors.mjs <meta.json> <sink.jsonl>...\n');
  process.exit(2);
}
const meta = JSON.parse(readFileSync(metaPath, 'utf8'));
const byPort = new Map(meta.clients.map((c) => [c.listenPort, c]));
const initiations = [];
for (const p of sinkPaths) {
  for (const line of readFileSync(p, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const d = JSON.parse(line);
    if (d.len !== 148 || !d.hex.startsWith('01000000')) continue;
    const port = Number(d.from.slice(d.from.lastIndexOf(':') + 1));
    const client = byPort.get(port);
    if (!client) throw new Error(`datagram from unknown port ${d.from}`);
    initiations.push({
      packet: d.hex,
      initiatorPublicKey: client.publicKey,
      client: client.name,
      transport: d.family === 'IPv6' ? 'ipv6' : 'ipv4',
      from: d.from,
      capturedAtUnixMs: d.receivedAtUnixMs,
    });
  }
}
initiations.sort((a, b) => a.capturedAtUnixMs - b.capturedAtUnixMs);
const out = {
  source: meta.source,
  producedBy: meta.producedBy,
  tools: meta.tools,
  capturedOn: new Date(initiations[0]?.capturedAtUnixMs ?? Date.now()).toISOString(),
  responderPrivateKey: meta.responderPrivateKey,
  responderPublicKey: meta.responderPublicKey,
  initiations,
};
process.stdout.write(JSON.stringify(out, null, 2) + '\n');
process.stderr.write(`${initiations.length} initiations\n`);
if (initiations.length === 0) process.exit(1);
