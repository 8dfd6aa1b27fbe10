// libFuzzer target for the reader thread's triage (native/triage.cc, native/record_fields.cc): the
// C++ that parses SYSCALL, EXECVE, CWD and SOCKADDR records of every exec/connect event. Input: records
// separated by '\n'; the first byte of each picks its type from the set a live exec/connect event
// carries (plus one the triage must refuse), the rest is its text (seeds: real fixture records).
// Invariants: every record comes out, either itself (byte for byte, in order) or inside exactly one
// note whose count is the number of records it replaced; a note has at least its 13 fixed fields.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "../native/triage.h"

using credwatch::Batch;
using credwatch::RecordRef;
using credwatch::Triage;
using credwatch::TriageKind;
using credwatch::TriageSpec;

namespace {

std::shared_ptr<const TriageSpec> Spec() {
  auto s = std::make_shared<TriageSpec>();
  s->syscalls = {{0xc000003e, 59, TriageKind::kExec}, {0xc000003e, 42, TriageKind::kConnect}};
  s->execPrograms = {"kubectl", "python*", "k?s"};
  s->execExes = {"/usr/*/curl", "etcdctl"};
  s->execArgvLiterals = {"secrets", "/run/secrets/", ":10250"};
  s->connectExes = {"socat"};
  s->connectPorts.set(443);
  s->connectPorts.set(2375);
  s->connectUnixLiterals = {"docker.sock"};
  s->connectInet4Literals = {"169.254.169.254"};
  return s;
}

const uint32_t kTypes[] = {1300, 1309, 1307, 1306, 1302, 1327, 1320, 1321, 1400};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::shared_ptr<const TriageSpec> spec = Spec();
  std::vector<std::pair<uint32_t, std::string>> in;
  size_t start = 0;
  for (size_t i = 0; i <= size; i++) {
    if (i < size && data[i] != '\n') continue;
    if (i > start) {
      uint32_t type = kTypes[data[start] % (sizeof(kTypes) / sizeof(kTypes[0]))];
      in.emplace_back(type, std::string(reinterpret_cast<const char*>(data + start + 1), i - start - 1));
    }
    start = i + 1;
  }
  Triage triage;
  Batch out;
  triage.SetSpec(spec, &out);
  uint64_t now = 0;
  for (const auto& r : in) {
    // Exact-size heap copy: ASan sees any read past the record.
    std::unique_ptr<char[]> text(new char[r.second.size() + 1]);
    r.second.copy(text.get(), r.second.size());
    triage.Push(r.first, text.get(), r.second.size(), now, &out);
    now += 3;
    if (now % 30 == 0) triage.Expire(now, &out);
  }
  triage.ReleaseAll(&out);
  uint64_t represented = 0;
  for (const RecordRef& ref : out.records) {
    represented += ref.count;
    if (ref.type == credwatch::kProcessNoteType) {
      size_t fields = 1;
      for (uint32_t k = 0; k < ref.length; k++) fields += out.bytes[ref.offset + k] == '\0';
      if (fields < 13 || ref.count < 2) abort();
    } else if (ref.count != 1) {
      abort();
    }
  }
  if (represented != in.size()) abort();
  // Records that came out as themselves are the inputs' own bytes, each input at most once.
  std::vector<bool> used(in.size(), false);
  for (const RecordRef& ref : out.records) {
    if (ref.type == credwatch::kProcessNoteType) continue;
    std::string text(out.bytes.data() + ref.offset, ref.length);
    bool found = false;
    for (size_t i = 0; i < in.size() && !found; i++) {
      if (!used[i] && in[i].first == ref.type && in[i].second == text) used[i] = found = true;
    }
    if (!found) abort();
  }
  return 0;
}
