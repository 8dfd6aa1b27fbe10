// A batch of audit records on its way from the reader thread to JavaScript. Record bytes live in one
// arena per batch, and batches are recycled through a pool, so steady-state reading allocates nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "errors.h"

namespace credwatch {

struct RecordRef {
  uint32_t type;    // netlink message type, or a pseudo type of native/triage.h
  uint32_t offset;
  uint32_t length;
  uint32_t count;   // audit records this entry stands for: 1, N for a process note, 0 for a /proc snapshot
};

struct Batch {
  std::vector<char> bytes;
  std::vector<RecordRef> records;
  // A batch can instead carry a reader failure to JavaScript (the thread stops after sending it).
  bool isError = false;
  SysError error{nullptr, 0, nullptr};

  void Append(uint32_t type, const char* data, size_t len, uint32_t count = 1) {
    records.push_back(RecordRef{type, static_cast<uint32_t>(bytes.size()), static_cast<uint32_t>(len), count});
    bytes.insert(bytes.end(), data, data + len);
  }
  // Audit records the batch stands for (what `delivered` and `queueDrops` count).
  uint64_t RecordCount() const {
    uint64_t n = 0;
    for (const RecordRef& r : records) n += r.count;
    return n;
  }
  void Clear() {
    bytes.clear();
    records.clear();
    isError = false;
    error = SysError{nullptr, 0, nullptr};
  }
};

// Thread-safe free list. Keeps at most `maxFree` idle batches; batches whose arena grew past
// kShrinkBytes (a burst of huge records) are freed instead of kept, so idle memory stays small.
class BatchPool {
 public:
  static constexpr size_t kShrinkBytes = 1 << 20;

  explicit BatchPool(size_t maxFree) : maxFree_(maxFree) {}
  ~BatchPool() {
    for (Batch* b : free_) delete b;
  }
  BatchPool(const BatchPool&) = delete;
  BatchPool& operator=(const BatchPool&) = delete;

  void SetMaxFree(size_t maxFree) {
    std::lock_guard<std::mutex> lock(mu_);
    maxFree_ = maxFree;
  }

  Batch* Take() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!free_.empty()) {
        Batch* b = free_.back();
        free_.pop_back();
        return b;
      }
    }
    return new Batch();
  }

  void Give(Batch* b) {
    b->Clear();
    if (b->bytes.capacity() <= kShrinkBytes) {
      std::lock_guard<std::mutex> lock(mu_);
      if (free_.size() < maxFree_) {
        free_.push_back(b);
        return;
      }
    }
    delete b;
  }

 private:
  std::mutex mu_;
  std::vector<Batch*> free_;
  size_t maxFree_;
};

}  // namespace credwatch
