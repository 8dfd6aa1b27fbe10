// Bytes to UTF-16 with the "surrogateescape" convention (src/audit/bytes.ts is the TypeScript twin):
// valid UTF-8 decodes normally, every other byte 0xNN becomes the lone surrogate U+DCNN. Pure code
// with no N-API dependency so fuzz/netlink_fuzz.cc can run it under AddressSanitizer.
#pragma once

#include <cstddef>
#include <string>

namespace credwatch {

// `out` is cleared first; callers reuse it to avoid an allocation per record.
void DecodeSurrogateEscape(const unsigned char* p, size_t n, std::u16string& out);

}  // namespace credwatch
