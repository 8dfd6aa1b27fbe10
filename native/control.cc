#include "control.h"

#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace credwatch {

namespace {

// Closes the socket on every exit path, including thrown SysErrors.
class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) close(fd_);
  }
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Replies are at most a rule (audit_rule_data + 64 fields + strings) or a status; 64 KiB is ample.
constexpr size_t kReplyBuffer = 65536;

}  // namespace

uint32_t NextRequestSeq() {
  static uint32_t seq = static_cast<uint32_t>(time(nullptr));
  return ++seq;
}

int64_t MonotonicMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

int OpenAuditSocket(uint32_t groups) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT);
  if (fd < 0) throw SysError{"socket", errno, nullptr};
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  addr.nl_pid = 0;  // let the kernel choose a unique port id
  addr.nl_groups = groups;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) {
    int err = errno;
    close(fd);
    throw SysError{"bind", err, nullptr};
  }
  return fd;
}

void SendAuditRequest(int fd, uint16_t type, uint16_t flags, uint32_t seq, const void* payload,
                      size_t len) {
  std::vector<char> msg(NLMSG_SPACE(len), 0);
  auto* nlh = reinterpret_cast<nlmsghdr*>(msg.data());
  nlh->nlmsg_len = static_cast<uint32_t>(NLMSG_LENGTH(len));
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = flags;
  nlh->nlmsg_seq = seq;
  nlh->nlmsg_pid = 0;
  if (len > 0) memcpy(NLMSG_DATA(nlh), payload, len);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  for (;;) {
    ssize_t n = sendto(fd, msg.data(), nlh->nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel),
                       sizeof(kernel));
    if (n >= 0) return;
    if (errno == EINTR) continue;
    throw SysError{"sendto", errno, nullptr};
  }
}

size_t ReceiveFromKernel(int fd, std::vector<char>& buf, int64_t deadlineMs, const char* request) {
  for (;;) {
    int64_t left = deadlineMs - MonotonicMs();
    if (left <= 0) throw SysError{"recvfrom", ETIMEDOUT, request};
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(left));
    if (r < 0) {
      if (errno == EINTR) continue;
      throw SysError{"poll", errno, request};
    }
    if (r == 0) continue;  // re-checks the deadline
    sockaddr_nl from{};
    socklen_t fromLen = sizeof(from);
    ssize_t n = recvfrom(fd, buf.data(), buf.size(), MSG_DONTWAIT | MSG_TRUNC,
                         reinterpret_cast<sockaddr*>(&from), &fromLen);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      throw SysError{"recvfrom", errno, request};
    }
    if (from.nl_pid != 0) continue;  // only the kernel may answer
    return static_cast<size_t>(n);
  }
}

void WaitAck(int fd, uint32_t seq, const char* request, const char* detail, OtherMessage other,
             void* ctx) {
  std::vector<char> buf(kReplyBuffer);
  int64_t deadline = MonotonicMs() + kControlTimeoutMs;
  for (;;) {
    size_t n = ReceiveFromKernel(fd, buf, deadline, request);
    if (n > buf.size()) n = buf.size();
    if (n < NLMSG_HDRLEN) continue;
    auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data());
    if (nlh->nlmsg_type == NLMSG_ERROR && nlh->nlmsg_seq == seq &&
        n >= NLMSG_LENGTH(sizeof(nlmsgerr))) {
      auto* e = reinterpret_cast<const nlmsgerr*>(NLMSG_DATA(nlh));
      if (e->error == 0) return;
      throw SysError{request, -e->error, detail};
    }
    if (other != nullptr) other(ctx, nlh, n);
  }
}

audit_status GetStatus() {
  FdGuard fd(OpenAuditSocket(0));
  uint32_t seq = NextRequestSeq();
  SendAuditRequest(fd.get(), AUDIT_GET, NLM_F_REQUEST, seq, nullptr, 0);
  std::vector<char> buf(kReplyBuffer);
  int64_t deadline = MonotonicMs() + kControlTimeoutMs;
  for (;;) {
    size_t n = ReceiveFromKernel(fd.get(), buf, deadline, "AUDIT_GET");
    if (n > buf.size()) n = buf.size();
    if (n < NLMSG_HDRLEN) continue;
    auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data());
    if (nlh->nlmsg_seq != seq) continue;
    if (nlh->nlmsg_type == NLMSG_ERROR && n >= NLMSG_LENGTH(sizeof(nlmsgerr))) {
      auto* e = reinterpret_cast<const nlmsgerr*>(NLMSG_DATA(nlh));
      if (e->error != 0) throw SysError{"AUDIT_GET", -e->error, nullptr};
      continue;
    }
    if (nlh->nlmsg_type == AUDIT_GET) {
      audit_status s{};
      size_t payload = n - NLMSG_HDRLEN;
      memcpy(&s, NLMSG_DATA(nlh), payload < sizeof(s) ? payload : sizeof(s));
      return s;
    }
  }
}

void SetStatusField(uint32_t mask, const audit_status& values, const char* field) {
  FdGuard fd(OpenAuditSocket(0));
  audit_status s = values;
  s.mask = mask;
  uint32_t seq = NextRequestSeq();
  SendAuditRequest(fd.get(), AUDIT_SET, NLM_F_REQUEST | NLM_F_ACK, seq, &s, sizeof(s));
  WaitAck(fd.get(), seq, "AUDIT_SET", field, nullptr, nullptr);
}

void ChangeRule(uint16_t type, const void* payload, size_t len) {
  FdGuard fd(OpenAuditSocket(0));
  uint32_t seq = NextRequestSeq();
  const char* request = type == AUDIT_ADD_RULE ? "AUDIT_ADD_RULE" : "AUDIT_DEL_RULE";
  SendAuditRequest(fd.get(), type, NLM_F_REQUEST | NLM_F_ACK, seq, payload, len);
  WaitAck(fd.get(), seq, request, nullptr, nullptr, nullptr);
}

std::vector<std::string> ListRules() {
  FdGuard fd(OpenAuditSocket(0));
  uint32_t seq = NextRequestSeq();
  // No NLM_F_ACK: the kernel sends the rules from a separate thread, so an acknowledgement could come
  // before or after NLMSG_DONE. Errors are acknowledged regardless of the flag.
  SendAuditRequest(fd.get(), AUDIT_LIST_RULES, NLM_F_REQUEST, seq, nullptr, 0);
  std::vector<std::string> rules;
  std::vector<char> buf(kReplyBuffer);
  int64_t deadline = MonotonicMs() + kControlTimeoutMs;
  for (;;) {
    size_t n = ReceiveFromKernel(fd.get(), buf, deadline, "AUDIT_LIST_RULES");
    if (n > buf.size()) throw SysError{"recvfrom", EMSGSIZE, "AUDIT_LIST_RULES"};
    // Replies to requests are well-formed netlink messages (unlike audit records), so walk them.
    size_t left = n;
    for (auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data()); NLMSG_OK(nlh, left);
         nlh = NLMSG_NEXT(nlh, left)) {
      if (nlh->nlmsg_seq != seq) continue;
      if (nlh->nlmsg_type == NLMSG_DONE) return rules;
      if (nlh->nlmsg_type == NLMSG_ERROR) {
        auto* e = reinterpret_cast<const nlmsgerr*>(NLMSG_DATA(nlh));
        if (nlh->nlmsg_len >= NLMSG_LENGTH(sizeof(nlmsgerr)) && e->error != 0)
          throw SysError{"AUDIT_LIST_RULES", -e->error, nullptr};
        continue;
      }
      if (nlh->nlmsg_type == AUDIT_LIST_RULES) {
        rules.emplace_back(static_cast<const char*>(NLMSG_DATA(nlh)),
                           nlh->nlmsg_len - NLMSG_HDRLEN);
        deadline = MonotonicMs() + kControlTimeoutMs;  // a long list is progress, not a hang
      }
    }
  }
}

}  // namespace credwatch
