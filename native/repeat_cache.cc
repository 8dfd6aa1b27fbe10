#include "repeat_cache.h"

#include <cctype>
#include <charconv>
#include <cstring>

#include "record_fields.h"

namespace credwatch {

namespace {

constexpr uint32_t kSyscall = 1300;
constexpr size_t kMaxRecords = 32;

void AppendNumber(std::string* s, uint64_t v) {
  char buf[24];
  const std::to_chars_result r = std::to_chars(buf, buf + sizeof(buf), v);
  s->append(buf, static_cast<size_t>(r.ptr - buf));
}

void AppendU32(std::string* s, uint32_t v) { s->append(reinterpret_cast<const char*>(&v), sizeof(v)); }

}  // namespace

bool RepeatCache::Sign(const std::vector<RecordRef>& records, const std::string& bytes, std::string_view scope) {
  if (records.empty() || records.size() > kMaxRecords || records.front().type != kSyscall) return false;
  key_.clear();
  pid_.clear();
  // The scope first, with its length, so no scope can run into the records that follow it.
  if (!scope.empty()) {
    AppendU32(&key_, static_cast<uint32_t>(scope.size()));
    key_.append(scope.data(), scope.size());
  }
  for (size_t r = 0; r < records.size(); r++) {
    const RecordRef& ref = records[r];
    const char* text = bytes.data() + ref.offset;
    RecordHeader hdr;
    if (!ParseRecordHeader(text, ref.length, &hdr)) return false;
    if (r == 0) {
      header_.assign(text, hdr.bodyOffset);
    } else if (hdr.bodyOffset != header_.size() || std::memcmp(text, header_.data(), header_.size()) != 0) {
      return false;  // one event, one stamp: anything else is not a shape JavaScript can rebuild
    }
    const char* body = text + hdr.bodyOffset;
    const char* end = text + ref.length;
    // Type and masked length first, so two events can only match record for record.
    AppendU32(&key_, ref.type);
    if (r == 0) {
      // Masked: the syscall arguments a0..a3 (registers and pointers, different in every process under
      // ASLR, read by no rule) and the pid. Each is the first " name=" after the previous one (the fields
      // before a0 are numbers the kernel formats), and its value runs to the next space.
      static const char* const kMasked[] = {" a0=", " a1=", " a2=", " a3=", " pid="};
      const char* from = body;
      masked_.clear();
      size_t kept = 0;
      const size_t keyStart = key_.size();
      AppendU32(&key_, 0);  // the masked length, filled in below
      for (size_t m = 0; m < sizeof(kMasked) / sizeof(kMasked[0]); m++) {
        const char* at = static_cast<const char*>(memmem(from, static_cast<size_t>(end - from), kMasked[m], std::strlen(kMasked[m])));
        if (at == nullptr) return false;
        const char* value = at + std::strlen(kMasked[m]);
        const char* v = value;
        const bool pid = m == 4;
        while (v < end && (pid ? (*v >= '0' && *v <= '9') : std::isxdigit(static_cast<unsigned char>(*v)) != 0)) v++;
        // JavaScript reads a0..a3 as at most 16 hex digits and a pid as at most 10 digits.
        if (v == value || v >= end || *v != ' ' || static_cast<size_t>(v - value) > (pid ? 10u : 16u)) return false;
        key_.append(from, static_cast<size_t>(value - from));
        kept += static_cast<size_t>(value - from);
        if (pid) {
          pid_.assign(value, static_cast<size_t>(v - value));
        } else {
          if (m > 0) masked_.push_back(',');
          masked_.append(value, static_cast<size_t>(v - value));
        }
        from = v;
      }
      key_.append(from, static_cast<size_t>(end - from));
      kept += static_cast<size_t>(end - from);
      const uint32_t keptLen = static_cast<uint32_t>(kept);
      std::memcpy(&key_[keyStart], &keptLen, sizeof(keptLen));
    } else {
      AppendU32(&key_, static_cast<uint32_t>(end - body));
      key_.append(body, static_cast<size_t>(end - body));
    }
    if (key_.size() > kMaxSignatureBytes) return false;
  }
  return true;
}

RepeatDecision RepeatCache::Decide(const std::vector<RecordRef>& records, const std::string& bytes, std::string_view scope) {
  if (!Sign(records, bytes, scope)) {
    stats_.skipped++;
    return RepeatDecision::kSkipped;
  }
  clock_++;
  auto it = byKey_.find(key_);
  if (it != byKey_.end()) {
    it->second.lastUse = clock_;
    stats_.hits++;
    // The note: template id, this event's header (its stamp), its pid, its record types.
    note_.clear();
    AppendNumber(&note_, it->second.id);
    note_.push_back('\0');
    note_.append(header_);
    note_.push_back('\0');
    note_.append(pid_);
    note_.push_back('\0');
    for (size_t r = 0; r < records.size(); r++) {
      if (r > 0) note_.push_back(',');
      AppendNumber(&note_, records[r].type);
    }
    note_.push_back('\0');
    note_.append(masked_);
    return RepeatDecision::kRepeat;
  }
  if (byKey_.size() >= kMaxTemplates) {
    auto oldest = byKey_.begin();
    for (auto e = byKey_.begin(); e != byKey_.end(); ++e) {
      if (e->second.lastUse < oldest->second.lastUse) oldest = e;
    }
    byKey_.erase(oldest);
    stats_.evictions++;
  }
  const uint64_t id = nextId_++;
  byKey_.emplace(key_, Entry{id, clock_});
  stats_.templates++;
  // The announcement: the template id and the event's header; its records follow at once.
  note_.clear();
  AppendNumber(&note_, id);
  note_.push_back('\0');
  note_.append(header_);
  return RepeatDecision::kTemplate;
}

bool RepeatCache::Offer(const std::vector<RecordRef>& records, const std::string& bytes, Batch* out) {
  switch (Decide(records, bytes)) {
    case RepeatDecision::kRepeat:
      out->Append(kRepeatNoteType, note_.data(), note_.size(), static_cast<uint32_t>(records.size()));
      return true;
    case RepeatDecision::kTemplate:
      out->Append(kRepeatTemplateType, note_.data(), note_.size(), 0);
      return false;
    case RepeatDecision::kSkipped:
      break;
  }
  return false;
}

void RepeatCache::Clear() { byKey_.clear(); }

}  // namespace credwatch
