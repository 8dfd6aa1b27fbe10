#include "reader_thread.h"

#include "datagram.h"

#include <linux/netlink.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <ctime>
#include <vector>

namespace credwatch {

ReaderThread::~ReaderThread() { Stop(); }

void ReaderThread::Start(int socketFd, int wakeFd, size_t batchMaxRecords, Counters* counters,
                         BatchPool* pool, BatchSink* sink, Batch* first, bool blockWhenFull, bool procSnapshots) {
  blockWhenFull_ = blockWhenFull;
  procSnapshots_ = procSnapshots;
  stopSeen_ = false;
  fd_ = socketFd;
  wakeFd_ = wakeFd;
  batchMaxRecords_ = batchMaxRecords;
  counters_ = counters;
  pool_ = pool;
  sink_ = sink;
  thread_ = std::thread([this, first] { Run(first); });
}

void ReaderThread::SetTriageSpec(std::shared_ptr<const TriageSpec> spec) {
  std::lock_guard<std::mutex> lock(specMu_);
  nextSpec_ = std::move(spec);
  specChanged_.store(true, std::memory_order_release);
}

uint64_t ReaderThread::NowMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec / 1000000);
}

void ReaderThread::HandleRecord(uint32_t type, const char* text, size_t len, Batch*& batch) {
  if (specChanged_.load(std::memory_order_acquire)) {
    std::shared_ptr<const TriageSpec> spec;
    {
      std::lock_guard<std::mutex> lock(specMu_);
      spec = nextSpec_;
      specChanged_.store(false, std::memory_order_relaxed);
    }
    triage_.SetSpec(std::move(spec), batch);
  }
  const uint64_t now = (procSnapshots_ || triage_.enabled()) ? NowMs() : 0;
  if (procSnapshots_ && type == 1300) snapshots_.NoteSyscallRecord(text, len, now, batch);
  triage_.Push(type, text, len, now, batch);
}

void ReaderThread::PublishTriageStats() {
  const TriageStats& t = triage_.stats();
  counters_->summarized.store(t.summarized, std::memory_order_relaxed);
  counters_->summarizedRecords.store(t.summarizedRecords, std::memory_order_relaxed);
  counters_->triagePassed.store(t.passed, std::memory_order_relaxed);
  counters_->triageUnsure.store(t.unsure, std::memory_order_relaxed);
  counters_->triageExpired.store(t.expired, std::memory_order_relaxed);
  counters_->procSnapshots.store(snapshots_.snapshots(), std::memory_order_relaxed);
  const RepeatStats& r = triage_.repeatStats();
  counters_->repeatNotes.store(r.hits, std::memory_order_relaxed);
  counters_->repeatTemplates.store(r.templates, std::memory_order_relaxed);
  counters_->repeatEvictions.store(r.evictions, std::memory_order_relaxed);
  counters_->repeatSkipped.store(r.skipped, std::memory_order_relaxed);
}

void ReaderThread::Stop() {
  if (!thread_.joinable()) return;
  uint64_t one = 1;
  // The eventfd stays readable once written, so a single write wakes poll() however often it loops.
  while (write(wakeFd_, &one, sizeof(one)) < 0 && errno == EINTR) {
  }
  thread_.join();
}

bool ReaderThread::WaitForRoom() {
  if (stopSeen_) return false;
  pollfd wake{wakeFd_, POLLIN, 0};
  // The ThreadSafeFunction offers no "room available" signal; a 1 ms nap is far below the time the
  // socket buffer (4 MiB by default) and the kernel backlog take to fill.
  int r = poll(&wake, 1, 1);
  if (r > 0) stopSeen_ = true;
  return !stopSeen_;
}

Batch* ReaderThread::Flush(Batch* batch) {
  const uint64_t count = batch->RecordCount();
  for (bool waited = false;;) {
    SubmitResult result = sink_->Submit(batch);
    if (result == SubmitResult::kAccepted) {
      counters_->batches.fetch_add(1, std::memory_order_relaxed);
      return pool_->Take();
    }
    if (result != SubmitResult::kFull || !blockWhenFull_) break;
    if (!waited) {
      counters_->queueWaits.fetch_add(1, std::memory_order_relaxed);
      waited = true;
    }
    if (!WaitForRoom()) break;
  }
  counters_->queueDrops.fetch_add(count, std::memory_order_relaxed);
  batch->Clear();
  return batch;
}

void ReaderThread::ReportError(const char* syscall, int err) {
  Batch* b = pool_->Take();
  b->isError = true;
  b->error = SysError{syscall, err, "audit reader"};
  if (sink_->Submit(b) != SubmitResult::kAccepted) pool_->Give(b);
}

ReaderThread::DrainResult ReaderThread::Drain(DatagramReceiver& rx, Batch*& batch, size_t limit) {
  for (size_t n = 0; n < limit;) {
    const int got = rx.Receive(fd_, limit - n);
    if (got < 0) {
      n++;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return DrainResult::kEmpty;
      if (errno == ENOBUFS) {
        // The kernel could not queue records for us (multicast overflow); the socket stays usable.
        counters_->enobufs.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      ReportError("recvmmsg", errno);
      return DrainResult::kFailed;
    }
    n += static_cast<size_t>(got);
    for (int i = 0; i < got; i++) HandleDatagram(rx, i, batch);
  }
  return DrainResult::kLimit;
}

void ReaderThread::HandleDatagram(const DatagramReceiver& rx, int i, Batch*& batch) {
  const size_t size = rx.Length(i);
  const Datagram d = ClassifyDatagram(rx.Data(i), rx.SlotSize(), size, rx.SenderPortId(i));
  if (d.kind == DatagramKind::kBadSender) {
    counters_->badSender.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (d.truncated || d.kind == DatagramKind::kTooShort) counters_->truncated.fetch_add(1, std::memory_order_relaxed);
  if (d.kind == DatagramKind::kTooShort) return;
  if (d.kind == DatagramKind::kControl) {
    counters_->ignored.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  counters_->received.fetch_add(1, std::memory_order_relaxed);
  counters_->bytes.fetch_add(d.truncated ? rx.SlotSize() : size, std::memory_order_relaxed);
  HandleRecord(d.type, d.text, d.textLen, batch);
  if (batch->records.size() >= batchMaxRecords_ || batch->bytes.size() >= kMaxBatchBytes) {
    batch = Flush(batch);
  }
}

bool ReaderThread::HoldsFullEvents(const Batch& batch) {
  for (const RecordRef& r : batch.records) {
    if (r.type < kProcessNoteType) return true;  // an audit record: an event (or a part) sent whole
  }
  return false;
}

void ReaderThread::Run(Batch* batch) {
  // A name of its own, so `top -H`, perf and the benches tell the audit reader from node's threads.
  pthread_setname_np(pthread_self(), "credwatch-audit");
  DatagramReceiver rx(kReceiveSlots, kReceiveBuffer);
  pollfd fds[2] = {{fd_, POLLIN, 0}, {wakeFd_, POLLIN, 0}};
  // Records read while AUDIT_SET pid was being acknowledged are already in the first batch.
  if (!batch->records.empty()) batch = Flush(batch);
  for (;;) {
    // While the triage holds an event waiting for its EOE, wake up to release it if the EOE is late.
    int r = poll(fds, 2, triage_.holding() ? static_cast<int>(Triage::kMaxHoldMs) : -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      ReportError("poll", errno);
      break;
    }
    if (fds[1].revents != 0) {
      // Stop requested. Records the kernel already queued on our socket are still ours to deliver
      // (the caller released the audit pid first); read what is there now, bounded so that a busy
      // multicast stream cannot delay the stop.
      Drain(rx, batch, kFinalDrainRecords);
      break;
    }
    // Drain everything readable; the batch goes out when the socket runs dry or the batch is full.
    DrainResult result = r > 0 ? Drain(rx, batch, SIZE_MAX) : DrainResult::kEmpty;
    // Linger: let what follows gather in the socket buffer and go up in the same batch. Under load the
    // socket runs dry after nearly every event, and one JavaScript wake-up (callback, promise,
    // microtasks) per event cost more than the event itself. A stop request ends the nap; a batch of
    // summaries only naps again, up to kQuietLingerMs (Drain still sends a full batch at once).
    for (unsigned napped = 0; result == DrainResult::kEmpty && !batch->records.empty() && napped < kQuietLingerMs; napped += kLingerMs) {
      if (napped > 0 && HoldsFullEvents(*batch)) break;
      pollfd wake{wakeFd_, POLLIN, 0};
      if (poll(&wake, 1, static_cast<int>(kLingerMs)) != 0) break;
      result = Drain(rx, batch, SIZE_MAX);
    }
    if (triage_.holding()) triage_.Expire(NowMs(), batch);
    PublishTriageStats();
    if (!batch->records.empty()) batch = Flush(batch);
    if (result == DrainResult::kFailed) break;
  }
  // Events still held go out as they are: TypeScript flags them incomplete if they are.
  triage_.ReleaseAll(batch);
  PublishTriageStats();
  // The sink is released only after join(), so this last batch still goes out.
  if (!batch->records.empty()) batch = Flush(batch);
  pool_->Give(batch);
}

}  // namespace credwatch
