#include "capabilities.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <mutex>

namespace credwatch {

namespace {

// The plan every thread applies; written before the broadcast, read by the signal handlers.
struct Plan {
  uint64_t keep = 0;
  int lastCap = 0;
};
Plan gPlan;
std::atomic<int> gApplied{0};
std::atomic<int> gFailedErrno{0};
std::mutex gDropMutex;

int ReadLastCap() {
  // /proc/sys/kernel/cap_last_cap names the highest capability this kernel knows.
  int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return CAP_LAST_CAP;
  char buf[16] = {0};
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return CAP_LAST_CAP;
  int v = atoi(buf);
  return v > 0 && v < 64 ? v : CAP_LAST_CAP;
}

// Raw system calls only: this runs inside a signal handler. Returns 0 or a positive errno.
int ApplyPlanToThisThread() {
  for (int cap = 0; cap <= gPlan.lastCap; cap++) {
    if (gPlan.keep & (1ULL << cap)) continue;
    // Already outside the bounding set (systemd's CapabilityBoundingSet): nothing to drop, and
    // dropping would need CAP_SETPCAP, which such a unit does not grant.
    if (syscall(SYS_prctl, PR_CAPBSET_READ, cap, 0, 0, 0) != 1) continue;
    if (syscall(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return errno;
  }
  if (syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) return errno;
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  // Keep only what we have: a unit stricter than our list (no CAP_SYS_PTRACE, say) must not make
  // capset fail; the permitted set can only shrink.
  if (syscall(SYS_capget, &header, data) != 0) return errno;
  uint64_t have = (static_cast<uint64_t>(data[1].permitted) << 32) | data[0].permitted;
  uint64_t keep = gPlan.keep & have;
  data[0] = __user_cap_data_struct{};
  data[1] = __user_cap_data_struct{};
  data[0].effective = data[0].permitted = static_cast<uint32_t>(keep);
  data[1].effective = data[1].permitted = static_cast<uint32_t>(keep >> 32);
  if (syscall(SYS_capset, &header, data) != 0) return errno;
  if (syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
  return 0;
}

void OnBroadcast(int) {
  int saved = errno;
  int err = ApplyPlanToThisThread();
  if (err != 0) gFailedErrno.store(err);
  gApplied.fetch_add(1);
  errno = saved;
}

void SleepMs(long ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

}  // namespace

CapabilityDropResult DropCapabilities(uint64_t keepMask) {
  std::lock_guard<std::mutex> lock(gDropMutex);
  gPlan.keep = keepMask;
  gPlan.lastCap = ReadLastCap();
  gApplied.store(0);
  gFailedErrno.store(0);

  const int sig = SIGRTMIN + 3;
  struct sigaction act {}, old {};
  act.sa_handler = OnBroadcast;
  act.sa_flags = SA_RESTART;
  sigemptyset(&act.sa_mask);
  if (sigaction(sig, &act, &old) != 0) throw SysError{"sigaction", errno, "capability broadcast"};

  // Other threads first: the caller must keep CAP_SETPCAP until they have dropped their bounding sets
  // (only the thread's own sets change, but keep the order obvious and the caller last).
  pid_t self = static_cast<pid_t>(syscall(SYS_gettid));
  pid_t pid = getpid();
  int signalled = 0;
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) {
    int e = errno;
    sigaction(sig, &old, nullptr);
    throw SysError{"opendir", e, "/proc/self/task"};
  }
  while (dirent* ent = readdir(dir)) {
    pid_t tid = static_cast<pid_t>(atoi(ent->d_name));
    if (tid <= 0 || tid == self) continue;
    if (syscall(SYS_tgkill, pid, tid, sig) == 0) signalled++;
  }
  closedir(dir);
  // Wait (bounded) for every signalled thread to run its handler.
  // A thread answers within microseconds unless it blocks the signal (Node's inspector signal thread
  // does); do not hold the event loop long for those.
  for (int waited = 0; gApplied.load() < signalled && waited < 250; waited += 1) SleepMs(1);
  int others = gApplied.load();
  int err = ApplyPlanToThisThread();
  sigaction(sig, &old, nullptr);
  if (err == 0) err = gFailedErrno.load();
  if (err != 0) throw SysError{"capset", err, "dropping capabilities"};
  return CapabilityDropResult{others + 1, signalled - others};
}

}  // namespace credwatch
