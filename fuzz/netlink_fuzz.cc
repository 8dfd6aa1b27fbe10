// libFuzzer target for the only parsing the C++ reader does: classifying a datagram read from the
// NETLINK_AUDIT socket (native/datagram.h, used by ReaderThread::Drain) and turning record bytes into
// UTF-16 with surrogateescape (native/surrogate_escape.cc, used for every non-ASCII record), plus
// appending the record to a batch (native/batch.h). Built with AddressSanitizer and UBSan by
// fuzz/run.sh. Input layout: byte 0 picks the sender port id (0 = the kernel), bytes 1-2 how many
// bytes the datagram was longer than the buffer (MSG_TRUNC), the rest is the datagram, copied into a
// heap buffer of exactly its size so that any read past it is caught.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../native/batch.h"
#include "../native/datagram.h"
#include "../native/surrogate_escape.h"

using credwatch::Batch;
using credwatch::ClassifyDatagram;
using credwatch::Datagram;
using credwatch::DatagramKind;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  uint32_t sender = (data[0] & 1) ? data[0] : 0;
  size_t extra = (data[1] & 0x80) ? ((size_t(data[1] & 0x7f) << 8) | data[2]) : 0;
  size_t len = size - 3;
  std::vector<char> buf(data + 3, data + 3 + len);  // exact size: ASan sees any overread
  Datagram d = ClassifyDatagram(buf.data(), buf.size(), len + extra, sender);
  if (d.kind != DatagramKind::kRecord) return 0;
  // Invariants the reader relies on.
  if (d.text < buf.data() || d.text + d.textLen > buf.data() + buf.size()) abort();
  if (d.truncated != (extra > 0)) abort();
  if (d.textLen > 0 && d.text[d.textLen - 1] == '\0') abort();
  std::u16string out;
  credwatch::DecodeSurrogateEscape(reinterpret_cast<const unsigned char*>(d.text), d.textLen, out);
  // Every input byte becomes one or two UTF-16 units, never more and never fewer than one per
  // code point: at most one unit per byte.
  if (out.size() > d.textLen) abort();
  // Round trip: lone surrogates U+DC80..U+DCFF map back to their byte; other units re-encode as UTF-8.
  std::string back;
  for (size_t i = 0; i < out.size(); i++) {
    uint32_t u = out[i];
    if (u >= 0xDC80 && u <= 0xDCFF) {
      back.push_back(static_cast<char>(u - 0xDC00));
    } else if (u >= 0xD800 && u <= 0xDBFF && i + 1 < out.size()) {
      uint32_t cp = 0x10000 + ((u - 0xD800) << 10) + (out[++i] - 0xDC00);
      back.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      back.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      back.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      back.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (u < 0x80) {
      back.push_back(static_cast<char>(u));
    } else if (u < 0x800) {
      back.push_back(static_cast<char>(0xC0 | (u >> 6)));
      back.push_back(static_cast<char>(0x80 | (u & 0x3F)));
    } else {
      back.push_back(static_cast<char>(0xE0 | (u >> 12)));
      back.push_back(static_cast<char>(0x80 | ((u >> 6) & 0x3F)));
      back.push_back(static_cast<char>(0x80 | (u & 0x3F)));
    }
  }
  if (back.size() != d.textLen || memcmp(back.data(), d.text, d.textLen) != 0) abort();
  Batch batch;
  batch.Append(d.type, d.text, d.textLen);
  if (batch.records.size() != 1 || batch.bytes.size() != d.textLen) abort();
  return 0;
}
