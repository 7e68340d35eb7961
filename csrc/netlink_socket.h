// A netlink socket (generic or route) whose request/response exchanges run on the libuv
// thread pool. TypeScript encodes every request and decodes every reply; this layer only
// moves bytes, tracks sequence numbers and knows when an exchange is finished.
#pragma once

#include <napi.h>

namespace jitguard {

void InitNetlinkSocket(Napi::Env env, Napi::Object exports);

}  // namespace jitguard
