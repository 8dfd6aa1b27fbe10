// Repeat collapse on the reader thread (issue 17, alert storm). An exec or connect event the triage
// passed (a rule may fire on it) whose records are byte for byte those of a recent passed event, apart
// from the audit stamp (time and serial) of every record and the SYSCALL record's pid, is sent to
// JavaScript as a compact repeat note instead of its records: the earlier event's template id, its own
// stamp, pid and syscall arguments. Building the event again (records as JS strings, reassembly, parse, EventView, every
// rule) was most of the agent's cost in a storm of identical hits.
//
// This side only proves that the *records* are the same. What JavaScript adds (the process table's
// view of the pid and its parents, containers, open incidents, sequences) is checked there
// (src/detect/repeat-outcomes.ts); when any of it differs, JavaScript rebuilds the records from the
// template and the note (same masked positions as here) and the event takes the full path. So the note
// loses nothing: it carries exactly what the mask removed.
//
// Masked positions (JavaScript relies on them, src/native/repeat-note.ts):
//   - every record's header `audit(SEC.MS:SERIAL): ` (ParseRecordHeader's bodyOffset);
//   - in the SYSCALL record, the values of a0, a1, a2, a3 (hex) and pid (decimal), each the first
//     " name=" after the previous one (the fields before a0 are numbers the kernel formats), each
//     followed by a space. No rule reads the syscall arguments (Sigma rules could: with Sigma loaded
//     the detector never decides a repeat from its template); they differ between processes under ASLR.
// Pure code apart from the Batch it appends to: no N-API, no syscalls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "batch.h"

namespace credwatch {

// Pseudo record types (after native/triage.h's): a template announcement precedes the records of a
// passed event that became a template; a repeat note replaces the records of an event equal to one.
constexpr uint32_t kRepeatTemplateType = 0x10003;
constexpr uint32_t kRepeatNoteType = 0x10004;

struct RepeatStats {
  uint64_t hits = 0;       // events sent as a repeat note
  uint64_t templates = 0;  // passed events that became a template (announced)
  uint64_t evictions = 0;  // templates pushed out by newer ones (least recently used first)
  uint64_t skipped = 0;    // passed events not considered: no pid, too many or too large records
};

// What Decide() made of one passed event.
enum class RepeatDecision : uint8_t {
  kSkipped,   // not a shape that is ever collapsed: the event goes up whole, not as a template
  kTemplate,  // a new template: note() is its announcement (id and header); the event goes up whole
  kRepeat,    // equal to a template: note() is the repeat note, which replaces the event's records
};

class RepeatCache {
 public:
  // Templates kept. JavaScript keeps at least twice as many (the same accesses in the same order), so
  // every template a note names is still known there (src/native/repeat-note.ts REPEAT_TEMPLATES_KEPT).
  static constexpr size_t kMaxTemplates = 64;
  // An event whose masked records exceed this is never a template (a storm is of small events).
  static constexpr size_t kMaxSignatureBytes = 16384;

  // One passed event, its records in `bytes`. Returns true when a repeat note was appended to `out`
  // (the caller drops the records); false when the caller must release them (a template announcement
  // may have been appended first).
  bool Offer(const std::vector<RecordRef>& records, const std::string& bytes, Batch* out);
  // The decision alone, for callers that send it up their own way (replay findings mode,
  // native/replay_events.h). `scope` is part of the signature but never masked: replay gives each
  // record's line prefix (`node=... type=... msg=`), so two nodes' events never share a template.
  RepeatDecision Decide(const std::vector<RecordRef>& records, const std::string& bytes, std::string_view scope = {});
  // The announcement or repeat note of the last Decide().
  const std::string& note() const { return note_; }
  void Clear();
  const RepeatStats& stats() const { return stats_; }

 private:
  struct Entry {
    uint64_t id = 0;
    uint64_t lastUse = 0;
  };
  bool Sign(const std::vector<RecordRef>& records, const std::string& bytes, std::string_view scope);

  std::unordered_map<std::string, Entry> byKey_;
  uint64_t nextId_ = 1;
  uint64_t clock_ = 0;
  RepeatStats stats_;
  // Filled by Sign(): the masked signature, the event's header text and the SYSCALL pid digits.
  std::string key_;
  std::string header_;
  std::string pid_;
  std::string masked_;  // the SYSCALL record's a0..a3 values, comma-separated
  std::string note_;
};

}  // namespace credwatch
