#include "text.h"

#include <napi.h>

#include "surrogate_escape.h"

namespace credwatch {

namespace {

bool IsAscii(const unsigned char* p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (p[i] >= 0x80) return false;
  }
  return true;
}

}  // namespace


napi_value MakeRecordString(napi_env env, const char* data, size_t len, std::u16string& scratch) {
  napi_value result = nullptr;
  napi_status status;
  auto* bytes = reinterpret_cast<const unsigned char*>(data);
  if (IsAscii(bytes, len)) {
    status = napi_create_string_latin1(env, data, len, &result);
  } else {
    DecodeSurrogateEscape(bytes, len, scratch);
    status = napi_create_string_utf16(env, scratch.data(), scratch.size(), &result);
  }
  NAPI_THROW_IF_FAILED(env, status, nullptr);
  return result;
}

}  // namespace credwatch
