/*
 * uring-read: reads one file through io_uring only (IORING_OP_OPENAT, then IORING_OP_READ), the
 * path arriving on stdin so that it is in no argv, and writes the byte count (not the bytes) to
 * stdout. With "-c HOST PORT" it instead connects through IORING_OP_CONNECT on
 * a socket made by socket(2). Raw syscalls, no liburing: what an attacker's static binary would do
 * (ARMO's "curing"). Built by the tests (test/helpers/uring.ts): cc -O2 -o uring-read uring-read.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

struct ring {
  int fd;
  unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
  struct io_uring_sqe *sqes;
  struct io_uring_cqe *cqes;
};

static int ring_init(struct ring *r) {
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  r->fd = (int)syscall(__NR_io_uring_setup, 4, &p);
  if (r->fd < 0) return -1;
  size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  char *sq = mmap(0, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQ_RING);
  char *cq = mmap(0, cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_CQ_RING);
  r->sqes = mmap(0, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
  if (sq == MAP_FAILED || cq == MAP_FAILED || r->sqes == MAP_FAILED) return -1;
  r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
  r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
  r->sq_array = (unsigned *)(sq + p.sq_off.array);
  r->cq_head = (unsigned *)(cq + p.cq_off.head);
  r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
  r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
  r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
  return 0;
}

/* Submits one SQE and waits for its completion; returns cqe->res. */
static int ring_run(struct ring *r, const struct io_uring_sqe *sqe) {
  unsigned tail = *r->sq_tail;
  unsigned idx = tail & *r->sq_mask;
  r->sqes[idx] = *sqe;
  r->sq_array[idx] = idx;
  __atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
  if (syscall(__NR_io_uring_enter, r->fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0) return -1000;
  unsigned head = __atomic_load_n(r->cq_head, __ATOMIC_ACQUIRE);
  if (head == __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE)) return -1001;
  int res = r->cqes[head & *r->cq_mask].res;
  __atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
  return res;
}

int main(int argc, char **argv) {
  struct ring r;
  if (ring_init(&r) != 0) {
    perror("io_uring_setup");
    return 2;
  }
  struct io_uring_sqe sqe;
  if (argc == 4 && strcmp(argv[1], "-c") == 0) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[3]))};
    inet_pton(AF_INET, argv[2], &sa.sin_addr);
    memset(&sqe, 0, sizeof sqe);
    sqe.opcode = IORING_OP_CONNECT;
    sqe.fd = s;
    sqe.addr = (uint64_t)(uintptr_t)&sa;
    sqe.off = sizeof sa;
    int res = ring_run(&r, &sqe);
    printf("connect %d\n", res);
    return res == 0 ? 0 : 1;
  }
  char path[4096];
  if (!fgets(path, sizeof path, stdin)) return 2;
  path[strcspn(path, "\n")] = 0;
  memset(&sqe, 0, sizeof sqe);
  sqe.opcode = IORING_OP_OPENAT;
  sqe.fd = AT_FDCWD;
  sqe.addr = (uint64_t)(uintptr_t)path;
  sqe.open_flags = O_RDONLY;
  int fd = ring_run(&r, &sqe);
  if (fd < 0) {
    fprintf(stderr, "openat: %s\n", strerror(-fd));
    return 1;
  }
  static char buf[65536];
  memset(&sqe, 0, sizeof sqe);
  sqe.opcode = IORING_OP_READ;
  sqe.fd = fd;
  sqe.addr = (uint64_t)(uintptr_t)buf;
  sqe.len = sizeof buf;
  int n = ring_run(&r, &sqe);
  printf("read %d\n", n);
  return n >= 0 ? 0 : 1;
}
