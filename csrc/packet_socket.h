// PacketSocket: an AF_PACKET (SOCK_DGRAM) socket with a classic-BPF filter attached before
// bind, read on the event loop with uv_poll, a bounded batch of packets per wake-up delivered
// to JavaScript in one callback. Syscalls and wire structs only: the filter program, argument
// validation and every policy decision live in lib/capture/.
//
// JavaScript surface (see lib/capture/native.ts for the typed view):
//   new PacketSocket(ifindex, filter: Buffer, onPackets, { batch, rcvbuf, slot, netns })
//   .ref() / .unref() / .stats() -> { packets, drops, wakeups } / .close() / .closed
//   .ifindex                          the bound interface index (0: every interface)
//   .resume()                         reads again after an error was delivered
//   .link(name) -> { ifindex, up }    the interface in the socket's namespace (SIOCGIFINDEX/FLAGS)
//   .bind(ifindex)                    binds again (an interface deleted and created anew)
//   PacketSocket.interfaceIndex(name, netns) -> number                 (if_nametoindex there)
//   PacketSocket.localAddresses(netns) -> [{ name, family, address }]   (getifaddrs there)
#pragma once

#include <napi.h>

namespace jitguard {

void InitPacketSocket(Napi::Env env, Napi::Object exports);

}  // namespace jitguard
