#include "errors.h"

#include <string.h>

#include <string>

namespace jitguard {

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall) {
  std::string message = std::string(syscall) + " failed: " + strerror(err);
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("syscall", Napi::String::New(env, syscall));
  return error;
}

}  // namespace jitguard
