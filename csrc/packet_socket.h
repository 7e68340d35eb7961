// PacketSocket: an AF_PACKET (SOCK_DGRAM) socket with a classic-BPF filter attached before
// bind, read on the event loop with uv_poll, a bounded batch of packets per wake-up delivered
// to JavaScript in one callback. Syscalls and wire structs only: the filter program, argument
// validation and every policy decision live in lib/capture/.
//
// JavaScript surface (see lib/capture/native.ts for the typed view):
//   new PacketSocket(ifindex, filter: Buffer, onPackets, { batch, rcvbuf, slot })
//   .ref() / .unref() / .stats() -> { packets, drops } / .close() / .closed
//   PacketSocket.interfaceIndex(name) -> number      (if_nametoindex)
//   PacketSocket.interfaceName(index) -> string      (if_indextoname)
#pragma once

#include <napi.h>

namespace jitguard {

void InitPacketSocket(Napi::Env env, Napi::Object exports);

}  // namespace jitguard
