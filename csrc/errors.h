// The one error shape that crosses the native boundary: an Error whose `code` is the errno
// name ('ENODEV'), with `errno` (positive) and `syscall`. TypeScript wraps it into its typed
// errors; C++ never decides policy about what an errno means.
#pragma once

#include <napi.h>

namespace jitguard {

// Builds the error for a failed system call; `err` is a positive errno value.
Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall);

}  // namespace jitguard
