#include "errors.h"

#include <string.h>

#include <string>

namespace jitguard {

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall) {
  #ifdef __GLIBC__
  const char* name = strerrorname_np(err);
#else
  const char* name = nullptr;  // TypeScript fills `code` from os.constants.errno
#endif
  std::string message = std::string(syscall) + " failed: " + strerror(err);
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, name != nullptr ? name : "EUNKNOWN"));
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("syscall", Napi::String::New(env, syscall));
  return error;
}

}  // namespace jitguard
