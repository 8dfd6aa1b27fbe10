// Triage on the reader thread: most audited exec and connect events (a shell running sed, a health
// check connecting to a local socket) cannot make any rule fire, and building them into full events in
// JavaScript was ~100 us each (issue 10). The reader holds the records of each exec/connect event
// until its EOE, asks the TriageSpec whether a rule could possibly care, and then either releases the
// records unchanged (the event takes the full TypeScript path) or replaces them with one compact
// process note: what the process table needs (pid, ppid, ids, exe, comm, cwd, argv) plus the serial
// and record types, so serial-gap tracking and record metrics stay exact.
//
// The spec is compiled from the rule pack in TypeScript (src/detect/triage-spec.ts) and is
// conservative by construction; this side adds its own caution: anything it does not fully
// understand (a record type it does not expect, a chunked or missing argument, an undecodable value,
// a record of the event seen before its SYSCALL record, no EOE within kMaxHoldMs) passes through.
// Pure code apart from the Batch it appends to: no N-API, no syscalls.
#pragma once

#include <bitset>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "batch.h"
#include "literal_set.h"
#include "repeat_cache.h"

namespace credwatch {

// Pseudo record types: above any netlink message type (16 bits), so they can share the batch.
constexpr uint32_t kProcessNoteType = 0x10001;
constexpr uint32_t kProcSnapshotType = 0x10002;

// kOpen is offered only by replay (src/cli/commands/replay-findings.ts): live, a watch on a
// credential is the reason an open is audited at all, so there is little to triage.
enum class TriageKind : uint8_t { kNone = 0, kExec = 1, kConnect = 2, kOpen = 3 };

struct TriageSpec {
  struct Syscall {
    uint32_t arch;  // AUDIT_ARCH_* as in the record's arch= field
    uint32_t nr;
    TriageKind kind;
  };
  std::vector<Syscall> syscalls;
  std::vector<std::string> execPrograms;      // globs on basename(exe) and basename(argv[0])
  std::vector<std::string> execExes;          // globs: with '/' on the exe path, else its basename
  LiteralSet execArgvLiterals;  // searched case-insensitively in the cmdline
  bool execAll = false;
  std::vector<std::string> connectExes;
  std::bitset<65536> connectPorts;
  LiteralSet connectUnixLiterals;
  bool connectUnixAll = false;
  LiteralSet connectInet4Literals;
  bool connectInet4All = false;
  bool connectInet6All = false;
  bool connectAll = false;
  // open: lower-case literals of the path predicates, searched in each absolute PATH name; a relative
  // or unnormalised name (the engine joins and normalises those) always passes.
  LiteralSet openPathLiterals;
  // open: audit keys that make an event a hit on a watched object (WATCH_KEY_CLASS); a key holding one passes.
  std::vector<std::string> openObjectKeys;
  bool openAll = false;
  // Passed events equal to a recent one go up as repeat notes (native/repeat_cache.h).
  bool repeats = false;
};

struct TriageStats {
  uint64_t summarized = 0;         // events replaced by a process note
  uint64_t summarizedRecords = 0;  // records those notes stand for
  uint64_t passed = 0;             // exec/connect events a rule might care about: released unchanged
  uint64_t unsure = 0;             // events released because something was not understood
  uint64_t expired = 0;            // events released because no EOE came within kMaxHoldMs
};

// '*' and '?' only ('*' also crosses '/'), like compileGlob in src/detect/match.ts but never narrower.
bool GlobMatch(const char* glob, size_t globLen, const char* s, size_t n);

class Triage {
 public:
  static constexpr uint64_t kMaxHoldMs = 20;
  static constexpr size_t kMaxHeld = 256;

  Triage() = default;
  ~Triage();
  Triage(const Triage&) = delete;
  Triage& operator=(const Triage&) = delete;

  // One record. Appends to `out` whatever is ready for JavaScript: the record itself (not an
  // exec/connect event), a released event, or a note. `nowMs` is a monotonic clock.
  void Push(uint32_t type, const char* text, size_t len, uint64_t nowMs, Batch* out);
  // Releases, unchanged, events held longer than kMaxHoldMs.
  void Expire(uint64_t nowMs, Batch* out);
  // One complete event already reassembled (replay): true and `note` filled when it is boring (a
  // process note replaces it); false when it must take the full path. Counted as Push() counts.
  bool SummarizeEvent(const std::string& bytes, const std::vector<RecordRef>& records, std::string* note);
  // Releases every held event unchanged (stop).
  void ReleaseAll(Batch* out);
  // A new spec (or none: every record goes straight through). Held events are released first.
  void SetSpec(std::shared_ptr<const TriageSpec> spec, Batch* out);
  bool enabled() const { return spec_ != nullptr; }
  bool holding() const { return !held_.empty(); }
  const TriageStats& stats() const { return stats_; }
  const RepeatStats& repeatStats() const { return repeats_.stats(); }
  // After a SummarizeEvent() that returned false: true when the event was passed because a rule may
  // fire on it (not because something was not understood), which is what repeat collapse may take.
  bool passedInteresting() const { return passedInteresting_; }
  bool repeatsOn() const { return spec_ != nullptr && spec_->repeats; }

 private:
  struct Held {
    uint64_t serial = 0;
    uint64_t sinceMs = 0;
    std::string bytes;
    std::vector<RecordRef> records;
  };

  Held* Find(uint64_t serial);
  Held* Hold(uint64_t serial, uint64_t nowMs, Batch* out);
  void Release(Held* h, Batch* out);
  void Recycle(Held* h);
  void Complete(Held* h, Batch* out);
  // True and `note_` filled when the held event is boring.
  bool Summarize(const std::string& bytes, const std::vector<RecordRef>& records);
  bool ExecInteresting(const std::string& exe, const std::vector<std::string>& argv);
  bool ConnectInteresting(const std::string& exe, const std::string& saddr);
  bool OpenInteresting(const std::string& key, const std::string* names, size_t count);
  void RememberPassed(uint64_t serial);
  bool RecentlyPassed(uint64_t serial) const;

  std::shared_ptr<const TriageSpec> spec_;
  std::vector<Held*> held_;
  std::vector<Held*> free_;
  // Serials whose records went through before any SYSCALL record (e.g. an AVC logged mid-syscall):
  // their SYSCALL record must then go through too, or TypeScript would see half an event.
  uint64_t passedRing_[64] = {};
  size_t passedNext_ = 0;
  TriageStats stats_;
  // Passed events equal to a recent one become repeat notes (native/repeat_cache.h).
  RepeatCache repeats_;
  // Set by Summarize(): the event was passed because a rule may fire on it (not unsure, not another syscall).
  bool passedInteresting_ = false;
  std::string note_;
  std::string lower_;
  std::string value_;
  std::vector<std::string> argv_;
  std::vector<std::string> names_;  // an open's PATH names: the first nameCount_ are this event's
  size_t nameCount_ = 0;
};

}  // namespace credwatch
