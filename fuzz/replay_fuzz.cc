// libFuzzer target for the native `replay --events` scanner (native/replay_events.cc): log bytes an
// attacker can write (a forged or damaged log) through the line splitter, the record header parser,
// the reassembler port and the JSON writer. Input: the first byte picks the chunk size the bytes are
// pushed in (so carried lines are exercised), the rest is the log (seeds: real fixture logs).
// Invariants: no crash or sanitizer report; every event is written here or handed back, never both;
// what is written here is printable ASCII lines (JSON of plain text only), and each handed-back event
// sits at an offset inside the output with its records inside the fallback bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "../native/replay_events.h"

using credwatch::ReplayEvents;
using credwatch::ReplayOutput;
using credwatch::ReplaySpec;

namespace {

std::shared_ptr<const ReplaySpec> Spec() {
  auto s = std::make_shared<ReplaySpec>();
  const std::pair<const char*, uint32_t> types[] = {{"SYSCALL", 1300}, {"PATH", 1302}, {"SOCKADDR", 1306}, {"CWD", 1307}, {"EXECVE", 1309},
                                                    {"EOE", 1320},     {"BPRM_FCAPS", 1321}, {"PROCTITLE", 1327}, {"USER_START", 1105},
                                                    {"CONFIG_CHANGE", 1305}, {"URINGOP", 1336}, {"DAEMON_START", 1200}};
  for (const auto& [name, num] : types) s->typeNumbers[name] = num;
  s->x86_64Syscalls.assign(450, "");
  s->x86_64Syscalls[59] = "execve";
  s->x86_64Syscalls[257] = "openat";
  s->plain.unsafeChars = ":=\"%\\";
  s->plain.shapeWords = {"eyj", "akia", "bearer", "private"};
  s->plain.secretWords = {"pass", "token", "key"};
  s->plain.programHints = {"mysql", "curl", "-u"};
  s->plain.programs = {"mysql", "curl", "openssl"};
  s->lookupType = [](const char*, size_t n) -> uint32_t { return n == 13 ? 1336 : 0; };
  return s;
}

void Check(const ReplayOutput& o) {
  for (char c : o.out) {
    if (c != '\n' && (c < 0x20 || c > 0x7e)) std::abort();
  }
  size_t prev = 0;
  for (const auto& f : o.fallbacks) {
    if (f.outOffset < prev || f.outOffset > o.out.size() || f.recordCount == 0) std::abort();
    prev = f.outOffset;
    for (uint32_t i = 0; i < f.recordCount; i++) {
      const auto& r = o.fallbackRecords.at(f.firstRecord + i);
      if (static_cast<size_t>(r.first) + r.second > o.fallbackBytes.size()) std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static std::shared_ptr<const ReplaySpec> spec = Spec();
  ReplayEvents::Options opts;
  opts.maxLineBytes = 4096;  // small bounds so the fuzzer reaches eviction and the overlong path
  opts.maxAgeRecords = 64;
  opts.maxInFlight = 16;
  opts.rememberEmitted = 32;
  opts.maxNodes = 4;
  ReplayEvents scanner(spec, opts);
  const size_t chunk = 1 + data[0] * 7;
  const char* p = reinterpret_cast<const char*>(data + 1);
  size_t n = size - 1;
  ReplayOutput out;
  for (size_t at = 0; at < n; at += chunk) {
    out.Clear();
    scanner.Push(p + at, at + chunk > n ? n - at : chunk, &out);
    Check(out);
  }
  out.Clear();
  scanner.EndFile(&out);
  Check(out);
  out.Clear();
  scanner.Flush(&out);
  Check(out);
  const auto& s = scanner.stats();
  if (s.native + s.fallback != s.events) std::abort();
  return 0;
}
