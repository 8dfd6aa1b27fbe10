// Synchronous request/acknowledge exchanges with the kernel audit subsystem over NETLINK_AUDIT.
//
// Each call opens its own short-lived socket. That keeps replies away from the record stream (a
// reader socket in unicast mode receives every audit record; a control reply arriving there would
// have to be picked out of it), and a reply that arrives after a timeout can never be mistaken for
// the answer to a later request. Control calls are rare (start, stop, status queries), so the cost of
// a socket per call does not matter.
//
// Everything here is plain C++ and throws SysError; the N-API layer converts it.
#pragma once

#include <linux/audit.h>
#include <linux/netlink.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "errors.h"

namespace credwatch {

constexpr int kControlTimeoutMs = 3000;

// Opens a NETLINK_AUDIT socket bound to a kernel-assigned port id; joins `groups` (bitmask) if non-zero.
int OpenAuditSocket(uint32_t groups);

// Sends one request to the kernel (port id 0). Throws SysError{"sendto"}.
void SendAuditRequest(int fd, uint16_t type, uint16_t flags, uint32_t seq, const void* payload,
                      size_t len);

// Waits for the NLMSG_ERROR acknowledgement of `seq`; throws SysError{request, errno} when the kernel
// refused the request and SysError{"recvfrom", ETIMEDOUT} when nothing arrived in time. Messages that
// are not the acknowledgement are passed to `other` (may be null: they are ignored).
using OtherMessage = void (*)(void* ctx, const nlmsghdr* nlh, size_t len);
void WaitAck(int fd, uint32_t seq, const char* request, const char* detail, OtherMessage other,
             void* ctx);

// The kernel's status with the fields the running kernel returned (older kernels send fewer).
audit_status GetStatus();

// Sends AUDIT_SET for the single field in `mask`, waiting for the acknowledgement. `field` names it in errors.
void SetStatusField(uint32_t mask, const audit_status& values, const char* field);

// AUDIT_ADD_RULE / AUDIT_DEL_RULE with a raw audit_rule_data payload.
void ChangeRule(uint16_t type, const void* payload, size_t len);

// AUDIT_LIST_RULES: every rule as a raw audit_rule_data payload, in kernel order.
std::vector<std::string> ListRules();

// Reads until `deadlineMs` (CLOCK_MONOTONIC ms) one datagram from the kernel into buf; returns its full
// length (may exceed buf size: MSG_TRUNC). Datagrams from a sender other than the kernel are skipped.
size_t ReceiveFromKernel(int fd, std::vector<char>& buf, int64_t deadlineMs, const char* request);

int64_t MonotonicMs();

// Sequence number for the next request (JS thread only).
uint32_t NextRequestSeq();

}  // namespace credwatch
