// Reads many NETLINK_AUDIT datagrams with one recvmmsg(): the kernel sends every audit record as its
// own datagram, so a storm of 1,000 new processes a second is ~6,000 datagrams a second. With one
// recvfrom() each, recvfrom was ~10% of the agent's perf samples in the storm (entry, exit and the
// audit context the kernel sets up for each of our own syscalls), the reader's syscalls ~30%. Only the batching of the receive changes: each datagram is
// still reported with its real size (MSG_TRUNC) and its sender, exactly as recvfrom() gave them.
#pragma once

#include <linux/netlink.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace credwatch {

class DatagramReceiver {
 public:
  // `slots` datagrams per call, each into its own `slotSize` buffer. The buffers are left
  // uninitialised so that the pages the kernel never writes to are never made resident.
  DatagramReceiver(size_t slots, size_t slotSize);

  // Up to min(max, slots) datagrams without blocking: their count, or -1 with errno set (EAGAIN when
  // none was queued). An error after the first datagram is held by the kernel for the next call.
  int Receive(int fd, size_t max);

  const char* Data(int i) const { return buffers_.get() + static_cast<size_t>(i) * slotSize_; }
  size_t SlotSize() const { return slotSize_; }
  // The datagram's real size, which exceeds SlotSize() when it was cut (MSG_TRUNC).
  size_t Length(int i) const { return headers_[i].msg_len; }
  uint32_t SenderPortId(int i) const { return senders_[i].nl_pid; }

 private:
  size_t slots_;
  size_t slotSize_;
  std::unique_ptr<char[]> buffers_;
  std::unique_ptr<iovec[]> iov_;
  std::unique_ptr<sockaddr_nl[]> senders_;
  std::unique_ptr<mmsghdr[]> headers_;
};

}  // namespace credwatch
