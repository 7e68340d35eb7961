#include "errors.h"

#include <string.h>

#include <string>

namespace jitguard {

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall) {
  #ifdef __GLIBC__
  const char* name = strerrorname_np(err);
#else
  const char* name = nullptr;
#endif
  std::string message = std::string(syscall) + " failed: " + strerror(err);
  Napi::Error error = Napi::Error::New(env, message);
  // Without glibc's name table, `code` is left unset and TypeScript names the errno.
  if (name != nullptr) error.Set("code", Napi::String::New(env, name));
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("syscall", Napi::String::New(env, syscall));
  return error;
}

}  // namespace jitguard
