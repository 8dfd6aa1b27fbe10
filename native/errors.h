// Errors cross the native boundary as the TypeScript class AuditError (src/native/errors.ts), which
// the loader hands to the addon at init, the way better-sqlite3 receives SqliteError. Native code
// supplies the syscall (or audit request) name and the raw errno; the class derives `code` from it.
#pragma once

#include <napi.h>

namespace credwatch {

// A failed system call or kernel audit request, thrown inside the plain C++ layers (control.cc,
// sd_notify.cc) that do not know about JavaScript; the N-API layer converts it with MakeAuditError.
struct SysError {
  const char* syscall;  // "socket", "sendto", "recvfrom", "AUDIT_SET", "AUDIT_ADD_RULE", ...
  int err;              // positive errno
  const char* detail;   // optional: which field or argument, may be nullptr
};

// Per-addon state kept in the environment's instance data.
struct AddonData {
  Napi::FunctionReference auditErrorClass;
};

// Builds an AuditError(message, syscall, errno); falls back to an Error with the same properties when
// the class has not been registered (the loader always registers it).
Napi::Value MakeAuditError(Napi::Env env, const SysError& e);

// Throws MakeAuditError as a JavaScript exception (via a C++ Napi::Error).
[[noreturn]] void ThrowAuditError(Napi::Env env, const SysError& e);

}  // namespace credwatch
