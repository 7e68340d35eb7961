// Module entry point. Each native concern registers its own exports; this file only wires
// them together so that a new concern never has to touch another one's file.
#include <napi.h>

#include "netlink_socket.h"
#include "packet_socket.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  jitguard::InitNetlinkSocket(env, exports);
  jitguard::InitPacketSocket(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(jitguard, Init)
