// The dedicated thread that reads the NETLINK_AUDIT socket. It never touches JavaScript: it fills
// batches and hands them to a BatchSink (the ThreadSafeFunction in audit_socket.cc). It is a plain
// std::thread, not a libuv pool worker, because it blocks for the life of the socket.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "batch.h"
#include "datagram_receiver.h"
#include "proc_snapshot.h"
#include "triage.h"

namespace credwatch {

// Every record the thread reads ends up in exactly one of: delivered, queueDrops, or (briefly) a batch
// in flight. Everything the socket refuses or that is not a record is counted separately.
struct Counters {
  std::atomic<uint64_t> received{0};    // audit records read from the socket
  std::atomic<uint64_t> bytes{0};       // their size in bytes, netlink header included
  std::atomic<uint64_t> batches{0};     // batches accepted by the queue to JavaScript
  std::atomic<uint64_t> delivered{0};   // records handed to the JavaScript callback
  std::atomic<uint64_t> queueDrops{0};  // records dropped because the queue to JavaScript was full
  std::atomic<uint64_t> enobufs{0};     // ENOBUFS from recv(): the kernel dropped records for us
  std::atomic<uint64_t> truncated{0};   // records longer than the receive buffer (or shorter than a header)
  std::atomic<uint64_t> badSender{0};   // datagrams whose sender port id was not 0 (not the kernel)
  std::atomic<uint64_t> ignored{0};     // netlink control messages (NOOP, DONE, ERROR acks) on the reader
  std::atomic<int64_t> queued{0};       // batches waiting in the queue to JavaScript right now
  std::atomic<uint64_t> queueWaits{0};  // times the reader paused because that queue was full (blocking mode)
  // Triage (native/triage.h), copied from the reader's own tallies after every read burst.
  std::atomic<uint64_t> summarized{0};         // events replaced by a process note
  std::atomic<uint64_t> summarizedRecords{0};  // records those notes stand for (part of `delivered`)
  std::atomic<uint64_t> triagePassed{0};       // exec/connect events passed on whole: a rule might care
  std::atomic<uint64_t> triageUnsure{0};       // events passed on whole: a shape the triage does not know
  std::atomic<uint64_t> triageExpired{0};      // events passed on whole: no EOE within the hold time
  std::atomic<uint64_t> procSnapshots{0};      // /proc stat (+cgroup) snapshots sent with the records
  // Repeat collapse (native/repeat_cache.h).
  std::atomic<uint64_t> repeatNotes{0};      // passed events sent as a repeat note of a template
  std::atomic<uint64_t> repeatTemplates{0};  // passed events announced as a template
  std::atomic<uint64_t> repeatEvictions{0};  // templates pushed out by newer ones
  std::atomic<uint64_t> repeatSkipped{0};    // passed events of a shape never collapsed (sent whole)
};

enum class SubmitResult { kAccepted, kFull, kClosing };

class BatchSink {
 public:
  virtual ~BatchSink() = default;
  // Called on the reader thread; takes ownership of `batch` only when it returns kAccepted.
  virtual SubmitResult Submit(Batch* batch) = 0;
};

class ReaderThread {
 public:
  // At least 16 + 8970 (MAX_AUDIT_MESSAGE_LENGTH) per message; 64 KiB leaves room for anything a
  // future kernel might send, and MSG_TRUNC still tells us when a datagram did not fit.
  static constexpr size_t kReceiveBuffer = 65536;
  // Datagrams read per recvmmsg(): a storm queues a few hundred between two wake-ups, and 32 slots cut
  // the reader's receive syscalls ~30-fold while their buffers (2 MiB, untouched pages not resident)
  // stay small.
  static constexpr size_t kReceiveSlots = 32;
  // A batch is also closed when its arena passes this size, bounding memory per queued batch.
  static constexpr size_t kMaxBatchBytes = 1 << 20;
  // After the socket runs dry with records in the batch, wait this long for more before sending it:
  // at most ~40 batches a second reach JavaScript, for at most this much added latency. 25 rather than
  // 10 ms: in the storm (bench/live-storm.js, 1,000 new processes/s) the agent's CPU over 10 s fell from
  // 110 to 86 ticks (reader 27 -> 19, main thread 66 -> 50: fewer wake-ups on both sides of the queue),
  // attack latency p99 79 ms against the 250 ms target.
  static constexpr unsigned kLingerMs = 25;
  // A batch of summaries only (process notes, /proc snapshots, repeat notes: nothing a rule has not
  // already seen the like of) keeps lingering, kLingerMs at a time, up to this long: at 1,000 benign
  // exec/s the main thread's CPU fell from 2.75 to 2.05% and the reader's from 2.1 to 1.75% with 75 ms
  // batches (larger batches, fewer wake-ups, warmer caches). A full event ends the wait at the next
  // step, so an attack's latency is unchanged; a repeat that turns out to be a new incident waits this long.
  static constexpr unsigned kQuietLingerMs = 100;
  // At stop, at most this many already-queued records are still read and delivered.
  static constexpr size_t kFinalDrainRecords = 65536;

  ReaderThread() = default;
  ~ReaderThread();
  ReaderThread(const ReaderThread&) = delete;
  ReaderThread& operator=(const ReaderThread&) = delete;

  // `first` is the batch to fill first (it may already hold records read during start-up).
  // With `blockWhenFull`, a full queue pauses reading instead of dropping: the records wait in the
  // socket buffer and then the kernel's backlog, and in unicast mode the kernel slows the audited
  // processes (backlog_wait_time) rather than losing anything. Without it, the batch is dropped and
  // counted (the multicast reader's choice: the kernel would drop for us anyway, as ENOBUFS).
  void Start(int socketFd, int wakeFd, size_t batchMaxRecords, Counters* counters, BatchPool* pool,
             BatchSink* sink, Batch* first, bool blockWhenFull, bool procSnapshots);
  // Any thread: the triage spec the reader uses from its next record on (null: no triage).
  void SetTriageSpec(std::shared_ptr<const TriageSpec> spec);
  // Wakes the thread through the eventfd and joins it. Safe to call when not running.
  void Stop();
  bool running() const { return thread_.joinable(); }

 private:
  enum class DrainResult { kEmpty, kLimit, kFailed };

  void Run(Batch* batch);
  // Every record read goes through here: /proc snapshot for SYSCALL records, then the triage.
  void HandleRecord(uint32_t type, const char* text, size_t len, Batch*& batch);
  // Whether any entry is an audit record sent as it is (not a note or snapshot of the triage).
  static bool HoldsFullEvents(const Batch& batch);
  void PublishTriageStats();
  static uint64_t NowMs();
  // Reads up to `limit` datagrams without blocking, appending records to `batch` (flushed when full).
  DrainResult Drain(DatagramReceiver& rx, Batch*& batch, size_t limit);
  // One datagram of the last receive: counted by kind, records go to HandleRecord.
  void HandleDatagram(const DatagramReceiver& rx, int i, Batch*& batch);
  Batch* Flush(Batch* batch);
  void ReportError(const char* syscall, int err);

  std::thread thread_;
  int fd_ = -1;
  int wakeFd_ = -1;
  size_t batchMaxRecords_ = 256;
  bool blockWhenFull_ = false;
  // Set once the eventfd was seen readable: stop was requested, so never block again.
  bool stopSeen_ = false;
  // Waits up to a millisecond for room in the queue; false when a stop was requested meanwhile.
  bool WaitForRoom();
  Counters* counters_ = nullptr;
  bool procSnapshots_ = false;
  ProcSnapshots snapshots_;
  Triage triage_;  // reader thread only
  std::mutex specMu_;
  std::shared_ptr<const TriageSpec> nextSpec_;  // guarded by specMu_
  std::atomic<bool> specChanged_{false};
  BatchPool* pool_ = nullptr;
  BatchSink* sink_ = nullptr;
};

}  // namespace credwatch
