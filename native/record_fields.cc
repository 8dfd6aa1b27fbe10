#include "record_fields.h"

#include <cstring>

namespace credwatch {

namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

bool ParseUnsigned(const char* p, size_t n, uint64_t* out) {
  if (n == 0 || n > 19) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9') return false;
    v = v * 10 + static_cast<uint64_t>(p[i] - '0');
  }
  *out = v;
  return true;
}

bool ParseRecordHeader(const char* text, size_t len, RecordHeader* out) {
  static const char kPrefix[] = "audit(";
  const size_t prefixLen = sizeof(kPrefix) - 1;
  if (len < prefixLen || std::memcmp(text, kPrefix, prefixLen) != 0) return false;
  size_t i = prefixLen;
  size_t start = i;
  while (i < len && text[i] >= '0' && text[i] <= '9') i++;
  uint64_t secs = 0;
  if (i >= len || text[i] != '.' || !ParseUnsigned(text + start, i - start, &secs)) return false;
  start = ++i;
  while (i < len && text[i] >= '0' && text[i] <= '9') i++;
  uint64_t millis = 0;
  if (i >= len || text[i] != ':' || i - start != 3 || !ParseUnsigned(text + start, 3, &millis)) return false;
  start = ++i;
  while (i < len && text[i] >= '0' && text[i] <= '9') i++;
  uint64_t serial = 0;
  if (i + 1 >= len || text[i] != ')' || text[i + 1] != ':' || !ParseUnsigned(text + start, i - start, &serial)) {
    return false;
  }
  if (secs > (UINT64_C(1) << 43)) return false;  // keeps timeMs exact in a JavaScript number
  out->timeMs = secs * 1000 + millis;
  out->serial = serial;
  i += 2;
  if (i < len && text[i] == ' ') i++;
  out->bodyOffset = i;
  return true;
}

bool FieldCursor::Next(Field* f) {
  for (;;) {
    while (p_ < end_ && *p_ == ' ') p_++;
    if (p_ >= end_) return false;
    const char* tokenStart = p_;
    const char* eq = nullptr;
    while (p_ < end_ && *p_ != ' ' && *p_ != '=') p_++;
    if (p_ >= end_ || *p_ == ' ') continue;  // a bare word: not a field
    eq = p_;
    f->name = tokenStart;
    f->nameLen = static_cast<size_t>(eq - tokenStart);
    p_ = eq + 1;
    if (p_ < end_ && *p_ == '"') {
      const char* close = static_cast<const char*>(std::memchr(p_ + 1, '"', static_cast<size_t>(end_ - p_ - 1)));
      if (close == nullptr) {
        malformed_ = true;
        f->value = p_ + 1;
        f->valueLen = static_cast<size_t>(end_ - p_ - 1);
        f->quoted = true;
        p_ = end_;
        return true;
      }
      f->value = p_ + 1;
      f->valueLen = static_cast<size_t>(close - p_ - 1);
      f->quoted = true;
      p_ = close + 1;
      return true;
    }
    const char* v = p_;
    while (p_ < end_ && *p_ != ' ') p_++;
    f->value = v;
    f->valueLen = static_cast<size_t>(p_ - v);
    f->quoted = false;
    return true;
  }
}

bool DecodeValue(const Field& f, std::string* out) {
  out->clear();
  if (f.quoted) {
    out->assign(f.value, f.valueLen);
    return true;
  }
  if (f.valueLen == 0 || f.valueLen % 2 != 0) return false;
  out->reserve(f.valueLen / 2);
  for (size_t i = 0; i < f.valueLen; i += 2) {
    int hi = HexDigit(f.value[i]);
    int lo = HexDigit(f.value[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>((hi << 4) | lo));
  }
  return true;
}

}  // namespace credwatch
