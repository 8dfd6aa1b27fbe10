// /proc reads for new processes, done on the reader thread as each SYSCALL record arrives. A process
// in a container is attributed to it through /proc/<pid>/cgroup, and a short-lived process (`cat token`)
// is gone a few milliseconds after its exec: reading here, next to recv(), is both the earliest moment
// and the cheapest place (the JavaScript version of these reads was ~30% of the agent's main-thread
// time at 1,600 exec/s). The result goes up as a kProcSnapshotType entry ahead of the event's records;
// src/enrich/process-table.ts applyProcSnapshot() folds it in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>

#include "batch.h"

namespace credwatch {

class ProcSnapshots {
 public:
  // A known pid's start time is re-read at most this often (pid reuse), like ProcessTable.recheckMs.
  static constexpr uint64_t kRecheckMs = 1000;
  static constexpr size_t kMaxKnown = 65536;

  // What kill(pid, 0) says of a pid: its return value and errno (0 when it succeeded).
  struct SignalProbeResult {
    int ret;
    int err;
  };
  using SignalProbe = std::function<SignalProbeResult(uint32_t pid)>;

  explicit ProcSnapshots(std::string procRoot = "/proc") : procRoot_(std::move(procRoot)) {}
  // Tests: `probe` stands for kill(pid, 0) and is asked whatever procRoot is (a fake tree has no pid
  // namespace of its own to decide by).
  ProcSnapshots(std::string procRoot, SignalProbe probe)
      : procRoot_(std::move(procRoot)), probe_(Probe::kKill), signal_(std::move(probe)) {}

  // `syscallText` is a SYSCALL record's text; its pid= field names the process.
  void NoteSyscallRecord(const char* syscallText, size_t len, uint64_t nowMs, Batch* out);
  uint64_t snapshots() const { return snapshots_; }
  // Pids the probe found gone, whose /proc files were not opened.
  uint64_t skippedGone() const { return skippedGone_; }

 private:
  struct Known {
    uint64_t startTime;
    uint64_t checkedMs;
  };
  // True when the pid has already exited. In a storm of short-lived processes most SYSCALL records
  // arrive after their process exited, and a failed open of /proc/<pid>/stat costs ~6 us (a dentry
  // allocated and freed) against ~0.5 us for kill(pid, 0): the failed opens were ~7% of the agent's
  // perf samples at 1,000 new processes a second.
  bool ProcessGone(uint32_t pid);
  // Reads a whole /proc file into buf_; false when it cannot be opened (the process is gone).
  bool ReadFile(const char* path);

  std::string procRoot_;
  enum class Probe { kUnknown, kKill, kNone };
  Probe probe_ = Probe::kUnknown;  // decided at the first record, on the reader thread
  SignalProbe signal_;             // empty: the real kill(pid, 0)
  std::unordered_map<uint32_t, Known> known_;
  std::string buf_;
  std::string out_;
  uint64_t snapshots_ = 0;
  uint64_t skippedGone_ = 0;
};

// Parses /proc/<pid>/stat text: comm (between the first '(' and the LAST ')'), ppid and starttime.
bool ParseProcStat(const char* p, size_t n, uint32_t* ppid, uint64_t* startTime, size_t* commStart, size_t* commLen);

}  // namespace credwatch
