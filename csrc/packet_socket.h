// AF_PACKET capture socket with a classic-BPF filter attached before bind, read on the
// event loop. (Filled in by the capture work; see lib/capture/.)
#pragma once

#include <napi.h>

namespace jitguard {

void InitPacketSocket(Napi::Env env, Napi::Object exports);

}  // namespace jitguard
