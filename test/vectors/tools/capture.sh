#!/usr/bin/env bash
# Captures real WireGuard handshake initiations sent by an implementation we did not write
# and writes them as a vector file (format: see test/vectors/README.md).
#
#   capture.sh <wireguard-go|kernel> <out.json> [clients=6] [seconds=32]
#
# Needs root, iproute2, wireguard-tools (wg), node, and either wireguard-go + /dev/net/tun
# (on the host) or a kernel with WireGuard (run it inside the VM: capture-kernel-in-vm.sh).
# Nothing answers the initiations: each client re-sends one (fresh ephemeral, fresh
# timestamp) every ~5 s (REKEY_TIMEOUT) while its ping keeps packets queued.
#
#   netns jgv-cl: N clients jgvwg0.. (wireguard-go processes, or kernel `type wireguard` links),
#                 each with its own `wg genkey` private key and a fixed listen-port 40000+i,
#                 peer = gateway public key, endpoint 10.231.0.2:51820 (even i) or
#                 [fd00:6a67::2]:51820 (odd i); `ping` through each tunnel for <seconds>.
#   netns jgv-gw: udp-sink.mjs on 0.0.0.0:51820 and [::]:51820 records every payload and
#                 its arrival time (Date.now() of the same machine as the sender).
set -euo pipefail
umask 077
HERE="$(cd "$(dirname "$0")" && pwd)"
IMPL="${1:?usage: capture.sh <wireguard-go|kernel> <out.json> [clients] [seconds]}"
OUT="${2:?usage: capture.sh <wireguard-go|kernel> <out.json> [clients] [seconds]}"
N="${3:-6}"
SECS="${4:-32}"
case "$IMPL" in wireguard-go | kernel) ;; *) echo "unknown implementation $IMPL" >&2; exit 2 ;; esac
export WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1
WORK="$(mktemp -d "${TMPDIR:-/tmp}/jgv-capture.XXXXXX")"
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

ip netns exec "$GW" node "$HERE/udp-sink.mjs" 0.0.0.0 51820 "$((SECS + 5))" >"$WORK/sink4.jsonl" &
PIDS+=($!)
ip netns exec "$GW" node "$HERE/udp-sink.mjs" :: 51820 "$((SECS + 5))" >"$WORK/sink6.jsonl" &
PIDS+=($!)
# wait until both sinks are bound (node may start slowly, e.g. inside the VM)
for _ in $(seq 300); do
  n="$(ip netns exec "$GW" ss -Hlun 'sport = :51820' | wc -l)"
  ((n >= 2)) && break
  sleep 0.1
done

CLIENTS_JSON=""
for ((i = 0; i < N; i++)); do
  IF="jgvwg$i"
  PORT=$((40000 + i))
  if [[ $IMPL == wireguard-go ]]; then
    ip netns exec "$CL" wireguard-go -f "$IF" >"$WORK/$IF.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do [ -S "/var/run/wireguard/$IF.sock" ] && break; sleep 0.1; done
  else
    ip -n "$CL" link add "$IF" type wireguard
  fi
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
sleep "$((SECS + 6))"

if [[ $IMPL == wireguard-go ]]; then
  SOURCE=wireguard-go
  IMPL_VER="$(wireguard-go --version | head -n1) (Debian package $(dpkg-query -W -f '${Version}' wireguard-go 2>/dev/null || echo unknown))"
else
  SOURCE=linux-kernel
  IMPL_VER="wireguard module $(cat /sys/module/wireguard/version 2>/dev/null || echo '?') in Linux $(uname -r) ($(cut -d' ' -f1-3,5- /proc/version | head -c 200))"
fi
cat >"$WORK/meta.json" <<JSON
{
  "source": "$SOURCE",
  "producedBy": "test/vectors/tools/capture.sh $IMPL <out> $N $SECS",
  "tools": {
    "implementation": "$IMPL_VER",
    "wg": "$(wg --version)",
    "node": "$(node --version)",
    "kernel": "$(uname -r)"
  },
  "responderPrivateKey": "$GW_PRIV",
  "responderPublicKey": "$GW_PUB",
  "clients": [$CLIENTS_JSON]
}
JSON
node "$HERE/build-vectors.mjs" "$WORK/meta.json" "$WORK/sink4.jsonl" "$WORK/sink6.jsonl" >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "wrote $OUT" >&2
[ -n "${KEEP:-}" ] && echo "kept $WORK" >&2 || rm -rf "$WORK"
