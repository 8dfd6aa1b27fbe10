/**
 * Which programs usually read a container's credentials. Every client-go workload re-reads its own
 * token, so a token read alone is noise; a read by a program that has not read credentials in that
 * container before, after some other program established the baseline, is worth a point
 * (DETECTIONS.md: "alert on reader identity ... or on first/unusual reader per pod").
 * Bounded: at most `maxContainers` containers and `maxReaders` programs each.
 */
export class ReaderBaseline {
  private readonly seen = new Map<string, Set<string>>();

  constructor(
    private readonly maxContainers = 4096,
    private readonly maxReaders = 32,
  ) {}

  /**
   * Records a read and says whether it was novel: the container had readers before and this
   * program is not one of them. The first reader of a container sets the baseline (not novel).
   */
  observe(containerId: string, program: string): boolean {
    let readers = this.seen.get(containerId);
    if (!readers) {
      readers = new Set([program]);
      this.seen.set(containerId, readers);
      if (this.seen.size > this.maxContainers) {
        const oldest = this.seen.keys().next();
        if (!oldest.done) this.seen.delete(oldest.value);
      }
      return false;
    }
    if (readers.has(program)) return false;
    if (readers.size < this.maxReaders) readers.add(program);
    return true;
  }
}
