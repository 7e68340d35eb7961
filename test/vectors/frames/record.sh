#!/usr/bin/env bash
# Records real WireGuard packets (wireguard-go v0.0.20220316, Debian bookworm) as IP packets
# in hex, one file per packet, for the handshake-filter unit tests. Needs root, wireguard-go,
# wireguard-tools (wg) and tcpdump. Everything happens in two network namespaces this script
# creates and deletes; nothing touches the host's own interfaces.
#
#   ns A (client):  wireguard-go device, peer endpoint 10.77.0.2:51820 or [fd77::2]:51820
#   ns B (server):  veth 10.77.0.2/24, fd77::2/64, wireguard-go device listening on 51820
#
# tcpdump in B writes a pcap; the Ethernet headers (14 bytes) are stripped and each packet is
# stored as hex of its IP header onwards (what a SOCK_DGRAM packet socket sees at offset 0).
set -euo pipefail
out=$(cd "$(dirname "$0")" && pwd)
tag=jgrec$$
A=${tag}a B=${tag}b
# wireguard-go keeps its UAPI socket in /var/run/wireguard/<name>.sock, shared by all
# namespaces: give each device a unique name.
WA=jga$$ WB=jgb$$
work=$(mktemp -d)
umask 077
cleanup() {
  set +e
  [[ -n ${TCPDUMP_PID:-} ]] && kill "$TCPDUMP_PID" 2>/dev/null && wait "$TCPDUMP_PID" 2>/dev/null
  ip netns pids "$A" 2>/dev/null | xargs -r kill 2>/dev/null
  ip netns pids "$B" 2>/dev/null | xargs -r kill 2>/dev/null
  sleep 0.3
  ip netns del "$A" 2>/dev/null; ip netns del "$B" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$A"; ip netns add "$B"
ip link add va netns "$A" type veth peer name vb netns "$B"
for ns in "$A" "$B"; do ip -n "$ns" link set lo up; done
ip -n "$A" addr add 10.77.0.1/24 dev va; ip -n "$A" addr add fd77::1/64 dev va nodad
ip -n "$B" addr add 10.77.0.2/24 dev vb; ip -n "$B" addr add fd77::2/64 dev vb nodad
ip -n "$A" link set va up; ip -n "$B" link set vb up

wg genkey >"$work/a.key"; wg pubkey <"$work/a.key" >"$work/a.pub"
wg genkey >"$work/b.key"; wg pubkey <"$work/b.key" >"$work/b.pub"
export WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1
ip netns exec "$A" wireguard-go "$WA" 2>/dev/null
ip netns exec "$B" wireguard-go "$WB" 2>/dev/null
ip netns exec "$B" wg set "$WB" private-key "$work/b.key" listen-port 51820 \
  peer "$(cat "$work/a.pub")" allowed-ips 10.99.0.1/32,fd99::1/128
ip netns exec "$A" wg set "$WA" private-key "$work/a.key" listen-port 40404 \
  peer "$(cat "$work/b.pub")" allowed-ips 10.99.0.2/32,fd99::2/128 endpoint 10.77.0.2:51820
ip -n "$A" addr add 10.99.0.1/24 dev "$WA"; ip -n "$A" addr add fd99::1/64 dev "$WA" nodad
ip -n "$B" addr add 10.99.0.2/24 dev "$WB"; ip -n "$B" addr add fd99::2/64 dev "$WB" nodad
ip -n "$A" link set "$WA" up; ip -n "$B" link set "$WB" up

ip netns exec "$B" tcpdump -i vb -U -w "$work/cap.pcap" 'udp or icmp or icmp6 or tcp' 2>/dev/null &
TCPDUMP_PID=$!
sleep 1
# IPv4: a full handshake (initiation, response) then data.
ip netns exec "$A" ping -c 2 -W 2 10.99.0.2 >/dev/null
# IPv6 outer: point the peer at the v6 endpoint and force a new handshake by restarting A's
# device state (a new wireguard-go on a fresh interface would also do).
ip netns exec "$A" wg set "$WA" peer "$(cat "$work/b.pub")" remove
ip netns exec "$A" wg set "$WA" peer "$(cat "$work/b.pub")" allowed-ips 10.99.0.2/32,fd99::2/128 endpoint '[fd77::2]:51820'
ip netns exec "$A" ping -c 2 -W 2 10.99.0.2 >/dev/null
# Initiations that get no answer: B's device down, so A retries (Rekey-Timeout 5 s).
ip -n "$B" link set "$WB" down 2>/dev/null || true
ip netns exec "$B" wg set "$WB" listen-port 51821
ip netns exec "$A" wg set "$WA" peer "$(cat "$work/b.pub")" remove
ip netns exec "$A" wg set "$WA" peer "$(cat "$work/b.pub")" allowed-ips 10.99.0.2/32,fd99::2/128 endpoint 10.77.0.2:51820
ip netns exec "$A" ping -c 1 -W 1 10.99.0.2 >/dev/null 2>&1 || true
# Non-WireGuard traffic: ICMP echo and a TCP SYN (refused).
ip netns exec "$A" ping -c 1 -W 1 10.77.0.2 >/dev/null
ip netns exec "$A" ping -6 -c 1 -W 1 fd77::2 >/dev/null
ip netns exec "$A" bash -c 'exec 3<>/dev/tcp/10.77.0.2/9' 2>/dev/null || true
sleep 1
kill "$TCPDUMP_PID"; wait "$TCPDUMP_PID" 2>/dev/null || true; TCPDUMP_PID=

# One hex file per packet: <index>-<summary>.hex
tcpdump -r "$work/cap.pcap" -nn -x 2>/dev/null >"$work/cap.txt"
python3 - "$work/cap.txt" "$out/recorded" <<'PY'
import os, re, sys
src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst, exist_ok=True)
os.chmod(dst, 0o755)
for f in os.listdir(dst):
    os.remove(os.path.join(dst, f))
packets, cur = [], None
for line in open(src):
    if not line.startswith('\t'):
        cur = [line.strip(), '']
        packets.append(cur)
    else:
        cur[1] += ''.join(line.split(':', 1)[1].split())
for i, (summary, hexdata) in enumerate(packets):
    data = bytes.fromhex(hexdata)
    v = data[0] >> 4
    if v == 4:
        proto, hl = data[9], (data[0] & 15) * 4
    else:
        proto, hl = data[6], 40
    kind = {1: 'icmp', 6: 'tcp', 58: 'icmp6'}.get(proto, 'p%d' % proto)
    if proto == 17:
        udp = data[hl:]
        kind = 'udp%d-len%d-type%d' % (int.from_bytes(udp[2:4], 'big'), int.from_bytes(udp[4:6], 'big'), udp[8])
    name = '%02d-ip%d-%s.hex' % (i, v, kind)
    with open(os.path.join(dst, name), 'w') as fh:
        fh.write(hexdata + '\n')
    os.chmod(os.path.join(dst, name), 0o644)
    print(name, '|', summary)
PY
