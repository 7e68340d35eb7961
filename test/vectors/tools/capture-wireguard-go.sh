#!/usr/bin/env bash
# Captures real WireGuard handshake initiations sent by wireguard-go (Debian package) and
# writes them as a vector file. Needs root, /dev/net/tun, iproute2, wireguard-go,
# wireguard-tools (wg) and node. Nothing answers the initiations: each client retries every
# ~5 s (REKEY_TIMEOUT) with a fresh ephemeral and timestamp while its ping has packets queued.
#
#   netns jgv-cl: N wireguard-go clients (jgvwg0..), each with its own private key and a
#                 fixed listen-port, peer = gateway public key, endpoint = 10.231.0.2:51820
#                 (even clients) or [fd00:6a67::2]:51820 (odd clients), ping through each tunnel.
#   netns jgv-gw: udp-sink.mjs listening on 0.0.0.0:51820 and [::]:51820, recording payloads.
#
# Usage: capture-wireguard-go.sh [out.json] [clients=6] [seconds=32]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="${1:-$HERE/../wireguard-go.json}"
N="${2:-6}"
SECS="${3:-32}"
export WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1
WORK="$(mktemp -d /tmp/jgv-capture.XXXXXX)"
CL=jgv-cl GW=jgv-gw
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for ((i = 0; i < N; i++)); do rm -f "/var/run/wireguard/jgvwg$i.sock"; done
  ip netns del "$CL" 2>/dev/null || true
  ip netns del "$GW" 2>/dev/null || true
}
trap cleanup EXIT
cleanup

ip netns add "$CL"
ip netns add "$GW"
ip link add jgv-c netns "$CL" type veth peer name jgv-g netns "$GW"
ip -n "$CL" addr add 10.231.0.1/24 dev jgv-c
ip -n "$GW" addr add 10.231.0.2/24 dev jgv-g
ip -n "$CL" addr add fd00:6a67::1/64 dev jgv-c nodad
ip -n "$GW" addr add fd00:6a67::2/64 dev jgv-g nodad
for ns in "$CL" "$GW"; do ip -n "$ns" link set lo up; done
ip -n "$CL" link set jgv-c up
ip -n "$GW" link set jgv-g up

GW_PRIV="$(wg genkey)"
GW_PUB="$(printf '%s' "$GW_PRIV" | wg pubkey)"

ip netns exec "$GW" node "$HERE/udp-sink.mjs" 0.0.0.0 51820 "$((SECS + 3))" >"$WORK/sink4.jsonl" &
PIDS+=($!)
ip netns exec "$GW" node "$HERE/udp-sink.mjs" :: 51820 "$((SECS + 3))" >"$WORK/sink6.jsonl" &
PIDS+=($!)
sleep 1

CLIENTS_JSON=""
for ((i = 0; i < N; i++)); do
  IF="jgvwg$i"
  PORT=$((40000 + i))
  ip netns exec "$CL" wireguard-go -f "$IF" >"$WORK/$IF.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 50); do [ -S "/var/run/wireguard/$IF.sock" ] && break; sleep 0.1; done
  wg genkey >"$WORK/$IF.key"
  PUB="$(wg pubkey <"$WORK/$IF.key")"
  if ((i % 2 == 0)); then EP="10.231.0.2:51820"; else EP="[fd00:6a67::2]:51820"; fi
  ip netns exec "$CL" wg set "$IF" private-key "$WORK/$IF.key" listen-port "$PORT" \
    peer "$GW_PUB" endpoint "$EP" allowed-ips "10.232.$i.2/32"
  ip -n "$CL" addr add "10.232.$i.1/24" dev "$IF"
  ip -n "$CL" link set "$IF" up
  CLIENTS_JSON+="${CLIENTS_JSON:+,}{\"name\":\"$IF\",\"listenPort\":$PORT,\"publicKey\":\"$PUB\",\"endpoint\":\"$EP\"}"
done
for ((i = 0; i < N; i++)); do
  ip netns exec "$CL" ping -q -c "$SECS" -i 1 -W 1 "10.232.$i.2" >/dev/null 2>&1 &
  PIDS+=($!)
done
sleep "$((SECS + 4))"

WGGO_VER="$(wireguard-go --version | head -n1)"
WGGO_DEB="$(dpkg-query -W -f '${Version}' wireguard-go 2>/dev/null || echo unknown)"
WG_VER="$(wg --version)"
cat >"$WORK/meta.json" <<JSON
{
  "source": "wireguard-go",
  "producedBy": "test/vectors/tools/capture-wireguard-go.sh $N $SECS",
  "tools": {
    "wireguard-go": "$WGGO_VER (Debian package $WGGO_DEB)",
    "wg": "$WG_VER",
    "node": "$(node --version)",
    "kernel": "$(uname -r)"
  },
  "responderPrivateKey": "$GW_PRIV",
  "responderPublicKey": "$GW_PUB",
  "clients": [$CLIENTS_JSON]
}
JSON
node "$HERE/build-vectors.mjs" "$WORK/meta.json" "$WORK/sink4.jsonl" "$WORK/sink6.jsonl" >"$OUT"
echo "wrote $OUT"
rm -rf "$WORK"
