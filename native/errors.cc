#include "errors.h"

#include <cstring>
#include <string>

namespace credwatch {

Napi::Value MakeAuditError(Napi::Env env, const SysError& e) {
  std::string message = e.syscall;
  if (e.detail != nullptr) message += std::string(" (") + e.detail + ")";
  message += ": ";
  message += strerror(e.err);
  auto* data = env.GetInstanceData<AddonData>();
  if (data != nullptr && !data->auditErrorClass.IsEmpty()) {
    return data->auditErrorClass.New({Napi::String::New(env, message), Napi::String::New(env, e.syscall),
                                      Napi::Number::New(env, e.err)});
  }
  Napi::Object err = Napi::Error::New(env, message).Value();
  err.Set("syscall", Napi::String::New(env, e.syscall));
  err.Set("errno", Napi::Number::New(env, e.err));
  return err;
}

void ThrowAuditError(Napi::Env env, const SysError& e) { throw Napi::Error(env, MakeAuditError(env, e)); }

}  // namespace credwatch
