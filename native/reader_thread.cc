#include "reader_thread.h"

#include "datagram.h"

#include <linux/netlink.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <vector>

namespace credwatch {

ReaderThread::~ReaderThread() { Stop(); }

void ReaderThread::Start(int socketFd, int wakeFd, size_t batchMaxRecords, Counters* counters,
                         BatchPool* pool, BatchSink* sink, Batch* first, bool blockWhenFull) {
  blockWhenFull_ = blockWhenFull;
  stopSeen_ = false;
  fd_ = socketFd;
  wakeFd_ = wakeFd;
  batchMaxRecords_ = batchMaxRecords;
  counters_ = counters;
  pool_ = pool;
  sink_ = sink;
  thread_ = std::thread([this, first] { Run(first); });
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
  size_t count = batch->records.size();
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

ReaderThread::DrainResult ReaderThread::Drain(std::vector<char>& buf, Batch*& batch, size_t limit) {
  for (size_t n = 0; n < limit; n++) {
    sockaddr_nl from{};
    socklen_t fromLen = sizeof(from);
    ssize_t got = recvfrom(fd_, buf.data(), buf.size(), MSG_DONTWAIT | MSG_TRUNC,
                           reinterpret_cast<sockaddr*>(&from), &fromLen);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return DrainResult::kEmpty;
      if (errno == ENOBUFS) {
        // The kernel could not queue records for us (multicast overflow); the socket stays usable.
        counters_->enobufs.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      ReportError("recvfrom", errno);
      return DrainResult::kFailed;
    }
    const Datagram d = ClassifyDatagram(buf.data(), buf.size(), static_cast<size_t>(got), from.nl_pid);
    if (d.kind == DatagramKind::kBadSender) {
      counters_->badSender.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (d.truncated || d.kind == DatagramKind::kTooShort) counters_->truncated.fetch_add(1, std::memory_order_relaxed);
    if (d.kind == DatagramKind::kTooShort) continue;
    if (d.kind == DatagramKind::kControl) {
      counters_->ignored.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    counters_->received.fetch_add(1, std::memory_order_relaxed);
    counters_->bytes.fetch_add(d.truncated ? buf.size() : static_cast<size_t>(got), std::memory_order_relaxed);
    batch->Append(d.type, d.text, d.textLen);
    if (batch->records.size() >= batchMaxRecords_ || batch->bytes.size() >= kMaxBatchBytes) {
      batch = Flush(batch);
    }
  }
  return DrainResult::kLimit;
}

void ReaderThread::Run(Batch* batch) {
  std::vector<char> buf(kReceiveBuffer);
  pollfd fds[2] = {{fd_, POLLIN, 0}, {wakeFd_, POLLIN, 0}};
  // Records read while AUDIT_SET pid was being acknowledged are already in the first batch.
  if (!batch->records.empty()) batch = Flush(batch);
  for (;;) {
    int r = poll(fds, 2, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      ReportError("poll", errno);
      break;
    }
    if (fds[1].revents != 0) {
      // Stop requested. Records the kernel already queued on our socket are still ours to deliver
      // (the caller released the audit pid first); read what is there now, bounded so that a busy
      // multicast stream cannot delay the stop.
      Drain(buf, batch, kFinalDrainRecords);
      break;
    }
    // Drain everything readable; the batch goes out when the socket runs dry or the batch is full.
    DrainResult result = Drain(buf, batch, SIZE_MAX);
    if (!batch->records.empty()) batch = Flush(batch);
    if (result == DrainResult::kFailed) break;
  }
  // The sink is released only after join(), so this last batch still goes out.
  if (!batch->records.empty()) batch = Flush(batch);
  pool_->Give(batch);
}

}  // namespace credwatch
