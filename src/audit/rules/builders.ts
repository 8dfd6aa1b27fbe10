/** Rule text credwatch builds for itself (the watches of watched objects on every syscall route). */

/**
 * A `-w` watch does not see io_uring: IORING_OP_OPENAT never enters open(2), and the kernel checks
 * only its io_uring filter list for it (measured on 6.18: a read watch stays silent, a rule on that
 * list with `-F dir=`/`-F path=` reports URINGOP + PATH). `-F perm=` is refused on that list, so the
 * rule names the ops instead. Same key as the watch: a hit is the same object (WatchedObjects).
 */
export function uringWatchRule(target: string, key: string, isDir: boolean): string {
  return `-a always,io_uring -S openat,openat2 -F ${isDir ? 'dir' : 'path'}=${target} -F key=${key}`;
}
