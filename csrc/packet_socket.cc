#include "packet_socket.h"

namespace jitguard {

void InitPacketSocket(Napi::Env, Napi::Object) {}

}  // namespace jitguard
