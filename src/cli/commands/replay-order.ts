/**
 * Multi-file replay reads its inputs in recorded time order, whatever order they are named in
 * (`replay audit.log audit.log.1` names the newer file first): each input's first timestamp, from
 * the bytes already peeked for the format check, decides. An input whose first timestamp cannot be
 * read keeps its place. Sequence rules and the process tree depend on that order.
 */

const AUDIT_STAMP = /msg=audit\((\d{1,12})\.(\d{1,3}):\d+\)/;
const KUBE_STAMP = /"(?:requestReceivedTimestamp|stageTimestamp|timestamp)"\s*:\s*"([^"]{10,40})"/;

/** The first record's time in ms, or null. */
export function firstTimeMs(head: string): number | null {
  const a = AUDIT_STAMP.exec(head.slice(0, 4096));
  if (a) return Number(a[1]) * 1000 + Number(a[2]!.padEnd(3, '0'));
  const k = KUBE_STAMP.exec(head.slice(0, 4096));
  if (k) {
    const t = Date.parse(k[1]!);
    return Number.isNaN(t) ? null : t;
  }
  return null;
}

/** `items` with those of known time in time order, in the slots they held; the others where they were. */
export function inTimeOrder<T>(items: readonly T[], timeOf: (x: T) => number | null): T[] {
  const known = items.map((x, i) => ({ x, i, t: timeOf(x) })).filter((e): e is { x: T; i: number; t: number } => e.t !== null);
  const sorted = [...known].sort((a, b) => a.t - b.t || a.i - b.i);
  const out = [...items];
  known.forEach((slot, k) => (out[slot.i] = sorted[k]!.x));
  return out;
}
