#include "proc_snapshot.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "record_fields.h"
#include "triage.h"

namespace credwatch {

bool ParseProcStat(const char* p, size_t n, uint32_t* ppid, uint64_t* startTime, size_t* commStart, size_t* commLen) {
  const char* open = static_cast<const char*>(std::memchr(p, '(', n));
  const char* close = nullptr;
  for (size_t i = n; i > 0; i--) {
    if (p[i - 1] == ')') {
      close = p + i - 1;
      break;
    }
  }
  if (open == nullptr || close == nullptr || close < open) return false;
  *commStart = static_cast<size_t>(open + 1 - p);
  *commLen = static_cast<size_t>(close - open - 1);
  // After ") " come field 3 (state), 4 (ppid), ... 22 (starttime): index 0 is field 3.
  const char* q = close + 2;
  const char* end = p + n;
  uint64_t values[2] = {0, 0};
  const size_t want[2] = {1, 19};
  size_t field = 0;
  size_t got = 0;
  while (q < end && got < 2) {
    const char* sp = static_cast<const char*>(std::memchr(q, ' ', static_cast<size_t>(end - q)));
    const char* stop = sp == nullptr ? end : sp;
    if (field == want[got]) {
      size_t len = static_cast<size_t>(stop - q);
      while (len > 0 && (q[len - 1] == '\n')) len--;
      if (!ParseUnsigned(q, len, &values[got])) return false;
      got++;
    }
    field++;
    if (sp == nullptr) break;
    q = sp + 1;
  }
  if (got != 2 || values[0] > UINT32_MAX) return false;
  *ppid = static_cast<uint32_t>(values[0]);
  *startTime = values[1];
  return true;
}

bool ProcSnapshots::ReadFile(const char* path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  buf_.resize(4096);
  size_t n = 0;
  for (;;) {
    if (n == buf_.size()) buf_.resize(buf_.size() * 2);
    ssize_t r = read(fd, &buf_[n], buf_.size() - n);
    if (r < 0) {
      if (errno == EINTR) continue;
      close(fd);
      return false;
    }
    if (r == 0) break;
    n += static_cast<size_t>(r);
    if (n > (1u << 20)) break;  // no /proc file of interest is this long
  }
  close(fd);
  buf_.resize(n);
  return true;
}

bool ProcSnapshots::ProcessGone(uint32_t pid) {
  if (probe_ == Probe::kUnknown) {
    // kill() asks our own pid namespace; it answers for procRoot_ only when that is the /proc of the
    // same namespace (not a host /proc mounted into a container, nor a test's fake tree).
    char self[32] = {0};
    const ssize_t n = procRoot_ == "/proc" ? readlink("/proc/self", self, sizeof(self) - 1) : -1;
    probe_ = n > 0 && std::strtoul(self, nullptr, 10) == static_cast<unsigned long>(getpid()) ? Probe::kKill
                                                                                              : Probe::kNone;
  }
  if (probe_ != Probe::kKill) return false;
  SignalProbeResult r{0, 0};
  if (signal_) {
    r = signal_(pid);
  } else {
    r.ret = kill(static_cast<pid_t>(pid), 0);
    r.err = r.ret != 0 ? errno : 0;
  }
  // Only ESRCH means gone: EPERM is a live process we may not signal, and then /proc is read as before.
  return r.ret != 0 && r.err == ESRCH;
}

void ProcSnapshots::NoteSyscallRecord(const char* text, size_t len, uint64_t nowMs, Batch* out) {
  const char* at = static_cast<const char*>(memmem(text, len, " pid=", 5));
  if (at == nullptr) return;
  const char* digits = at + 5;
  size_t n = 0;
  while (digits + n < text + len && n < 10 && digits[n] >= '0' && digits[n] <= '9') n++;
  uint64_t pid64 = 0;
  if (!ParseUnsigned(digits, n, &pid64) || pid64 == 0 || pid64 > UINT32_MAX) return;
  const uint32_t pid = static_cast<uint32_t>(pid64);

  auto it = known_.find(pid);
  if (it != known_.end() && nowMs - it->second.checkedMs < kRecheckMs) return;
  if (ProcessGone(pid)) {
    skippedGone_++;
    return;  // the event still carries what the kernel logged
  }
  char path[64];
  snprintf(path, sizeof(path), "%s/%u/stat", procRoot_.c_str(), pid);
  if (!ReadFile(path)) return;  // exited already: the event still carries what the kernel logged
  uint32_t ppid = 0;
  uint64_t startTime = 0;
  size_t commStart = 0;
  size_t commLen = 0;
  if (!ParseProcStat(buf_.data(), buf_.size(), &ppid, &startTime, &commStart, &commLen)) return;
  const bool fresh = it == known_.end() || it->second.startTime != startTime;

  out_.clear();
  char nums[64];
  int w = snprintf(nums, sizeof(nums), "%u%c%u%c%llu%c", pid, '\0', ppid, '\0',
                   static_cast<unsigned long long>(startTime), '\0');
  out_.append(nums, static_cast<size_t>(w));
  out_.append(buf_, commStart, commLen);
  if (fresh) {
    snprintf(path, sizeof(path), "%s/%u/cgroup", procRoot_.c_str(), pid);
    if (ReadFile(path)) {
      out_.push_back('\0');
      out_.append(buf_);
    }
  }
  if (known_.size() >= kMaxKnown && it == known_.end()) known_.clear();  // rare; only costs re-reads
  known_[pid] = Known{startTime, nowMs};
  snapshots_++;
  out->Append(kProcSnapshotType, out_.data(), out_.size(), 0);
}

}  // namespace credwatch
