/**
 * io_uring operation numbers (enum io_uring_op, include/uapi/linux/io_uring.h) and names: the
 * "syscalls" of the kernel's io_uring audit filter list (AUDIT_FILTER_URING_EXIT, since 5.16) and
 * the `uring_op=` of URINGOP records. Names are the enum's without IORING_OP_, lower case, as
 * audit-userspace's uringop_table spells them. 0..48 from the uapi header of this machine's
 * linux-libc-dev; 49..62 from the kernel's own header (6.18).
 */
const NAMES = [
  'nop', 'readv', 'writev', 'fsync', 'read_fixed', 'write_fixed', 'poll_add', 'poll_remove', 'sync_file_range',
  'sendmsg', 'recvmsg', 'timeout', 'timeout_remove', 'accept', 'async_cancel', 'link_timeout', 'connect',
  'fallocate', 'openat', 'close', 'files_update', 'statx', 'read', 'write', 'fadvise', 'madvise', 'send', 'recv',
  'openat2', 'epoll_ctl', 'splice', 'provide_buffers', 'remove_buffers', 'tee', 'shutdown', 'renameat',
  'unlinkat', 'mkdirat', 'symlinkat', 'linkat', 'msg_ring', 'fsetxattr', 'setxattr', 'fgetxattr', 'getxattr',
  'socket', 'uring_cmd', 'send_zc', 'sendmsg_zc', 'read_multishot', 'waitid', 'futex_wait', 'futex_wake',
  'futex_waitv', 'fixed_fd_install', 'ftruncate', 'bind', 'listen', 'recv_zc', 'epoll_wait', 'readv_fixed',
  'writev_fixed', 'pipe',
] as const;

export const URING_OP_NAMES: ReadonlyMap<number, string> = new Map(NAMES.map((n, i) => [i, n]));
export const URING_OP_BY_NAME: ReadonlyMap<string, number> = new Map(NAMES.map((n, i) => [n, i]));

export const IORING_OP_CONNECT = 16;
export const IORING_OP_OPENAT = 18;
export const IORING_OP_OPENAT2 = 28;

export function uringOpName(op: number | null): string | null {
  return op === null ? null : (URING_OP_NAMES.get(op) ?? null);
}
