#include "triage.h"

#include <cstring>

#include "record_fields.h"

namespace credwatch {

namespace {

constexpr uint32_t kSyscall = 1300;
constexpr uint32_t kPath = 1302;
constexpr uint32_t kSockaddr = 1306;
constexpr uint32_t kCwd = 1307;
constexpr uint32_t kExecve = 1309;
constexpr uint32_t kEoe = 1320;
constexpr uint32_t kBprmFcaps = 1321;  // every exec by root: capability sets, which no rule reads
constexpr uint32_t kProctitle = 1327;

bool ParseHex32(const char* p, size_t n, uint32_t* out) {
  if (n == 0 || n > 8) return false;
  uint32_t v = 0;
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return false;
    v = (v << 4) | static_cast<uint32_t>(d);
  }
  *out = v;
  return true;
}

const char* BaseName(const std::string& path, size_t* len) {
  size_t slash = path.rfind('/');
  size_t from = slash == std::string::npos ? 0 : slash + 1;
  *len = path.size() - from;
  return path.data() + from;
}

bool AnyGlob(const std::vector<std::string>& globs, const char* s, size_t n) {
  for (const std::string& g : globs) {
    if (GlobMatch(g.data(), g.size(), s, n)) return true;
  }
  return false;
}

// Globs with '/' match the whole exe path, others its basename (match.ts globMatcher).
bool ExeMatches(const std::vector<std::string>& globs, const std::string& exe) {
  size_t baseLen = 0;
  const char* base = BaseName(exe, &baseLen);
  for (const std::string& g : globs) {
    bool full = g.find('/') != std::string::npos;
    if (full ? GlobMatch(g.data(), g.size(), exe.data(), exe.size()) : GlobMatch(g.data(), g.size(), base, baseLen)) {
      return true;
    }
  }
  return false;
}

void LowerInto(const char* p, size_t n, std::string* out) {
  out->resize(n);
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    (*out)[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
  }
}

void AppendField(std::string* note, const char* p, size_t n) {
  note->push_back('\0');
  note->append(p, n);
}

void AppendField(std::string* note, const std::string& s) { AppendField(note, s.data(), s.size()); }

void AppendNumber(std::string* note, uint64_t v) {
  char buf[24];
  size_t i = sizeof(buf);
  do {
    buf[--i] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  note->append(buf + i, sizeof(buf) - i);
}

}  // namespace

bool GlobMatch(const char* glob, size_t globLen, const char* s, size_t n) {
  size_t g = 0;
  size_t i = 0;
  size_t starG = SIZE_MAX;
  size_t starI = 0;
  while (i < n) {
    if (g < globLen && (glob[g] == '?' || (glob[g] != '*' && glob[g] == s[i]))) {
      g++;
      i++;
    } else if (g < globLen && glob[g] == '*') {
      starG = g++;
      starI = i;
    } else if (starG != SIZE_MAX) {
      g = starG + 1;
      i = ++starI;
    } else {
      return false;
    }
  }
  while (g < globLen && glob[g] == '*') g++;
  return g == globLen;
}

Triage::~Triage() {
  for (Held* h : held_) delete h;
  for (Held* h : free_) delete h;
}

Triage::Held* Triage::Find(uint64_t serial) {
  for (Held* h : held_) {
    if (h->serial == serial) return h;
  }
  return nullptr;
}

void Triage::RememberPassed(uint64_t serial) {
  passedRing_[passedNext_] = serial;
  passedNext_ = (passedNext_ + 1) % (sizeof(passedRing_) / sizeof(passedRing_[0]));
}

bool Triage::RecentlyPassed(uint64_t serial) const {
  for (uint64_t s : passedRing_) {
    if (s == serial && s != 0) return true;
  }
  return false;
}

Triage::Held* Triage::Hold(uint64_t serial, uint64_t nowMs, Batch* out) {
  if (held_.size() >= kMaxHeld) {
    // Far more events in flight than CPUs: something is odd. The oldest goes to TypeScript as is.
    Held* oldest = held_.front();
    stats_.unsure++;
    Release(oldest, out);
  }
  Held* h;
  if (free_.empty()) {
    h = new Held();
  } else {
    h = free_.back();
    free_.pop_back();
  }
  h->serial = serial;
  h->sinceMs = nowMs;
  held_.push_back(h);
  return h;
}

void Triage::Recycle(Held* h) {
  for (size_t i = 0; i < held_.size(); i++) {
    if (held_[i] == h) {
      held_.erase(held_.begin() + static_cast<std::ptrdiff_t>(i));
      break;
    }
  }
  h->bytes.clear();
  h->records.clear();
  // A burst of huge EXECVE records should not stay allocated forever.
  if (h->bytes.capacity() > (64u << 10) || free_.size() >= 16) {
    delete h;
    return;
  }
  free_.push_back(h);
}

void Triage::Release(Held* h, Batch* out) {
  for (const RecordRef& r : h->records) out->Append(r.type, h->bytes.data() + r.offset, r.length);
  Recycle(h);
}

void Triage::SetSpec(std::shared_ptr<const TriageSpec> spec, Batch* out) {
  ReleaseAll(out);
  repeats_.Clear();
  spec_ = std::move(spec);
}

void Triage::Push(uint32_t type, const char* text, size_t len, uint64_t nowMs, Batch* out) {
  if (!spec_) {
    out->Append(type, text, len);
    return;
  }
  RecordHeader hdr;
  if (!ParseRecordHeader(text, len, &hdr)) {
    out->Append(type, text, len);
    return;
  }
  Held* h = Find(hdr.serial);
  if (h == nullptr) {
    if (type != kSyscall || RecentlyPassed(hdr.serial)) {
      if (type != kSyscall && type != kEoe) RememberPassed(hdr.serial);
      out->Append(type, text, len);
      return;
    }
    h = Hold(hdr.serial, nowMs, out);
  } else if (type == kSyscall) {
    // A second SYSCALL record under one serial: not a shape this code knows.
    stats_.unsure++;
    Release(h, out);
    out->Append(type, text, len);
    return;
  }
  h->records.push_back(RecordRef{type, static_cast<uint32_t>(h->bytes.size()), static_cast<uint32_t>(len), 1});
  h->bytes.append(text, len);
  if (type == kEoe) Complete(h, out);
}

void Triage::Expire(uint64_t nowMs, Batch* out) {
  for (size_t i = 0; i < held_.size();) {
    Held* h = held_[i];
    if (nowMs - h->sinceMs >= kMaxHoldMs) {
      stats_.expired++;
      Release(h, out);  // removes held_[i]
    } else {
      i++;
    }
  }
}

void Triage::ReleaseAll(Batch* out) {
  while (!held_.empty()) Release(held_.front(), out);
}

void Triage::Complete(Held* h, Batch* out) {
  passedInteresting_ = false;
  if (!Summarize(h->bytes, h->records)) {
    if (passedInteresting_ && spec_->repeats && repeats_.Offer(h->records, h->bytes, out)) {
      Recycle(h);
      return;
    }
    Release(h, out);
    return;
  }
  stats_.summarized++;
  stats_.summarizedRecords += h->records.size();
  out->Append(kProcessNoteType, note_.data(), note_.size(), static_cast<uint32_t>(h->records.size()));
  Recycle(h);
}

bool Triage::ExecInteresting(const std::string& exe, const std::vector<std::string>& argv) {
  const TriageSpec& s = *spec_;
  if (s.execAll) return true;
  size_t exeBaseLen = 0;
  const char* exeBase = BaseName(exe, &exeBaseLen);
  size_t argv0BaseLen = 0;
  const char* argv0Base = BaseName(argv[0], &argv0BaseLen);
  if (AnyGlob(s.execPrograms, exeBase, exeBaseLen) || AnyGlob(s.execPrograms, argv0Base, argv0BaseLen)) return true;
  if (ExeMatches(s.execExes, exe)) return true;
  if (s.execArgvLiterals.empty()) return false;
  // The command line as event-view.ts commandLine() builds it: argv joined by spaces, argv[0] reduced
  // to its basename.
  value_.assign(argv0Base, argv0BaseLen);
  for (size_t i = 1; i < argv.size(); i++) {
    value_.push_back(' ');
    value_.append(argv[i]);
  }
  LowerInto(value_.data(), value_.size(), &lower_);
  return s.execArgvLiterals.Contains(lower_);
}

bool Triage::ConnectInteresting(const std::string& exe, const std::string& sa) {
  const TriageSpec& s = *spec_;
  if (s.connectAll || ExeMatches(s.connectExes, exe)) return true;
  if (sa.size() < 2) return true;
  const uint16_t family = static_cast<uint16_t>(static_cast<uint8_t>(sa[0]) | (static_cast<uint8_t>(sa[1]) << 8));
  if (family == 1) {  // AF_UNIX, formatted as src/audit/sockaddr.ts does
    if (s.connectUnixAll || sa.size() <= 2) return true;
    if (sa[2] == '\0') {
      value_.assign("@");
      value_.append(sa, 3, std::string::npos);
    } else {
      size_t end = sa.find('\0', 2);
      value_.assign(sa, 2, end == std::string::npos ? std::string::npos : end - 2);
    }
    LowerInto(value_.data(), value_.size(), &lower_);
    return s.connectUnixLiterals.Contains(lower_);
  }
  if (family == 2) {  // AF_INET
    if (sa.size() < 8 || s.connectInet4All) return true;
    const uint16_t port = static_cast<uint16_t>((static_cast<uint8_t>(sa[2]) << 8) | static_cast<uint8_t>(sa[3]));
    if (s.connectPorts.test(port)) return true;
    if (s.connectInet4Literals.empty()) return false;
    value_.clear();
    for (int i = 4; i < 8; i++) {
      if (i > 4) value_.push_back('.');
      AppendNumber(&value_, static_cast<uint8_t>(sa[static_cast<size_t>(i)]));
    }
    return s.connectInet4Literals.Contains(value_);
  }
  if (family == 10) {  // AF_INET6
    if (sa.size() < 24 || s.connectInet6All) return true;
    const uint16_t port = static_cast<uint16_t>((static_cast<uint8_t>(sa[2]) << 8) | static_cast<uint8_t>(sa[3]));
    return s.connectPorts.test(port);
  }
  return true;
}

bool Triage::SummarizeEvent(const std::string& bytes, const std::vector<RecordRef>& records, std::string* note) {
  if (!spec_ || records.empty() || records.front().type != kSyscall) return false;
  for (const RecordRef& r : records) {
    RecordHeader rh;
    if (!ParseRecordHeader(bytes.data() + r.offset, r.length, &rh)) {
      stats_.unsure++;
      return false;
    }
  }
  passedInteresting_ = false;
  if (!Summarize(bytes, records)) return false;
  stats_.summarized++;
  stats_.summarizedRecords += records.size();
  note->swap(note_);
  return true;
}

bool Triage::OpenInteresting(const std::string& key, const std::string* names, size_t count) {
  const TriageSpec& s = *spec_;
  if (s.openAll) return true;
  for (const std::string& k : s.openObjectKeys) {
    if (key.find(k) != std::string::npos) return true;
  }
  for (size_t i = 0; i < count; i++) {
    const std::string& name = names[i];
    // The engine resolves a relative name against the cwd with path.posix.join, which also removes
    // "." and ".." segments: a literal could appear only after that. Such names always pass.
    if (name.empty() || name[0] != '/' || name.find("//") != std::string::npos || name.find("/.") != std::string::npos) return true;
    LowerInto(name.data(), name.size(), &lower_);
    if (s.openPathLiterals.Contains(lower_)) return true;
  }
  return false;
}

bool Triage::Summarize(const std::string& bytes, const std::vector<RecordRef>& records) {
  const TriageSpec& spec = *spec_;
  const RecordRef& first = records.front();
  const char* text = bytes.data() + first.offset;
  RecordHeader hdr;
  ParseRecordHeader(text, first.length, &hdr);

  // SYSCALL: which syscall, and the process fields of the note.
  uint32_t arch = 0;
  uint64_t nr = 0;
  bool haveArch = false;
  bool haveNr = false;
  Field pid{}, ppid{}, uid{}, auid{}, tty{};
  std::string exe, comm, key;
  bool haveExe = false;
  bool haveComm = false;
  bool haveKey = true;
  {
    FieldCursor c(text, first.length, hdr.bodyOffset);
    Field f;
    while (c.Next(&f)) {
      if (NameIs(f, "arch")) {
        haveArch = ParseHex32(f.value, f.valueLen, &arch);
      } else if (NameIs(f, "syscall")) {
        haveNr = ParseUnsigned(f.value, f.valueLen, &nr);
      } else if (NameIs(f, "pid")) {
        pid = f;
      } else if (NameIs(f, "ppid")) {
        ppid = f;
      } else if (NameIs(f, "uid")) {
        uid = f;
      } else if (NameIs(f, "auid")) {
        auid = f;
      } else if (NameIs(f, "tty")) {
        tty = f;
      } else if (NameIs(f, "exe")) {
        haveExe = DecodeValue(f, &exe);
      } else if (NameIs(f, "comm")) {
        haveComm = DecodeValue(f, &comm);
      } else if (NameIs(f, "key")) {
        // key=(null): no key. Several keys come hex-encoded, joined by \x01: containment still works.
        if (!f.quoted && f.valueLen == 6 && std::memcmp(f.value, "(null)", 6) == 0) {
          key.clear();
        } else {
          haveKey = DecodeValue(f, &key);
        }
      }
    }
    if (c.malformed() || !haveArch || !haveNr || !haveExe || pid.value == nullptr) {
      stats_.unsure++;
      return false;
    }
  }
  TriageKind kind = TriageKind::kNone;
  for (const TriageSpec::Syscall& s : spec.syscalls) {
    if (s.arch == arch && s.nr == nr) {
      kind = s.kind;
      break;
    }
  }
  if (kind == TriageKind::kNone) {
    stats_.passed++;
    return false;
  }

  // The other records: only the shapes of a plain exec or connect are understood.
  std::string cwd;
  std::string saddr;
  bool haveCwd = false;
  bool haveSaddr = false;
  int execveRecords = 0;
  argv_.clear();
  nameCount_ = 0;
  for (size_t r = 1; r < records.size(); r++) {
    const RecordRef& ref = records[r];
    const char* t = bytes.data() + ref.offset;
    RecordHeader rh;
    if (!ParseRecordHeader(t, ref.length, &rh)) {
      stats_.unsure++;
      return false;
    }
    FieldCursor c(t, ref.length, rh.bodyOffset);
    Field f;
    switch (ref.type) {
      case kExecve: {
        if (++execveRecords > 1) {
          stats_.unsure++;
          return false;
        }
        uint64_t argc = 0;
        bool haveArgc = false;
        while (c.Next(&f)) {
          if (NameIs(f, "argc")) {
            haveArgc = ParseUnsigned(f.value, f.valueLen, &argc) && argc > 0 && argc <= 4096;
            if (!haveArgc) break;
            argv_.reserve(argc);
            continue;
          }
          // Only a<N>=value with N the next index; a<N>_len / a<N>[i] (long arguments) are left to TypeScript.
          uint64_t index = 0;
          if (f.nameLen < 2 || f.name[0] != 'a' || !ParseUnsigned(f.name + 1, f.nameLen - 1, &index) ||
              index != argv_.size()) {
            haveArgc = false;
            break;
          }
          argv_.emplace_back();
          if (!DecodeValue(f, &argv_.back())) {
            haveArgc = false;
            break;
          }
        }
        if (!haveArgc || c.malformed() || argv_.size() != argc) {
          stats_.unsure++;
          return false;
        }
        break;
      }
      case kCwd:
        while (c.Next(&f)) {
          if (NameIs(f, "cwd")) haveCwd = DecodeValue(f, &cwd);
        }
        if (!haveCwd || c.malformed()) {
          stats_.unsure++;
          return false;
        }
        break;
      case kSockaddr:
        while (c.Next(&f)) {
          if (NameIs(f, "saddr")) haveSaddr = !f.quoted && DecodeValue(f, &saddr);
        }
        if (!haveSaddr) {
          stats_.unsure++;
          return false;
        }
        break;
      case kPath:
        if (kind == TriageKind::kOpen) {
          bool haveName = false;
          while (c.Next(&f)) {
            if (NameIs(f, "name")) {
              // Reused strings: an open has a few names, and most are longer than the inline buffer.
              if (nameCount_ == names_.size()) names_.emplace_back();
              // (null) and hex names: whatever the engine makes of them, they take the full path.
              haveName = f.quoted && DecodeValue(f, &names_[nameCount_++]);
            }
          }
          if (!haveName || c.malformed()) {
            stats_.unsure++;
            return false;
          }
        }
        break;
      case kProctitle:
      case kBprmFcaps:
      case kEoe:
        break;
      default:
        stats_.unsure++;
        return false;
    }
  }

  // The note separates fields with NUL: a decoded value holding one (hex can encode anything) cannot go.
  bool hasNul = exe.find('\0') != std::string::npos || comm.find('\0') != std::string::npos ||
                cwd.find('\0') != std::string::npos;
  for (const std::string& a : argv_) hasNul = hasNul || a.find('\0') != std::string::npos;
  if (hasNul) {
    stats_.unsure++;
    return false;
  }

  bool interesting;
  if (kind == TriageKind::kExec) {
    if (execveRecords != 1) {  // a failed exec has no EXECVE record: TypeScript uses the old argv
      stats_.unsure++;
      return false;
    }
    interesting = ExecInteresting(exe, argv_);
  } else if (kind == TriageKind::kConnect) {
    if (!haveSaddr) {
      stats_.unsure++;
      return false;
    }
    interesting = ConnectInteresting(exe, saddr);
  } else {
    if (execveRecords != 0 || haveSaddr || !haveKey) {
      stats_.unsure++;
      return false;
    }
    interesting = OpenInteresting(key, names_.data(), nameCount_);
  }
  if (interesting) {
    stats_.passed++;
    passedInteresting_ = true;
    return false;
  }

  // The note: NUL-separated fields, parsed by src/native/process-note.ts.
  note_.assign(kind == TriageKind::kExec ? "e" : kind == TriageKind::kConnect ? "c" : "o");
  note_.push_back('\0');
  AppendNumber(&note_, hdr.serial);
  note_.push_back('\0');
  AppendNumber(&note_, hdr.timeMs);
  note_.push_back('\0');
  for (size_t r = 0; r < records.size(); r++) {
    if (r > 0) note_.push_back(',');
    AppendNumber(&note_, records[r].type);
  }
  const Field* numeric[] = {&pid, &ppid, &uid, &auid, &tty};
  for (const Field* f : numeric) {
    if (f->value == nullptr) {
      AppendField(&note_, "", 0);
    } else {
      AppendField(&note_, f->value, f->valueLen);
    }
  }
  AppendField(&note_, exe);
  AppendField(&note_, haveComm ? comm : std::string());
  AppendField(&note_, haveCwd ? cwd : std::string());
  AppendField(&note_, haveCwd ? "1" : "0", 1);
  for (const std::string& a : argv_) AppendField(&note_, a);
  return true;
}

}  // namespace credwatch
