#include "replay_events.h"

#include "triage.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <optional>

namespace credwatch {

namespace {

constexpr uint32_t kSyscall = 1300, kPath = 1302, kSockaddr = 1306, kCwd = 1307, kExecve = 1309, kEoe = 1320,
                   kBprmFcaps = 1321, kProctitle = 1327;
constexpr double kMaxDateSeconds = 8640000000000.0;
constexpr double kMaxSafeInteger = 9007199254740991.0;
constexpr double kYear10000 = 253402300800.0;  // toISOString switches to +YYYYYY there
constexpr size_t kMaxArgv = 65536;

bool IsSyscallOnlyType(uint32_t t) {
  switch (t) {
    case 1300: case 1302: case 1303: case 1304: case 1306: case 1307: case 1309: case 1311: case 1312:
    case 1313: case 1314: case 1315: case 1317: case 1318: case 1321: case 1322: case 1323: case 1327:
    case 1336: case 1337:
      return true;
    default:
      return false;
  }
}

bool IsUserMessageType(uint32_t t) { return t == 1005 || (t >= 1100 && t <= 1299) || (t >= 2100 && t <= 2999); }

bool StartsWith(const char* p, size_t n, size_t at, const char* lit) {
  size_t l = std::strlen(lit);
  return at + l <= n && std::memcmp(p + at, lit, l) == 0;
}

long Find(const char* p, size_t n, size_t from, char c) {
  if (from >= n) return -1;
  const void* hit = std::memchr(p + from, c, n - from);
  return hit == nullptr ? -1 : static_cast<const char*>(hit) - p;
}

int HexDigit(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool DecodeHex(const char* p, long n, std::string* out) {
  out->clear();
  if (n < 0 || (n & 1) != 0) return false;
  out->resize(static_cast<size_t>(n) / 2);
  for (long i = 0; i < n; i += 2) {
    int hi = HexDigit(static_cast<unsigned char>(p[i])), lo = HexDigit(static_cast<unsigned char>(p[i + 1]));
    if (hi < 0 || lo < 0) return false;
    (*out)[static_cast<size_t>(i / 2)] = static_cast<char>((hi << 4) | lo);
  }
  return true;
}

// The TypeScript FieldCursor (src/audit/record.ts), byte for byte: the same token rules, the same
// reads one past a sub-payload's end. charAt past the text is -1 (charCodeAt's NaN).
class Cursor {
 public:
  const char* t = nullptr;
  long n = 0;
  long ks = 0, ke = 0, vs = 0, ve = 0;
  int quote = 0;

  void Reset(const char* text, long len, long start, long end, bool descend) {
    t = text, n = len, pos_ = start, end_ = end, outerEnd_ = -1, descend_ = descend;
  }
  bool Next() {
    for (;;) {
      long pos = pos_;
      const long end = end_;
      while (pos < end && At(pos) == 32) pos++;
      if (pos >= end) {
        if (outerEnd_ >= 0) {
          pos_ = end_ + 1;
          end_ = outerEnd_;
          outerEnd_ = -1;
          continue;
        }
        pos_ = pos;
        return false;
      }
      const long tokenStart = pos;
      while (pos < end) {
        int c = At(pos);
        if (c == 61 || c == 32) break;
        pos++;
      }
      if (pos >= end || At(pos) == 32 || pos == tokenStart) {
        pos_ = pos + (pos == tokenStart ? 1 : 0);
        continue;
      }
      ks = tokenStart, ke = pos;
      pos++;
      int q = At(pos);
      if (q == 34 || q == 39) {
        long close = pos + 1;
        while (close < n && t[close] != q) close++;
        if (close >= n) close = -1;
        if (close < 0 || close > end) close = end;
        if (q == 39 && descend_ && outerEnd_ < 0) {
          outerEnd_ = end;
          pos_ = pos + 1;
          end_ = close;
          continue;
        }
        quote = q, vs = pos + 1, ve = close, pos_ = close + 1;
        return true;
      }
      long vStart = pos;
      // Values are short but for hex arguments: a plain loop beats a call per field.
      while (pos < n && pos < end && t[pos] != ' ') pos++;
      if (pos >= end) pos = end;
      quote = 0, vs = vStart, ve = pos, pos_ = pos;
      return true;
    }
  }
  template <size_t N>
  bool KeyIs(const char (&name)[N]) const {
    return ke - ks == static_cast<long>(N - 1) && std::memcmp(t + ks, name, N - 1) == 0;
  }
  std::string_view Raw() const { return ve > vs ? std::string_view(t + vs, static_cast<size_t>(ve - vs)) : std::string_view(); }
  bool IsAbsent() const {
    if (quote != 0) return false;
    std::string_view v = Raw();
    return v == "(null)" || v == "?";
  }

 private:
  int At(long i) const { return i >= 0 && i < n ? static_cast<unsigned char>(t[i]) : -1; }
  long pos_ = 0, end_ = 0, outerEnd_ = -1;
  bool descend_ = false;
};

// A string field of the event: null, a view of the record, or bytes decoded into `own`. Reused from
// event to event (Format's scratch), so printing allocates only when a field outgrows its buffer.
struct Text {
  bool null = true;
  std::string_view v;
  std::string own;
  void SetNull() { null = true, v = std::string_view(); }
  void SetView(std::string_view s) { null = false, v = s; }
  void SetOwn() { null = false, v = own; }
};

// Cursor::untrusted() into a Text.
void Untrusted(const Cursor& c, Text* out) {
  if (c.quote != 0) return out->SetView(c.Raw());
  if (c.IsAbsent()) return out->SetNull();
  if (DecodeHex(c.t + c.vs, c.ve - c.vs, &out->own)) return out->SetOwn();
  out->SetView(c.Raw());
}

// int(): optional '-', digits; null otherwise. `tooLong` when the digits are past what a double holds
// exactly (TypeScript would print a rounded number: that event goes to TypeScript).
struct Int {
  bool null = true;
  double v = 0;
};
Int ReadInt(const Cursor& c, bool* tooLong) {
  Int r;
  long p = c.vs, e = c.ve;
  if (p >= e) return r;
  bool neg = false;
  if (c.t[p] == '-') {
    neg = true;
    if (++p >= e) return r;
  }
  if (e - p > 15) *tooLong = true;
  double n = 0;
  for (; p < e; p++) {
    int d = static_cast<unsigned char>(c.t[p]) - 48;
    if (d < 0 || d > 9) return r;
    n = n * 10 + d;
  }
  r.null = false;
  r.v = neg ? -n : n;
  return r;
}

void AppendNumber(std::string& o, double v) {
  // Integers below 2^53 (callers check; an event with a longer number goes to TypeScript before its
  // line is used): what JSON.stringify prints, -0 as 0. Anything else is never cast.
  if (!(v >= -kMaxSafeInteger && v <= kMaxSafeInteger)) v = 0;
  int64_t i = static_cast<int64_t>(v);
  char buf[24];
  char* end = buf + sizeof buf;
  char* p = end;
  bool neg = i < 0;
  uint64_t u = neg ? static_cast<uint64_t>(-i) : static_cast<uint64_t>(i);
  do {
    *--p = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u != 0);
  if (neg) *--p = '-';
  o.append(p, static_cast<size_t>(end - p));
}
void AppendInt(std::string& o, const Int& i) {
  if (i.null) o += "null";
  else AppendNumber(o, i.v);
}

// A JSON string of printable ASCII (what JSON.stringify writes for it); false for anything else.
bool AppendAscii(std::string& o, std::string_view s) {
  bool escape = false;
  for (unsigned char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
    if (c == '"' || c == '\\') escape = true;
  }
  o += '"';
  if (!escape) {
    o.append(s.data(), s.size());
  } else {
    for (char c : s) {
      if (c == '"' || c == '\\') o += '\\';
      o += c;
    }
  }
  o += '"';
  return true;
}

// Lower-case ASCII copy in a reused buffer (no allocation per string once it has grown).
std::string_view LowerInto(std::string_view s, std::string* buf) {
  buf->assign(s.data(), s.size());
  for (char& c : *buf) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return *buf;
}

// redactArgvWith's basename: the last path part, after any `q=`.
std::string_view Basename(std::string_view a) {
  size_t slash = a.rfind('/');
  std::string_view b = slash == std::string_view::npos ? a : a.substr(slash + 1);
  size_t eq = b.rfind('=');
  return eq == std::string_view::npos ? b : b.substr(eq + 1);
}

}  // namespace

// ReplayPlainText with a memory: a log repeats the same comm, exe, cwd, paths and titles, so each
// distinct string is judged once (direct-mapped by hash; a collision only costs a recomputation).
struct ReplayEvents::PlainCache {
  explicit PlainCache(const ReplayPlainSpec& s) : spec(s), slots(kSlots) {}
  bool operator()(std::string_view s) {
    if (s.size() > kMaxLen) return ReplayPlainText(spec, s);
    uint64_t h = 1469598103934665603ULL;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
    Slot& slot = slots[h & (kSlots - 1)];
    if (slot.valid && slot.text == s) return slot.plain;
    slot.valid = true;
    slot.text.assign(s.data(), s.size());
    slot.plain = ReplayPlainText(spec, s);
    return slot.plain;
  }
  static constexpr size_t kSlots = 4096, kMaxLen = 256;
  struct Slot {
    bool valid = false, plain = false;
    std::string text;
  };
  const ReplayPlainSpec& spec;
  std::vector<Slot> slots;
};

namespace {

using PlainCache = ReplayEvents::PlainCache;

bool ArgvPlain(PlainCache& plain, const std::vector<std::string>& argv, size_t count) {
  const ReplayPlainSpec& spec = plain.spec;
  thread_local std::string lower;
  for (size_t i = 0; i < count; i++) {
    const std::string& a = argv[i];
    if (!plain(a)) return false;
    if (a.size() >= 2 && a[0] == '-' && a[1] == '-' && spec.secretWords.Contains(LowerInto(a, &lower))) return false;
    std::string_view b = Basename(a);
    for (const std::string& p : spec.programs) {
      if (b == p) return false;
    }
  }
  return true;
}

// A redacted field: printed as is when plain, else the event goes to TypeScript.
bool AppendPlain(std::string& o, PlainCache& plain, std::string_view s) {
  return plain(s) && AppendAscii(o, s);
}
bool AppendPlain(std::string& o, PlainCache& spec, const Text& s) {
  if (s.null) {
    o += "null";
    return true;
  }
  return AppendPlain(o, spec, s.v);
}
// A field printed as written (not a redacted one): printable ASCII, or TypeScript's.
bool AppendRaw(std::string& o, const Text& s) {
  if (s.null) {
    o += "null";
    return true;
  }
  return AppendAscii(o, s.v);
}

// new Date(sec * 1000).toISOString() without its milliseconds, for 0 <= sec < year 10000.
void AppendIsoSeconds(std::string& o, int64_t sec) {
  int64_t days = sec / 86400, rem = sec % 86400;
  // Howard Hinnant's civil_from_days.
  int64_t z = days + 719468;
  int64_t era = z / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = yoe + era * 400;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t d = doy - (153 * mp + 2) / 5 + 1;
  int64_t m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) y++;
  char buf[40];
  int len = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", static_cast<int>(y), static_cast<int>(m), static_cast<int>(d),
                          static_cast<int>(rem / 3600), static_cast<int>(rem / 60 % 60), static_cast<int>(rem % 60));
  o.append(buf, static_cast<size_t>(len));
}

void AppendIPv6(std::string& o, const unsigned char* b) {
  unsigned g[8];
  for (int i = 0; i < 8; i++) g[i] = (static_cast<unsigned>(b[2 * i]) << 8) | b[2 * i + 1];
  char buf[64];
  if (g[0] == 0 && g[1] == 0 && g[2] == 0 && g[3] == 0 && g[4] == 0 && g[5] == 0xffff) {
    int len = std::snprintf(buf, sizeof buf, "::ffff:%u.%u.%u.%u", b[12], b[13], b[14], b[15]);
    o.append(buf, static_cast<size_t>(len));
    return;
  }
  int bestStart = -1, bestLen = 0;
  for (int i = 0; i < 8;) {
    if (g[i] != 0) {
      i++;
      continue;
    }
    int j = i;
    while (j < 8 && g[j] == 0) j++;
    if (j - i > bestLen) bestStart = i, bestLen = j - i;
    i = j;
  }
  auto groups = [&](int from, int to) {
    for (int i = from; i < to; i++) {
      if (i > from) o += ':';
      int len = std::snprintf(buf, sizeof buf, "%x", g[i]);
      o.append(buf, static_cast<size_t>(len));
    }
  };
  if (bestLen < 2) {
    groups(0, 8);
    return;
  }
  groups(0, bestStart);
  o += "::";
  groups(bestStart + bestLen, 8);
}

// The SOCKADDR `saddr=` hex of an x86_64 event (little-endian host order), as decodeSockaddr in
// src/audit/sockaddr.ts; false when it would report a problem or print text that is not plain.
bool AppendSockaddr(std::string& o, PlainCache& spec, const char* hex, long n, std::string* bytes) {
  if ((n & 1) != 0 || !DecodeHex(hex, n, bytes) || bytes->size() < 2) return false;
  const auto* b = reinterpret_cast<const unsigned char*>(bytes->data());
  size_t len = bytes->size();
  unsigned family = b[0] | (static_cast<unsigned>(b[1]) << 8);
  char buf[160];
  switch (family) {
    case 1: {
      o += "{\"family\":\"unix\",\"path\":";
      if (len <= 2) {
        o += "null";
      } else if (b[2] == 0) {
        std::string path = "@" + bytes->substr(3);
        if (!AppendPlain(o, spec, std::string_view(path))) return false;
      } else {
        size_t end = bytes->find('\0', 2);
        if (end == std::string::npos) end = len;
        if (!AppendPlain(o, spec, std::string_view(*bytes).substr(2, end - 2))) return false;
      }
      o += ",\"addr\":null,\"port\":null}";
      return true;
    }
    case 2: {
      if (len < 8) return false;
      int l = std::snprintf(buf, sizeof buf, "{\"family\":\"inet\",\"path\":null,\"addr\":\"%u.%u.%u.%u\",\"port\":%u}", b[4], b[5], b[6], b[7],
                            (static_cast<unsigned>(b[2]) << 8) | b[3]);
      o.append(buf, static_cast<size_t>(l));
      return true;
    }
    case 10: {
      if (len < 24) return false;
      o += "{\"family\":\"inet6\",\"path\":null,\"addr\":\"";
      AppendIPv6(o, b + 8);
      int l = std::snprintf(buf, sizeof buf, "\",\"port\":%u}", (static_cast<unsigned>(b[2]) << 8) | b[3]);
      o.append(buf, static_cast<size_t>(l));
      return true;
    }
    case 16: {
      if (len < 12) return false;
      uint32_t pid = b[4] | (b[5] << 8) | (b[6] << 16) | (static_cast<uint32_t>(b[7]) << 24);
      uint32_t groups = b[8] | (b[9] << 8) | (b[10] << 16) | (static_cast<uint32_t>(b[11]) << 24);
      int l = std::snprintf(buf, sizeof buf, "{\"family\":\"netlink\",\"path\":null,\"addr\":null,\"port\":null,\"pid\":%u,\"groups\":%u}", pid, groups);
      o.append(buf, static_cast<size_t>(l));
      return true;
    }
    default: {
      int l = std::snprintf(buf, sizeof buf, "{\"family\":%u,\"path\":null,\"addr\":null,\"port\":null}", family);
      o.append(buf, static_cast<size_t>(l));
      return true;
    }
  }
}

}  // namespace

bool ReplayPlainText(const ReplayPlainSpec& spec, std::string_view s) {
  bool space = false;
  for (unsigned char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
    if (spec.unsafeChars.find(static_cast<char>(c)) != std::string::npos) return false;
    if (c == ' ') space = true;
  }
  size_t first = s.find_first_not_of(' ');
  if (first != std::string_view::npos && (s[first] == '{' || s[first] == '[')) return false;
  thread_local std::string buf;
  std::string_view lower = LowerInto(s, &buf);
  if (spec.shapeWords.Contains(lower)) return false;
  if (space) {
    if (spec.programHints.Contains(lower)) return false;
    if (lower.find("--") != std::string_view::npos && spec.secretWords.Contains(lower)) return false;
  }
  return true;
}

// Serial -> value, open addressing with linear probing and backward-shift deletion: the reassembler
// looks a serial up for every record and adds and removes one per event, and a node-based map paid
// an allocation and a free for each.
template <typename V>
class DoubleMap {
 public:
  DoubleMap() { Rehash(64); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  V* Find(double key) {
    for (size_t i = Slot(key);; i = (i + 1) & mask_) {
      if (!used_[i]) return nullptr;
      if (keys_[i] == key) return &vals_[i];
    }
  }
  void Set(double key, V v) {
    if ((size_ + 1) * 2 > keys_.size()) Rehash(keys_.size() * 2);
    size_t i = Slot(key);
    for (; used_[i]; i = (i + 1) & mask_) {
      if (keys_[i] == key) {
        vals_[i] = v;
        return;
      }
    }
    used_[i] = 1, keys_[i] = key, vals_[i] = v;
    size_++;
  }
  void Erase(double key) {
    size_t i = Slot(key);
    for (;; i = (i + 1) & mask_) {
      if (!used_[i]) return;
      if (keys_[i] == key) break;
    }
    // Backward shift: move later members of the probe run into the hole.
    size_t hole = i;
    for (size_t j = (i + 1) & mask_; used_[j]; j = (j + 1) & mask_) {
      size_t home = Slot(keys_[j]);
      bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
      if (movable) {
        keys_[hole] = keys_[j], vals_[hole] = vals_[j];
        hole = j;
      }
    }
    used_[hole] = 0;
    size_--;
  }

 private:
  size_t Slot(double key) const {
    uint64_t b;
    std::memcpy(&b, &key, sizeof b);
    b ^= b >> 33;
    b *= 0xff51afd7ed558ccdULL;
    b ^= b >> 33;
    return static_cast<size_t>(b) & mask_;
  }
  void Rehash(size_t cap) {
    std::vector<double> keys = std::move(keys_);
    std::vector<V> vals = std::move(vals_);
    std::vector<uint8_t> used = std::move(used_);
    keys_.assign(cap, 0);
    vals_.assign(cap, V());
    used_.assign(cap, 0);
    mask_ = cap - 1;
    size_ = 0;
    for (size_t i = 0; i < used.size(); i++) {
      if (used[i]) Set(keys[i], vals[i]);
    }
  }
  std::vector<double> keys_;
  std::vector<V> vals_;
  std::vector<uint8_t> used_;
  size_t mask_ = 0, size_ = 0;
};

struct ReplayEvents::FormatScratch {
  Text tty, comm, exe, key, cwd, title, name, nametype, mode, dev;
  std::vector<std::string> argv;
  std::vector<bool> argvSet;
  std::vector<PathOut> paths;
  std::string pathJson, sockaddr;
};

// ---- the reassembler's per-node memory of emitted stamps (src/audit/recent-stamps.ts) ----

class ReplayEvents::Stamps {
 public:
  explicit Stamps(size_t capacity) : capacity_(capacity) {}
  const double* Get(double serial) { return times_.Find(serial); }
  void Add(double serial, double timeMs) {
    if (double* t = times_.Find(serial)) {
      stale_[serial]++;
      *t = timeMs;
    } else {
      times_.Set(serial, timeMs);
    }
    fifo_.push_back(serial);
    if (times_.size() > capacity_) ForgetOldest();
  }

 private:
  void ForgetOldest() {
    while (!fifo_.empty()) {
      double s = fifo_.front();
      fifo_.pop_front();
      auto st = stale_.empty() ? stale_.end() : stale_.find(s);
      if (st == stale_.end()) {
        times_.Erase(s);
        break;
      }
      if (st->second == 1) stale_.erase(st);
      else st->second--;
    }
  }
  size_t capacity_;
  DoubleMap<double> times_;
  std::deque<double> fifo_;
  // serial -> earlier copies of it still in the FIFO (re-emitted while remembered: rare).
  std::unordered_map<double, uint32_t> stale_;
};

struct ReplayEvents::NodeState {
  explicit NodeState(size_t remember) : emitted(remember) {}
  std::string key;
  std::string name;
  bool hasName = false;
  DoubleMap<Entry*> inFlight;
  Stamps emitted;
  double lowest = -1, highest = -1;
  bool eoeSeen = false;
};

ReplayEvents::ReplayEvents(std::shared_ptr<const ReplaySpec> spec, Options opts)
    : spec_(std::move(spec)), opts_(opts), formatScratch_(std::make_unique<FormatScratch>()), plainCache_(std::make_unique<PlainCache>(spec_->plain)) {}

void ReplayEvents::SetTriage(std::unique_ptr<Triage> triage) { triage_ = std::move(triage); }

ReplayEvents::~ReplayEvents() {
  for (Entry* e : queue_) delete e;
  for (Entry* e : free_) delete e;
}

// ---- lines (src/sources/auditlog.ts LineSplitter, in bytes) ----

void ReplayEvents::Push(const char* data, size_t len, ReplayOutput* out) {
  againAt_ = kNoAgain;  // a new output: a run of repeated notes starts again
  stats_.bytes += len;
  size_t start = 0;
  for (;;) {
    long nl = Find(data, len, start, '\n');
    if (nl < 0) break;
    if (carry_.empty() && !skipping_) {
      // A run of complete lines inside this chunk.
      const void* last = memrchr(data + start, '\n', len - start);
      size_t lastNl = static_cast<size_t>(static_cast<const char*>(last) - data);
      Lines(data + start, lastNl - start, out);
      start = lastNl + 1;
      break;
    }
    if (skipping_) {
      skipping_ = false;
    } else {
      carry_.append(data + start, static_cast<size_t>(nl) - start);
      lineBuf_.swap(carry_);
      Lines(lineBuf_.data(), lineBuf_.size(), out);
    }
    carry_.clear();
    start = static_cast<size_t>(nl) + 1;
  }
  if (start < len && !skipping_) {
    if (carry_.size() + (len - start) > opts_.maxLineBytes) {
      stats_.overlongLines++;
      skipping_ = true;
      carry_.clear();
    } else {
      carry_.append(data + start, len - start);
    }
  }
}

void ReplayEvents::EndFile(ReplayOutput* out) {
  againAt_ = kNoAgain;
  if (!carry_.empty() && !skipping_) {
    lineBuf_.swap(carry_);
    Lines(lineBuf_.data(), lineBuf_.size(), out);
  }
  carry_.clear();
  skipping_ = false;
}

// A line over maxLineBytes is counted and skipped. TypeScript measures a valid UTF-8 line in UTF-16
// units, this in bytes: they differ only for a non-ASCII line within a factor of three of a megabyte.
void ReplayEvents::Lines(const char* p, size_t n, ReplayOutput* out) {
  size_t s = 0;
  for (;;) {
    long nl = Find(p, n, s, '\n');
    size_t e = nl < 0 ? n : static_cast<size_t>(nl);
    stats_.lines++;
    if (e - s > opts_.maxLineBytes) stats_.overlongLines++;
    else if (e > s) Line(p + s, e - s, out);
    if (nl < 0) break;
    s = e + 1;
  }
}

// ---- one record: parseRecord (src/audit/record.ts) on bytes ----

void ReplayEvents::Line(const char* p, size_t n, ReplayOutput* out) {
  stats_.records++;
  const char* reason = nullptr;
  Rec r{};
  size_t pos = 0;
  const char* node = nullptr;
  size_t nodeLen = 0;
  bool hasNode = false, hasTypeName = false;
  uint32_t type = 0;
  double sec = 0, serial = 0;
  uint32_t ms = 0;
  do {
    if (StartsWith(p, n, 0, "node=")) {
      long sp = Find(p, n, 5, ' ');
      if (sp < 0) {
        reason = "node= without a following field";
        break;
      }
      node = p + 5, nodeLen = static_cast<size_t>(sp) - 5, hasNode = true;
      pos = static_cast<size_t>(sp) + 1;
    }
    if (StartsWith(p, n, pos, "type=")) {
      long sp = Find(p, n, pos + 5, ' ');
      if (sp < 0) {
        reason = "type= without a following field";
        break;
      }
      hasTypeName = true;
      r.typeNameStart = static_cast<uint32_t>(pos + 5);
      r.typeNameLen = static_cast<uint32_t>(static_cast<size_t>(sp) - pos - 5);
      pos = static_cast<size_t>(sp) + 1;
      if (StartsWith(p, n, pos, "msg=")) pos += 4;
      typeKey_.assign(p + r.typeNameStart, r.typeNameLen);
      auto it = spec_->typeNumbers.find(typeKey_);
      type = it != spec_->typeNumbers.end() ? it->second : spec_->lookupType ? spec_->lookupType(typeKey_.data(), typeKey_.size()) : 0;
    }
    if (!StartsWith(p, n, pos, "audit(")) {
      reason = "missing audit( timestamp";
      break;
    }
    pos += 6;
    r.idStart = static_cast<uint32_t>(pos);
    auto at = [&](size_t i) { return i < n ? static_cast<unsigned char>(p[i]) : -1; };
    int digits = 0;
    int c = at(pos);
    while (c >= '0' && c <= '9') sec = sec * 10 + (c - '0'), c = at(++pos), digits++;
    if (digits == 0 || c != '.') {
      reason = "bad audit timestamp seconds";
      break;
    }
    if (sec > kMaxDateSeconds) {
      reason = "audit timestamp out of range";
      break;
    }
    c = at(++pos);
    digits = 0;
    int msDigits = 0;
    while (c >= '0' && c <= '9') {
      if (msDigits < 3) ms = ms * 10 + static_cast<uint32_t>(c - '0'), msDigits++;
      c = at(++pos), digits++;
    }
    if (digits == 0 || c != ':') {
      reason = "bad audit timestamp milliseconds";
      break;
    }
    while (msDigits < 3) ms *= 10, msDigits++;
    c = at(++pos);
    digits = 0;
    while (c >= '0' && c <= '9') serial = serial * 10 + (c - '0'), c = at(++pos), digits++;
    if (digits == 0 || c != ')') {
      reason = "bad audit serial";
      break;
    }
    r.idLen = static_cast<uint32_t>(pos - r.idStart);
    pos++;
    if (at(pos) == ':') pos++;
    while (at(pos) == ' ') pos++;
    if (type == 0 && !hasTypeName) {
      reason = "record without a type";
      break;
    }
  } while (false);
  if (reason != nullptr) {
    stats_.parseErrors++;
    if (out->failures.size() < opts_.failureLimit) out->failures.push_back({reason, std::string(p, n)});
    return;
  }
  long sep = Find(p, n, pos, '\x1d');
  r.type = type;
  r.bodyStart = static_cast<uint32_t>(pos);
  r.bodyEnd = static_cast<uint32_t>(sep < 0 ? n : static_cast<size_t>(sep));
  r.sec = sec;
  r.ms = ms;
  r.length = static_cast<uint32_t>(n);
  PushRecord(p, n, r, node, nodeLen, hasNode, serial, out);
}

// ---- reassembly (Reassembler.pushParsed and what it calls) ----

ReplayEvents::NodeState* ReplayEvents::State(const char* node, size_t nodeLen, bool hasNode) {
  // A log is one node's, or a few nodes' interleaved: the last state is nearly always the one.
  NodeState* last = lastState_;
  if (last != nullptr && last->hasName == hasNode && (!hasNode || (last->name.size() == nodeLen && std::memcmp(last->name.data(), node, nodeLen) == 0))) {
    return last;
  }
  lastState_ = StateLookup(node, nodeLen, hasNode);
  return lastState_;
}

ReplayEvents::NodeState* ReplayEvents::StateLookup(const char* node, size_t nodeLen, bool hasNode) {
  nodeKey_.assign(1, hasNode ? '1' : '0');
  if (hasNode) nodeKey_.append(node, nodeLen);
  auto it = nodeByKey_.find(nodeKey_);
  if (it != nodeByKey_.end()) return it->second;
  if (nodes_.size() >= opts_.maxNodes) ForgetIdleNode();
  auto s = std::make_unique<NodeState>(opts_.rememberEmitted);
  s->key = nodeKey_;
  s->hasName = hasNode;
  if (hasNode) s->name.assign(node, nodeLen);
  NodeState* raw = s.get();
  nodes_.push_back(std::move(s));
  nodeByKey_.emplace(raw->key, raw);
  return raw;
}

void ReplayEvents::ForgetIdleNode() {
  for (size_t i = 0; i < nodes_.size(); i++) {
    if (nodes_[i]->inFlight.empty()) {
      if (lastState_ == nodes_[i].get()) lastState_ = nullptr;
      nodeByKey_.erase(nodes_[i]->key);
      nodes_.erase(nodes_.begin() + static_cast<long>(i));
      return;
    }
  }
}

void ReplayEvents::TrackSerial(NodeState* s, double serial) {
  if (s->highest < 0 || serial - s->highest > opts_.maxSerialJump || s->highest - serial > opts_.maxSerialJump) {
    s->lowest = serial, s->highest = serial;
    return;
  }
  if (serial > s->highest) {
    stats_.serialGaps += serial - s->highest - 1;
    s->highest = serial;
  } else if (serial < s->highest) {
    if (serial > s->lowest) {
      if (stats_.serialGaps > 0) stats_.serialGaps--;
    } else if (serial < s->lowest) {
      stats_.serialGaps += s->lowest - serial - 1;
      s->lowest = serial;
    }
  }
}

ReplayEvents::Entry* ReplayEvents::NewEntry() {
  Entry* e;
  if (free_.empty()) {
    e = new Entry();
  } else {
    e = free_.back();
    free_.pop_back();
  }
  e->arena.clear();
  e->recs.clear();
  e->late = e->done = e->needsEoe = false;
  return e;
}

void ReplayEvents::Recycle(Entry* e) {
  // Keep the arenas of ordinary events; a huge one is given back.
  if (e->arena.capacity() > (64u << 10) || free_.size() >= 1024) {
    delete e;
    return;
  }
  free_.push_back(e);
}

void ReplayEvents::PushRecord(const char* p, size_t n, const Rec& rin, const char* node, size_t nodeLen, bool hasNode, double serial,
                              ReplayOutput* out) {
  const double timeMs = rin.sec * 1000 + rin.ms;
  pushed_++;
  NodeState* state = State(node, nodeLen, hasNode);
  if (rin.type == kEoe) state->eoeSeen = true;
  Entry* entry = nullptr;
  if (Entry** found = state->inFlight.Find(serial)) entry = *found;
  if (entry != nullptr && entry->timeMs != timeMs) {
    FinishAged(entry, out);
    entry = nullptr;
  }
  Rec r = rin;
  if (entry == nullptr) {
    const double* emittedAt = state->emitted.Get(serial);
    bool late = emittedAt != nullptr && *emittedAt == timeMs;
    if (late) stats_.lateRecords++;
    else if (r.type < 1200 || r.type > 1299) TrackSerial(state, serial);
    if (!late && IsUserMessageType(r.type)) {
      Entry& e = single_;
      e.node = state, e.serial = serial, e.timeMs = timeMs;
      e.arena.assign(p, n);
      r.offset = 0;
      e.recs.assign(1, r);
      Emit(&e, false, out);
      Expire(out);
      return;
    }
    entry = NewEntry();
    entry->node = state, entry->serial = serial, entry->timeMs = timeMs, entry->bornAt = pushed_;
    entry->late = late;
    entry->needsEoe = IsSyscallOnlyType(r.type);
    state->inFlight.Set(serial, entry);
    queue_.push_back(entry);
    inFlight_++;
  } else if (!entry->needsEoe && IsSyscallOnlyType(r.type)) {
    entry->needsEoe = true;
  }
  r.offset = static_cast<uint32_t>(entry->arena.size());
  entry->arena.append(p, n);
  entry->recs.push_back(r);
  if (r.type == kEoe) Finish(entry, entry->late, out);
  if (inFlight_ > opts_.maxInFlight) EvictOldest(out);
  Expire(out);
}

void ReplayEvents::Expire(ReplayOutput* out) {
  if (inFlight_ == 0) {
    for (Entry* e : queue_) Recycle(e);
    queue_.clear();
    return;
  }
  // Replay ages by records: the clock (records pushed) never steps back.
  const double limit = static_cast<double>(pushed_) - static_cast<double>(opts_.maxAgeRecords);
  while (!queue_.empty()) {
    Entry* e = queue_.front();
    if (!e->done) {
      if (static_cast<double>(e->bornAt) > limit) break;
      FinishAged(e, out);
    }
    queue_.pop_front();
    Recycle(e);
  }
}

void ReplayEvents::EvictOldest(ReplayOutput* out) {
  while (!queue_.empty()) {
    Entry* e = queue_.front();
    queue_.pop_front();
    if (e->done) {
      Recycle(e);
      continue;
    }
    stats_.evicted++;
    FinishAged(e, out);
    Recycle(e);
    break;
  }
}

void ReplayEvents::Flush(ReplayOutput* out) {
  againAt_ = kNoAgain;
  for (Entry* e : queue_) {
    if (!e->done) FinishAged(e, out);
  }
  for (Entry* e : queue_) Recycle(e);
  queue_.clear();
}

void ReplayEvents::FinishAged(Entry* e, ReplayOutput* out) { Finish(e, e->late || (e->needsEoe && e->node->eoeSeen), out); }

void ReplayEvents::Finish(Entry* e, bool incomplete, ReplayOutput* out) {
  e->done = true;
  inFlight_--;
  Entry** found = e->node->inFlight.Find(e->serial);
  if (found != nullptr && *found == e) e->node->inFlight.Erase(e->serial);
  Emit(e, incomplete, out);
}

// ---- one event: its JSON line (buildEvent + redactAuditEvent + JSON.stringify), or TypeScript's ----


void ReplayEvents::Emit(Entry* e, bool incomplete, ReplayOutput* out) {
  e->node->emitted.Add(e->serial, e->timeMs);
  stats_.events++;
  if (incomplete) stats_.incomplete++;
  size_t mark = out->out.size();
  if (triage_ != nullptr) {
    if (!incomplete && (Note(*e, out) || Repeat(*e, out))) return;
    mark = out->out.size();  // after a template announcement: the event comes after it
  } else if (Format(*e, incomplete, out->out)) {
    stats_.native++;
    return;
  }
  out->out.resize(mark);
  factsValid_ = false;  // the event may change the process table: the next note goes in full
  stats_.fallback++;
  ReplayOutput::Fallback f{mark, incomplete, static_cast<uint32_t>(out->fallbackRecords.size()), static_cast<uint32_t>(e->recs.size())};
  for (const Rec& r : e->recs) {
    out->fallbackRecords.emplace_back(static_cast<uint32_t>(out->fallbackBytes.size()), r.length);
    out->fallbackBytes.append(e->arena, r.offset, r.length);
  }
  out->fallbacks.push_back(f);
}

bool ReplayEvents::Note(const Entry& e, ReplayOutput* out) {
  // The records as the reader would have received them, in place in the entry's arena: from "audit("
  // to the end of the kernel's text (auditd's enrichment after \x1d is not the kernel's).
  triageRecords_.clear();
  for (const Rec& r : e.recs) {
    const uint32_t from = r.idStart - 6;
    triageRecords_.push_back(RecordRef{r.type, r.offset + from, r.bodyEnd - from, 1});
  }
  if (!triage_->SummarizeEvent(e.arena, triageRecords_, &note_)) return false;
  stats_.noted++;
  NoteNode(*e.node, out);
  // The process facts: from the NUL before the pid (the 4th) to the end, or for an exec to the NUL
  // before its argv (the 13th), which is what a later non-exec note of the same facts leaves unchanged.
  const bool exec = note_[0] == 'e';
  size_t at = std::string::npos, factsEnd = note_.size(), timeAt = 0;
  for (size_t i = 0, nul = 0; i < note_.size(); i++) {
    if (note_[i] != '\0') continue;
    nul++;
    if (nul == 2) timeAt = i + 1;
    if (nul == 4) at = i;
    if (nul == 13 && exec) {
      factsEnd = i;
      break;
    }
  }
  if (at == std::string::npos) {  // not the shape Summarize writes: in full, and nothing to compare with
    factsValid_ = false;
    AppendNote(note_, out);
    return true;
  }
  const std::string_view facts(note_.data() + at, factsEnd - at);
  if (!exec && factsValid_ && facts == lastFacts_) {
    uint64_t timeMs = 0;
    for (size_t i = timeAt; i < note_.size() && note_[i] != '\0'; i++) timeMs = timeMs * 10 + static_cast<uint64_t>(note_[i] - '0');
    NoteAgain(timeMs, out);
    return true;
  }
  lastFacts_.assign(facts);
  factsValid_ = true;
  AppendNote(note_, out);
  return true;
}

// Pids are a node's own: the notes that follow are of this node (`N\0` and 0, or 1 and the name), so
// JavaScript folds them into that node's process table. Written only when the node changes; the
// default node (no prefix) is the one in force at the start, so a one-node log carries none.
void ReplayEvents::NoteNode(const NodeState& node, ReplayOutput* out) {
  if (node.key == notedNode_) return;
  notedNode_ = node.key;
  factsValid_ = false;  // equal facts of another node's pid are not a repeat
  againAt_ = kNoAgain;
  out->out.append("N\0", 2);
  out->out.append(node.key);
  out->noteEnds.push_back(static_cast<uint32_t>(out->out.size()));
}

void ReplayEvents::AppendNote(const std::string& note, ReplayOutput* out) {
  againAt_ = kNoAgain;
  out->out.append(note);
  out->noteEnds.push_back(static_cast<uint32_t>(out->out.size()));
}

void ReplayEvents::NoteAgain(uint64_t timeMs, ReplayOutput* out) {
  stats_.notesAgain++;
  if (againAt_ != kNoAgain && againAt_ + kAgainBytes == out->out.size() && againCount_ < kMaxAgainRun) {
    againCount_++;
    againTimeMs_ = std::max(againTimeMs_, timeMs);
  } else {
    againAt_ = out->out.size();
    againCount_ = 1;
    againTimeMs_ = timeMs;
    out->out.append(kAgainBytes, '0');
    out->out[againAt_] = 'a';
    out->out[againAt_ + 1] = '\0';
    out->out[againAt_ + 10] = '\0';
    out->noteEnds.push_back(static_cast<uint32_t>(out->out.size()));
  }
  // Fixed widths, rewritten in place as the run grows: 8 digits of count, 16 of time (< 2^53).
  char* p = &out->out[againAt_];
  uint64_t v = againCount_;
  for (size_t i = 9; i >= 2; i--, v /= 10) p[i] = static_cast<char>('0' + v % 10);
  v = againTimeMs_;
  for (size_t i = kAgainBytes - 1; i >= 11; i--, v /= 10) p[i] = static_cast<char>('0' + v % 10);
}

namespace {

// src/native/repeat-note.ts reads each number of a repeat note's stamp as at most 15 digits; C++ takes
// longer runs (leading zeros): such an event is never collapsed, so every repeat note can be read.
bool ShortStampNumbers(const char* id, size_t n) {
  size_t run = 0;
  for (size_t i = 0; i < n; i++) {
    run = id[i] >= '0' && id[i] <= '9' ? run + 1 : 0;
    if (run > 15) return false;
  }
  return true;
}

}  // namespace

bool ReplayEvents::ShortStampNumbers(const Entry& e) {
  const Rec& first = e.recs.front();
  return credwatch::ShortStampNumbers(e.arena.data() + first.offset + first.idStart, first.idLen);
}

bool ReplayEvents::Repeat(const Entry& e, ReplayOutput* out) {
  if (!triage_->repeatsOn() || !triage_->passedInteresting() || !ShortStampNumbers(e)) return false;
  factsValid_ = false;  // a repeat (or the template's event after its announcement) folds its process in
  repeatRecords_.clear();
  repeatScope_.clear();
  for (const Rec& r : e.recs) {
    const uint32_t from = r.idStart - 6;
    repeatRecords_.push_back(RecordRef{r.type, r.offset + from, r.length - from, 1});
    repeatScope_.append(e.arena, r.offset, from);
    repeatScope_.push_back('\n');  // a line holds no newline: prefixes cannot run into each other
  }
  const RepeatDecision d = repeats_.Decide(repeatRecords_, e.arena, repeatScope_);
  if (d == RepeatDecision::kSkipped) return false;
  NoteNode(*e.node, out);
  out->out.push_back(d == RepeatDecision::kRepeat ? 'R' : 'T');
  out->out.push_back('\0');
  out->out.append(repeats_.note());
  if (d == RepeatDecision::kTemplate) {
    char num[16];
    out->out.push_back('\0');
    for (size_t i = 0; i < e.recs.size(); i++) {
      if (i > 0) out->out.push_back(',');
      out->out.append(num, static_cast<size_t>(std::to_chars(num, num + sizeof(num), e.recs[i].type).ptr - num));
    }
    out->out.push_back('\0');
    for (size_t i = 0; i < e.recs.size(); i++) {
      if (i > 0) out->out.push_back(',');
      out->out.append(num, static_cast<size_t>(std::to_chars(num, num + sizeof(num), e.recs[i].idStart - 6).ptr - num));
    }
  }
  out->noteEnds.push_back(static_cast<uint32_t>(out->out.size()));
  if (d == RepeatDecision::kRepeat) stats_.repeats++;
  return d == RepeatDecision::kRepeat;
}

bool ReplayEvents::Format(const Entry& e, bool incomplete, std::string& o) {
  PlainCache& plain = *plainCache_;
  const char* arena = e.arena.data();
  const Rec* sys = nullptr;
  for (const Rec& r : e.recs) {
    switch (r.type) {
      case kSyscall:
        if (sys != nullptr) return false;  // a duplicate SYSCALL record: TypeScript's rules
        sys = &r;
        break;
      case kExecve: case kCwd: case kPath: case kProctitle: case kBprmFcaps: case kEoe:
        break;
      case kSockaddr:
        if (sys == nullptr) return false;  // its byte order would come from a later record
        break;
      default:
        return false;
    }
  }
  if (sys == nullptr) return false;
  const Rec& first = e.recs.front();
  if (!(first.sec < kYear10000) || !(e.serial <= kMaxSafeInteger)) return false;

  o += "{\"id\":\"";
  o.append(arena + first.offset + first.idStart, first.idLen);
  o += "\",\"time\":\"";
  if (first.sec != isoSec_) {
    isoPrefix_.clear();
    AppendIsoSeconds(isoPrefix_, static_cast<int64_t>(first.sec));
    isoSec_ = first.sec;
  }
  o += isoPrefix_;
  const char ms[6] = {'.', static_cast<char>('0' + first.ms / 100), static_cast<char>('0' + first.ms / 10 % 10), static_cast<char>('0' + first.ms % 10), 'Z', 0};
  o.append(ms, 5);
  o += "\",\"timeMs\":";
  AppendNumber(o, e.timeMs);
  o += ",\"serial\":";
  AppendNumber(o, e.serial);
  o += ",\"node\":";
  if (!e.node->hasName) o += "null";
  else if (!AppendAscii(o, e.node->name)) return false;
  o += ",\"types\":[";
  for (size_t i = 0; i < e.recs.size(); i++) {
    const Rec& r = e.recs[i];
    std::string_view name(arena + r.offset + r.typeNameStart, r.typeNameLen);
    if (name.empty() || name.rfind("UNKNOWN[", 0) == 0) return false;
    if (i > 0) o += ',';
    if (!AppendAscii(o, name)) return false;
  }
  o += "],\"incomplete\":";
  o += incomplete ? "true" : "false";

  // SYSCALL (readSyscall): every field, the last of a name wins.
  Cursor c;
  bool tooLong = false;
  Int pid, ppid, uid, euid, gid, egid, auid, ses, nr, exitv;
  FormatScratch& fs = *formatScratch_;
  Text &tty = fs.tty, &comm = fs.comm, &exe = fs.exe, &key = fs.key;
  for (Text* t : {&tty, &comm, &exe, &key}) t->SetNull();
  bool keySeen = false, archSeen = false;
  int success = -1;
  const char* text = arena + sys->offset;
  c.Reset(text, sys->length, sys->bodyStart, sys->bodyEnd, false);
  while (c.Next()) {
    switch (c.ke - c.ks) {
      case 3:
        if (c.KeyIs("pid")) pid = ReadInt(c, &tooLong);
        else if (c.KeyIs("uid")) uid = ReadInt(c, &tooLong);
        else if (c.KeyIs("gid")) gid = ReadInt(c, &tooLong);
        else if (c.KeyIs("ses")) ses = ReadInt(c, &tooLong);
        else if (c.KeyIs("tty")) {
          if ((c.quote == 0 && c.Raw() == "(none)") || c.IsAbsent()) tty.SetNull();
          else tty.SetView(c.Raw());
        } else if (c.KeyIs("exe")) Untrusted(c, &exe);
        else if (c.KeyIs("key")) keySeen = true, Untrusted(c, &key);
        break;
      case 4:
        if (c.KeyIs("arch")) {
          archSeen = true;
          if (c.Raw() != "c000003e") return false;  // x86_64 only here
        } else if (c.KeyIs("ppid")) ppid = ReadInt(c, &tooLong);
        else if (c.KeyIs("auid")) auid = ReadInt(c, &tooLong);
        else if (c.KeyIs("euid")) euid = ReadInt(c, &tooLong);
        else if (c.KeyIs("egid")) egid = ReadInt(c, &tooLong);
        else if (c.KeyIs("comm")) Untrusted(c, &comm);
        else if (c.KeyIs("exit")) exitv = ReadInt(c, &tooLong);
        break;
      case 7:
        if (c.KeyIs("syscall")) nr = ReadInt(c, &tooLong);
        else if (c.KeyIs("success")) success = c.Raw() == "yes" ? 1 : c.Raw() == "no" ? 0 : -1;
        break;
      default:
        break;
    }
  }
  // Without key= TypeScript looks for one in the other records; without arch= the names differ.
  if (tooLong || !keySeen || !archSeen) return false;
  for (Int* id : {&auid, &ses}) {
    if (!id->null && id->v == 4294967295.0) id->null = true;
  }
  o += ",\"syscall\":{\"arch\":\"x86_64\",\"nr\":";
  AppendInt(o, nr);
  o += ",\"name\":";
  const std::vector<std::string>& names = spec_->x86_64Syscalls;
  if (!nr.null && nr.v >= 0 && nr.v < static_cast<double>(names.size()) && !names[static_cast<size_t>(nr.v)].empty()) {
    o += '"';
    o += names[static_cast<size_t>(nr.v)];
    o += '"';
  } else {
    o += "null";
  }
  o += ",\"success\":";
  o += success == 1 ? "true" : success == 0 ? "false" : "null";
  o += ",\"exit\":";
  AppendInt(o, exitv);

  // The other records, in arrival order.
  Text &cwd = fs.cwd, &title = fs.title;
  cwd.SetNull();
  title.SetNull();
  bool haveArgv = false;
  double argc = -1;
  size_t argvCount = 0;  // fs.argv keeps its strings' buffers from event to event
  fs.argvSet.clear();
  fs.paths.clear();
  fs.pathJson.clear();
  std::string& sockaddr = fs.sockaddr;
  sockaddr.clear();
  bool haveSockaddr = false;
  for (const Rec& r : e.recs) {
    const char* t = arena + r.offset;
    switch (r.type) {
      case kExecve: {
        haveArgv = true;
        c.Reset(t, r.length, r.bodyStart, r.bodyEnd, true);
        while (c.Next()) {
          if (c.KeyIs("argc")) {
            Int n = ReadInt(c, &tooLong);
            if (!n.null && n.v >= 0) argc = n.v;
            continue;
          }
          if (t[c.ks] != 'a') continue;
          long p = c.ks + 1;
          size_t index = 0;
          int digits = 0;
          for (; p < c.ke && t[p] >= '0' && t[p] <= '9'; p++) {
            if (index < kMaxArgv) index = index * 10 + static_cast<size_t>(t[p] - '0');
            digits++;
          }
          if (digits == 0) continue;
          if (index >= kMaxArgv) return false;
          if (p != c.ke) {
            // aN_len and aN[k] (a chunked argument): TypeScript assembles those.
            if ((c.ke - p == 4 && std::memcmp(t + p, "_len", 4) == 0) || (t[p] == '[' && t[c.ke - 1] == ']')) return false;
            continue;
          }
          if (argvCount <= index) {
            argvCount = index + 1;
            if (fs.argv.size() < argvCount) fs.argv.resize(argvCount);
            fs.argvSet.resize(argvCount, false);
          }
          std::string& arg = fs.argv[index];
          if (c.quote != 0 || c.IsAbsent()) {
            std::string_view raw = c.Raw();
            arg.assign(raw.data(), raw.size());
          } else if (!DecodeHex(t + c.vs, c.ve - c.vs, &arg)) {
            return false;
          }
          fs.argvSet[index] = true;
        }
        break;
      }
      case kCwd:
        c.Reset(t, r.length, r.bodyStart, r.bodyEnd, true);
        while (c.Next()) {
          if (c.KeyIs("cwd")) Untrusted(c, &cwd);
        }
        break;
      case kPath: {
        double item = kMaxSafeInteger;
        Text &name = fs.name, &nametype = fs.nametype, &mode = fs.mode, &dev = fs.dev;
        for (Text* x : {&name, &nametype, &mode, &dev}) x->SetNull();
        Int inode;
        c.Reset(t, r.length, r.bodyStart, r.bodyEnd, false);
        while (c.Next()) {
          if (c.KeyIs("item")) {
            Int it = ReadInt(c, &tooLong);
            if (!it.null) item = it.v;
          } else if (c.KeyIs("name")) Untrusted(c, &name);
          else if (c.KeyIs("nametype")) nametype.SetView(c.Raw());
          else if (c.KeyIs("inode")) inode = ReadInt(c, &tooLong);
          else if (c.KeyIs("mode")) {
            if (c.IsAbsent()) mode.SetNull();
            else mode.SetView(c.Raw());
          } else if (c.KeyIs("dev") && !c.IsAbsent()) dev.SetView(c.Raw());
        }
        if (tooLong) return false;
        std::string& j = fs.pathJson;
        size_t start = j.size();
        j += "{\"name\":";
        if (!AppendPlain(j, plain, name)) return false;
        j += ",\"nametype\":";
        if (!AppendRaw(j, nametype)) return false;
        j += ",\"inode\":";
        AppendInt(j, inode);
        j += ",\"mode\":";
        if (!AppendRaw(j, mode)) return false;
        if (!dev.null) {
          j += ",\"dev\":";
          if (!AppendRaw(j, dev)) return false;
        }
        j += '}';
        fs.paths.push_back(PathOut{item, start, j.size() - start});
        break;
      }
      case kSockaddr:
        if (haveSockaddr) break;
        c.Reset(t, r.length, r.bodyStart, r.bodyEnd, true);
        while (c.Next()) {
          if (!c.KeyIs("saddr")) continue;
          if (!AppendSockaddr(sockaddr, plain, t + c.vs, c.ve - c.vs, &bytes_)) return false;
          haveSockaddr = true;
          break;
        }
        break;
      case kProctitle:
        c.Reset(t, r.length, r.bodyStart, r.bodyEnd, true);
        while (c.Next()) {
          if (!c.KeyIs("proctitle")) continue;
          if (c.quote != 0) {
            title.SetView(c.Raw());
          } else {
            std::string& s = title.own;
            if (!DecodeHex(t + c.vs, c.ve - c.vs, &s)) return false;
            // NUL-separated parts joined by spaces; a trailing NUL ends the last part.
            if (!s.empty() && s.back() == '\0') s.pop_back();
            std::replace(s.begin(), s.end(), '\0', ' ');
            title.SetOwn();
          }
          break;
        }
        break;
      default:
        break;
    }
  }
  if (tooLong) return false;

  o += "},\"process\":{";
  // The order of ProcessInfo's fields (src/audit/event.ts), as JSON.stringify writes them.
  const std::pair<const char*, const Int*> ids[] = {{"\"pid\":", &pid},   {",\"ppid\":", &ppid}, {",\"uid\":", &uid},   {",\"euid\":", &euid},
                                                    {",\"gid\":", &gid},  {",\"egid\":", &egid}, {",\"auid\":", &auid}, {",\"ses\":", &ses}};
  for (const auto& [name, value] : ids) {
    o += name;
    AppendInt(o, *value);
  }
  o += ",\"tty\":";
  if (!AppendRaw(o, tty)) return false;
  o += ",\"comm\":";
  if (!AppendPlain(o, plain, comm)) return false;
  o += ",\"exe\":";
  if (!AppendPlain(o, plain, exe)) return false;
  o += ",\"cwd\":";
  if (!AppendPlain(o, plain, cwd)) return false;
  o += ",\"argv\":";
  if (!haveArgv) {
    o += "null";
  } else {
    // ArgvBuilder.build() would report a problem for any of these.
    if (argc < 0 || argc > static_cast<double>(kMaxArgv) || static_cast<double>(argvCount) != argc) return false;
    for (bool set : fs.argvSet) {
      if (!set) return false;  // a missing argument
    }
    if (!ArgvPlain(plain, fs.argv, argvCount)) return false;
    o += '[';
    for (size_t i = 0; i < argvCount; i++) {
      if (i > 0) o += ',';
      AppendAscii(o, fs.argv[i]);
    }
    o += ']';
  }
  o += ",\"title\":";
  if (!AppendPlain(o, plain, title)) return false;
  o += "},\"paths\":[";
  std::stable_sort(fs.paths.begin(), fs.paths.end(), [](const PathOut& a, const PathOut& b) { return a.item < b.item; });
  for (size_t i = 0; i < fs.paths.size(); i++) {
    if (i > 0) o += ',';
    o.append(fs.pathJson, fs.paths[i].start, fs.paths[i].len);
  }
  o += "],\"sockaddr\":";
  if (haveSockaddr) o += sockaddr;
  else o += "null";
  o += ",\"key\":";
  if (!key.null && key.v.find('\x01') != std::string_view::npos) return false;  // several keys: `keys` too
  if (!AppendRaw(o, key)) return false;
  o += "}\n";
  return true;
}

}  // namespace credwatch
