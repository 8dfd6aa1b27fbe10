/*
 * credwatch load generator: fork+exec of /bin/true, opens of a path and unix-socket connects at a
 * fixed rate (or as fast as it can), for a fixed time. Prints one JSON line with what it achieved.
 *
 *   loadgen --rate 1600 --seconds 60 [--workers 1] [--open PATH] [--unix PATH] [--mix E:O:C] [--count N]
 *
 * --rate is operations per second over all workers (0 = as fast as possible). --mix weights exec,
 * open and connect operations (default 1:0:0, exec only). Pacing uses absolute deadlines on
 * CLOCK_MONOTONIC so a slow iteration is caught up instead of silently lowering the rate. --count stops
 * after N operations in all (a fixed-size burst), or at --seconds, whichever comes first.
 * --child-connect makes each exec operation a new process that connects to the --unix path and exits
 * (fork, connect, _exit; no exec): the alert-storm load of bench/live-storm.js.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct counts { long exec, open, connect, errors; };

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_until(double t) {
  struct timespec ts;
  ts.tv_sec = (time_t)t;
  ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
}

static int do_exec(void) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    char *argv[] = {"/bin/true", "credwatch-loadgen", NULL};
    char *envp[] = {NULL};
    execve("/bin/true", argv, envp);
    _exit(127);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  return 0;
}

static int do_connect(const char *path);

/* A new process whose only act is one connect() to `path` (a true H7 hit when it is a runtime socket). */
static int do_child_connect(const char *path) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    do_connect(path);
    _exit(0);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  return 0;
}

static int do_open(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  close(fd);
  return 0;
}

static int do_connect(const char *path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  strncpy(sa.sun_path, path, sizeof sa.sun_path - 1);
  /* A refused connect is still an audited connect() syscall; only the syscall matters here. */
  connect(fd, (struct sockaddr *)&sa, sizeof sa);
  close(fd);
  return 0;
}

int main(int argc, char **argv) {
  double rate = 0, seconds = 10;
  long count = 0;
  int workers = 1, we = 1, wo = 0, wc = 0, child_connect = 0;
  const char *open_path = "/etc/hostname", *unix_path = "/run/credwatch-loadgen.sock";
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--rate") && i + 1 < argc) rate = atof(argv[++i]);
    else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
    else if (!strcmp(argv[i], "--workers") && i + 1 < argc) workers = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--count") && i + 1 < argc) count = atol(argv[++i]);
    else if (!strcmp(argv[i], "--open") && i + 1 < argc) open_path = argv[++i];
    else if (!strcmp(argv[i], "--unix") && i + 1 < argc) unix_path = argv[++i];
    else if (!strcmp(argv[i], "--child-connect")) child_connect = 1;
    else if (!strcmp(argv[i], "--mix") && i + 1 < argc) {
      if (sscanf(argv[++i], "%d:%d:%d", &we, &wo, &wc) != 3 || we + wo + wc <= 0) {
        fprintf(stderr, "loadgen: --mix wants E:O:C\n");
        return 2;
      }
    } else {
      fprintf(stderr, "usage: loadgen --rate N --seconds S [--workers W] [--open PATH] [--unix PATH] [--mix E:O:C] [--count N] [--child-connect]\n");
      return 2;
    }
  }
  if (workers < 1) workers = 1;
  struct counts *shared = mmap(NULL, sizeof(struct counts) * (size_t)workers, PROT_READ | PROT_WRITE,
                               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED) { perror("mmap"); return 1; }
  memset(shared, 0, sizeof(struct counts) * (size_t)workers);

  double start = now_s();
  for (int w = 0; w < workers; w++) {
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 1; }
    if (pid > 0) continue;
    struct counts *c = &shared[w];
    double per_worker = rate > 0 ? rate / workers : 0;
    double interval = per_worker > 0 ? 1.0 / per_worker : 0;
    double next = start + (interval * w) / workers, end = start + seconds;
    int cycle = we + wo + wc;
    long my_count = count > 0 ? count / workers + (w < count % workers ? 1 : 0) : -1;
    for (long n = 0;; n++) {
      double t = now_s();
      if (t >= end || n == my_count) break;
      if (interval > 0) { if (next > t) sleep_until(next); next += interval; }
      int slot = (int)(n % cycle), rc;
      if (slot < we) { rc = child_connect ? do_child_connect(unix_path) : do_exec(); if (!rc) c->exec++; }
      else if (slot < we + wo) { rc = do_open(open_path); if (!rc) c->open++; }
      else { rc = do_connect(unix_path); if (!rc) c->connect++; }
      if (rc) c->errors++;
    }
    _exit(0);
  }
  for (int w = 0; w < workers; w++) wait(NULL);
  double elapsed = now_s() - start;
  struct counts total = {0, 0, 0, 0};
  for (int w = 0; w < workers; w++) {
    total.exec += shared[w].exec; total.open += shared[w].open;
    total.connect += shared[w].connect; total.errors += shared[w].errors;
  }
  long ops = total.exec + total.open + total.connect;
  printf("{\"seconds\":%.3f,\"target_rate\":%.0f,\"ops\":%ld,\"rate\":%.1f,\"exec\":%ld,\"open\":%ld,\"connect\":%ld,\"errors\":%ld}\n",
         elapsed, rate, ops, ops / elapsed, total.exec, total.open, total.connect, total.errors);
  return 0;
}
