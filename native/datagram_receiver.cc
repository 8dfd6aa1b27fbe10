#include "datagram_receiver.h"

#include <cerrno>
#include <cstring>

namespace credwatch {

DatagramReceiver::DatagramReceiver(size_t slots, size_t slotSize)
    : slots_(slots),
      slotSize_(slotSize),
      buffers_(new char[slots * slotSize]),
      iov_(new iovec[slots]),
      senders_(new sockaddr_nl[slots]),
      headers_(new mmsghdr[slots]) {}

int DatagramReceiver::Receive(int fd, size_t max) {
  const size_t n = max < slots_ ? max : slots_;
  for (size_t i = 0; i < n; i++) {
    // recvmmsg() writes back msg_namelen and msg_len, so every header is set afresh for each call.
    iov_[i].iov_base = buffers_.get() + i * slotSize_;
    iov_[i].iov_len = slotSize_;
    std::memset(&senders_[i], 0, sizeof(sockaddr_nl));
    std::memset(&headers_[i], 0, sizeof(mmsghdr));
    headers_[i].msg_hdr.msg_name = &senders_[i];
    headers_[i].msg_hdr.msg_namelen = sizeof(sockaddr_nl);
    headers_[i].msg_hdr.msg_iov = &iov_[i];
    headers_[i].msg_hdr.msg_iovlen = 1;
  }
  // MSG_TRUNC makes netlink report each datagram's full length in msg_len, as recvfrom() returned it.
  return recvmmsg(fd, headers_.get(), static_cast<unsigned>(n), MSG_DONTWAIT | MSG_TRUNC, nullptr);
}

}  // namespace credwatch
