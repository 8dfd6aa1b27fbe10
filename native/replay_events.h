// `credwatch replay --events` at file speed (issue 23). The TypeScript path turned every log line into
// a string, a parsed record, an AuditEvent, a redacted copy and a JSON line: ~20 us an event, most of
// it allocation. Here the bytes of a log go through a line splitter, the record header parser and a
// port of the TypeScript Reassembler (src/audit/reassembler.ts: same ageing by a window of records,
// eviction, late records, serial gaps, node bound), and each completed event is either written as its
// JSON line directly, or handed back whole to TypeScript, which builds and prints it the usual way.
//
// Written here only when the result is certainly byte-identical to what TypeScript prints: records of
// the common syscall-event types, x86_64, whole (unchunked) arguments, no decoding problem, every
// printed string printable ASCII, and "plain" by the ReplayPlainSpec (a conservative image of the
// redaction rules, compiled in src/detect/redact/plain-spec.ts: text that could hold a secret, or an
// argv whose structure could make one, goes to TypeScript). test/integration/replay/fast-path.test.ts
// compares both paths on every fixture. Pure code: no N-API (replay_events_js.cc is the binding).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "batch.h"
#include "literal_set.h"
#include "repeat_cache.h"

namespace credwatch {

class Triage;

struct ReplayPlainSpec {
  std::string unsafeChars;                // any of these bytes: not plain
  LiteralSet shapeWords;                  // anywhere (case-insensitively): not plain
  LiteralSet secretWords;                 // with "--" (a flag) in the text or an argument
  LiteralSet programHints;                // in text that holds a space
  std::vector<std::string> programs;      // argv: an argument whose basename is one of these
};

struct ReplaySpec {
  std::unordered_map<std::string, uint32_t> typeNumbers;  // record type name -> number
  std::vector<std::string> x86_64Syscalls;                 // by number; "" when unknown
  ReplayPlainSpec plain;
  // A type name not in typeNumbers (UNKNOWN[n], a newer auditd): its number, 0 when unknown.
  std::function<uint32_t(const char*, size_t)> lookupType;
};

struct ReplayStats {
  uint64_t bytes = 0, lines = 0, overlongLines = 0;
  uint64_t records = 0, events = 0, incomplete = 0, evicted = 0, parseErrors = 0, lateRecords = 0;
  double serialGaps = 0;
  uint64_t native = 0;    // events written here
  uint64_t fallback = 0;  // events handed to TypeScript
  uint64_t noted = 0;     // findings mode: events the triage replaced by a process note
  uint64_t repeats = 0;   // findings mode: passed events sent as a repeat note of an earlier one
  uint64_t notesAgain = 0;  // findings mode: notes of the previous note's process facts (in `a` runs)
};

// What one Push/Finish produced, in order: `out` holds JSON lines; each fallback event is to be
// printed at byte `outOffset` of `out` (before what follows there).
struct ReplayOutput {
  std::string out;
  std::string fallbackBytes;  // record lines of fallback events, back to back
  struct Fallback {
    size_t outOffset;
    bool incomplete;
    uint32_t firstRecord;  // index into fallbackRecords
    uint32_t recordCount;
  };
  std::vector<Fallback> fallbacks;
  std::vector<std::pair<uint32_t, uint32_t>> fallbackRecords;  // (offset, length) in fallbackBytes
  struct ParseFailure {
    const char* reason;
    std::string text;
  };
  std::vector<ParseFailure> failures;  // the first few only (failureLimit); all are counted
  // Findings mode: `out` holds process notes back to back (no JSON); each ends at noteEnds[i]. A
  // fallback event comes before the notes that start at or after its outOffset. With repeat collapse
  // (the triage spec's `repeats`) the notes also hold, each after a one-letter kind and a NUL:
  //   T  a template announcement (RepeatCache's, then NUL, the record types and NUL, each record's
  //      line prefix length before "audit(", comma-separated); the fallback event right after it is
  //      the template;
  //   R  a repeat note (RepeatCache's): an event equal to a template but for stamp, pid and a0..a3;
  //   a  a run of non-exec notes right after a note (nothing between) whose process facts they repeat,
  //      only their stamps differing: 8 digits of count, NUL, 16 digits of their latest time.
  std::vector<uint32_t> noteEnds;
  void Clear() {
    noteEnds.clear();
    out.clear();
    fallbackBytes.clear();
    fallbacks.clear();
    fallbackRecords.clear();
    failures.clear();
  }
};

class ReplayEvents {
 public:
  struct Options {
    size_t maxLineBytes = 1 << 20;
    uint64_t maxAgeRecords = 20000;
    size_t maxInFlight = 32768;
    size_t rememberEmitted = 8192;
    double maxSerialJump = 100000;
    size_t maxNodes = 4096;
    size_t failureLimit = 5;
  };

  ReplayEvents(std::shared_ptr<const ReplaySpec> spec, Options opts);
  ~ReplayEvents();
  ReplayEvents(const ReplayEvents&) = delete;
  ReplayEvents& operator=(const ReplayEvents&) = delete;

  // Consumes a chunk of the byte stream (files follow each other as one stream).
  void Push(const char* data, size_t len, ReplayOutput* out);
  // End of one file: its last line even without a newline (as src/sources/auditlog.ts's LineSplitter).
  void EndFile(ReplayOutput* out);
  // End of input: every event in flight is emitted.
  void Flush(ReplayOutput* out);
  const ReplayStats& stats() const { return stats_; }
  // Findings mode (replay without --events): nothing is printed; each complete event is offered to
  // the triage (native/triage.h, the rule pack's spec with open events added), and a boring one goes
  // up as its process note, every other event as its records. Set before the first Push.
  void SetTriage(std::unique_ptr<Triage> triage);
  const Triage* triage() const { return triage_.get(); }
  const RepeatStats& repeatStats() const { return repeats_.stats(); }

 private:
  struct Rec {
    uint32_t offset, length;  // in the entry's arena
    uint32_t type;
    uint32_t typeNameStart, typeNameLen;  // relative to the record
    uint32_t idStart, idLen;
    uint32_t bodyStart, bodyEnd;
    double sec;
    uint32_t ms;
  };
  struct PathOut {
    double item;
    size_t start, len;  // in FormatScratch::pathJson
  };
  struct FormatScratch;

 public:
  struct PlainCache;

 private:
  struct NodeState;
  struct Entry {
    NodeState* node = nullptr;
    double serial = 0, timeMs = 0;
    uint64_t bornAt = 0;
    std::string arena;
    std::vector<Rec> recs;
    bool late = false, done = false, needsEoe = false;
  };
  class Stamps;

  void Line(const char* p, size_t n, ReplayOutput* out);
  void Lines(const char* p, size_t n, ReplayOutput* out);
  void PushRecord(const char* p, size_t n, const Rec& r, const char* node, size_t nodeLen, bool hasNode, double serial, ReplayOutput* out);
  NodeState* State(const char* node, size_t nodeLen, bool hasNode);
  NodeState* StateLookup(const char* node, size_t nodeLen, bool hasNode);
  void ForgetIdleNode();
  void TrackSerial(NodeState* s, double serial);
  void Expire(ReplayOutput* out);
  void EvictOldest(ReplayOutput* out);
  void FinishAged(Entry* e, ReplayOutput* out);
  void Finish(Entry* e, bool incomplete, ReplayOutput* out);
  void Emit(Entry* e, bool incomplete, ReplayOutput* out);
  bool Format(const Entry& e, bool incomplete, std::string& o);
  bool Note(const Entry& e, ReplayOutput* out);
  bool Repeat(const Entry& e, ReplayOutput* out);
  void AppendNote(const std::string& note, ReplayOutput* out);
  void NoteNode(const NodeState& node, ReplayOutput* out);
  void NoteAgain(uint64_t timeMs, ReplayOutput* out);
  static bool ShortStampNumbers(const Entry& e);
  Entry* NewEntry();
  void Recycle(Entry* e);

  std::shared_ptr<const ReplaySpec> spec_;
  Options opts_;
  ReplayStats stats_;
  std::string carry_;
  bool skipping_ = false;
  std::vector<std::unique_ptr<NodeState>> nodes_;  // insertion order
  std::unordered_map<std::string, NodeState*> nodeByKey_;
  std::deque<Entry*> queue_;
  size_t inFlight_ = 0;
  uint64_t pushed_ = 0;
  std::vector<Entry*> free_;
  Entry single_;  // a user message emitted at once
  std::string nodeKey_;
  std::string typeKey_;
  NodeState* lastState_ = nullptr;
  std::string bytes_;
  std::unique_ptr<FormatScratch> formatScratch_;
  std::unique_ptr<PlainCache> plainCache_;
  std::string lineBuf_;
  double isoSec_ = -1;  // the time's seconds are formatted once per second of the log
  std::string isoPrefix_;
  std::unique_ptr<Triage> triage_;
  std::vector<RecordRef> triageRecords_;  // the event's records as netlink text, in its arena
  std::string note_;
  // Repeat collapse in findings mode, as the live reader does it (native/repeat_cache.h), on whole
  // log lines from "audit(" (auditd's enrichment included: the event is built from it) with each
  // line's prefix as the scope.
  RepeatCache repeats_;
  // The facts of the last note written, while nothing else came after it (native/triage.cc's note from
  // its pid on; an exec's without its argv), and the `a` item of the current run in `out`.
  static constexpr size_t kNoAgain = static_cast<size_t>(-1);
  static constexpr size_t kAgainBytes = 2 + 8 + 1 + 16;
  static constexpr uint64_t kMaxAgainRun = 99999999;
  std::string lastFacts_;
  bool factsValid_ = false;
  std::string notedNode_ = "0";  // the NodeState key the notes JavaScript reads are of (NoteNode)
  size_t againAt_ = kNoAgain;
  uint64_t againCount_ = 0, againTimeMs_ = 0;
  std::vector<RecordRef> repeatRecords_;
  std::string repeatScope_;
};

// Exposed for tests through the binding: is `s` plain text (redactText would return it unchanged)?
bool ReplayPlainText(const ReplayPlainSpec& spec, std::string_view s);

}  // namespace credwatch
