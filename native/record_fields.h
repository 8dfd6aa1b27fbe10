// Just enough audit-record parsing for the reader thread's triage (native/triage.h): the header
// "audit(SECONDS.MILLIS:SERIAL): " and the space-separated name=value fields after it, with the
// kernel's two value encodings (a "quoted" string, or bare hex when the value holds a space, a quote,
// a control character or a non-ASCII byte). The TypeScript parser (src/audit/record.ts) is the full
// one; this reader only has to recognise the plain shapes and report anything else as not plain, so
// that the triage can leave such events to TypeScript. Pure code: no N-API, no syscalls (fuzzable).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace credwatch {

struct RecordHeader {
  uint64_t timeMs = 0;
  uint64_t serial = 0;
  size_t bodyOffset = 0;  // first byte after "): "
};

// False when the text does not start with a well-formed "audit(S.MMM:N): " header.
bool ParseRecordHeader(const char* text, size_t len, RecordHeader* out);

// One name=value field. `value` excludes the quotes of a quoted value.
struct Field {
  const char* name;
  size_t nameLen;
  const char* value;
  size_t valueLen;
  bool quoted;
};

class FieldCursor {
 public:
  FieldCursor(const char* text, size_t len, size_t from) : p_(text + from), end_(text + len) {}
  // Advances to the next field; false at the end. A token without '=' is skipped.
  bool Next(Field* f);
  // True when a quoted value ran to the end of the text without its closing quote.
  bool malformed() const { return malformed_; }

 private:
  const char* p_;
  const char* end_;
  bool malformed_ = false;
};

inline bool NameIs(const Field& f, const char* name) {
  size_t i = 0;
  for (; i < f.nameLen; i++) {
    if (name[i] == '\0' || name[i] != f.name[i]) return false;
  }
  return name[i] == '\0';
}

// Unsigned decimal; false on anything else (empty, sign, overflow past 2^63).
bool ParseUnsigned(const char* p, size_t n, uint64_t* out);

// The value as bytes: quoted -> as is; otherwise even-length hex -> decoded; "(null)" and other
// bare non-hex words -> false (the caller treats the event as not plain).
bool DecodeValue(const Field& f, std::string* out);

}  // namespace credwatch
