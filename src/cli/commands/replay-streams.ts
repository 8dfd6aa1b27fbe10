/**
 * Which replay inputs are independent (`replay --jobs N`, replay-parallel.ts): files belong to one
 * stream, replayed in order by one worker, when they share a rotation name or a node. Everything a
 * stream needs from an earlier file (an event's records across a rotation boundary, a process tree,
 * a sequence rule's window) is then in the same worker; streams share nothing but the parent's
 * Kubernetes join.
 *  - Rotation name: the directory and the file name without `.gz` and a rotation suffix (`.1`,
 *    `-20261201`): `audit.log`, `audit.log.1` and `audit.log.2.gz` of one directory are one stream.
 *  - Node: the `node=` name on a file's first record (auditd's name_format): logs of one host exported
 *    under unrelated names are one stream. A file without one is grouped by its name only.
 *  - stdin (`-`) is a stream of its own (it can be given once).
 */
import * as path from 'node:path';

export interface StreamInput {
  file: string;
  /** The first record's node= name, or null (none, or stdin). */
  node: string | null;
}

const ROTATION_SUFFIX = /(?:\.\d{1,6}|-\d{8}(?:\d{2})?)$/;

/** The name every rotation of a log shares: absolute directory + base name without .gz and suffix. */
export function rotationName(file: string): string {
  if (file === '-') return '-';
  const base = path.basename(file).replace(/\.gz$/i, '').replace(ROTATION_SUFFIX, '');
  return path.join(path.resolve(path.dirname(file)), base);
}

const NODE_PREFIX = /^node=(\S+) /;

/** The node= name of the first line of a log's head (decompressed), or null. */
export function firstNode(head: string): string | null {
  const nl = head.indexOf('\n');
  const m = NODE_PREFIX.exec(nl < 0 ? head : head.slice(0, nl));
  return m ? m[1]! : null;
}

/**
 * The streams as lists of input indices: streams in the order of their first input, each stream's
 * inputs in the order given.
 */
export function groupStreams(inputs: readonly StreamInput[]): number[][] {
  const parent = inputs.map((_, i) => i);
  const root = (i: number): number => {
    while (parent[i] !== i) i = parent[i] = parent[parent[i]!]!;
    return i;
  };
  // Union with the first input of the same key; the smaller index becomes the root, so a stream's
  // root is its first input.
  const firstOf = new Map<string, number>();
  const join = (key: string, i: number): void => {
    const j = firstOf.get(key);
    if (j === undefined) return void firstOf.set(key, i);
    const [a, b] = [root(i), root(j)];
    if (a !== b) parent[Math.max(a, b)] = Math.min(a, b);
  };
  inputs.forEach((inp, i) => {
    join(`file:${rotationName(inp.file)}`, i);
    if (inp.node !== null) join(`node:${inp.node}`, i);
  });
  const streams = new Map<number, number[]>();
  inputs.forEach((_, i) => {
    const r = root(i);
    const s = streams.get(r);
    if (s) s.push(i);
    else streams.set(r, [i]);
  });
  return [...streams.entries()].sort((a, b) => a[0] - b[0]).map(([, s]) => s);
}
