// Record text to JavaScript strings without losing bytes. Kernel audit text is ASCII in practice
// (untrusted values are hex-encoded), so the fast path is a Latin-1 copy; anything else is decoded as
// UTF-8 with the "surrogateescape" convention the rest of credwatch uses (src/audit/event.ts): each
// byte that is not part of valid UTF-8 becomes the lone surrogate U+DC80..U+DCFF, so it round-trips.
#pragma once

#include <node_api.h>

#include <cstddef>
#include <string>

#include "surrogate_escape.h"  // DecodeSurrogateEscape, also used by tests through the addon

namespace credwatch {

// `scratch` is reused between calls to avoid an allocation per non-ASCII record.
napi_value MakeRecordString(napi_env env, const char* data, size_t len, std::u16string& scratch);


}  // namespace credwatch
