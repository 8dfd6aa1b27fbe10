// What one datagram read from the NETLINK_AUDIT socket is, decided from its bytes alone: the only
// parsing the C++ side does. Kept free of sockets and N-API so that fuzz/netlink_fuzz.cc can feed it
// arbitrary bytes (the reader thread trusts nothing about a datagram beyond what is checked here).
#pragma once

#include <linux/netlink.h>

#include <cstddef>
#include <cstdint>

namespace credwatch {

enum class DatagramKind {
  kRecord,     // an audit record: type and text are set
  kBadSender,  // not from the kernel (sender port id != 0)
  kTooShort,   // shorter than a netlink header
  kControl,    // NOOP, ERROR, DONE, OVERRUN: not a record
};

struct Datagram {
  DatagramKind kind;
  bool truncated;  // the datagram was longer than the buffer (MSG_TRUNC): text is cut
  uint16_t type;
  const char* text;
  size_t textLen;
};

// `got` is recvfrom()'s result with MSG_TRUNC (the datagram's real size, possibly > bufSize).
// The kernel fills nlmsg_len inconsistently for audit records, so the datagram size is the record
// size; nlmsg_len is never trusted. Trailing NULs are not part of the text.
inline Datagram ClassifyDatagram(const char* buf, size_t bufSize, size_t got, uint32_t senderPortId) {
  Datagram d{DatagramKind::kRecord, false, 0, nullptr, 0};
  if (senderPortId != 0) {
    d.kind = DatagramKind::kBadSender;
    return d;
  }
  size_t len = got;
  if (len > bufSize) {
    d.truncated = true;
    len = bufSize;
  }
  if (len < NLMSG_HDRLEN) {
    d.kind = DatagramKind::kTooShort;
    return d;
  }
  auto* nlh = reinterpret_cast<const nlmsghdr*>(buf);
  if (nlh->nlmsg_type < NLMSG_MIN_TYPE) {
    d.kind = DatagramKind::kControl;
    return d;
  }
  d.type = nlh->nlmsg_type;
  d.text = buf + NLMSG_HDRLEN;
  d.textLen = len - NLMSG_HDRLEN;
  while (d.textLen > 0 && d.text[d.textLen - 1] == '\0') d.textLen--;
  return d;
}

}  // namespace credwatch
