// The one error shape that crosses the native boundary: an Error with `errno` (positive) and
// `syscall`. TypeScript names the errno ('ENODEV', from os.constants.errno) and wraps it into
// its typed errors; C++ never decides policy about what an errno means. No `code` is set here:
// glibc's name table (strerrorname_np) needs glibc 2.32, and the addon targets glibc 2.28.
#pragma once

#include <napi.h>

namespace jitguard {

// Builds the error for a failed system call; `err` is a positive errno value.
Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall);

}  // namespace jitguard
