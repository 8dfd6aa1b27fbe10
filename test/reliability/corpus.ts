/**
 * Real records to mutate: every auditd log line and every Kubernetes audit JSON line in
 * test/fixtures, plus fast-check arbitraries that damage them the way a broken disk, a cut
 * netlink datagram or an attacker would (byte flips, truncation, duplication, splicing, huge values).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';

const FIXTURES = join(__dirname, '../fixtures');

function walk(dir: string, accept: (name: string) => boolean, out: string[] = []): string[] {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name !== 'golden') walk(p, accept, out);
    } else if (accept(name)) out.push(p);
  }
  return out;
}

function lines(files: string[], keep: (l: string) => boolean): string[] {
  const out: string[] = [];
  for (const f of files) for (const l of readFileSync(f, 'latin1').split('\n')) if (keep(l)) out.push(l);
  return out;
}

let auditCache: string[] | null = null;
let kubeCache: string[] | null = null;

/** auditd log lines (`type=... msg=audit(...)`), from all audit fixtures. */
export function auditLines(): string[] {
  auditCache ??= lines(walk(join(FIXTURES, 'audit'), (n) => n.endsWith('.log')), (l) => l.includes('audit('));
  return auditCache;
}

/** Kubernetes audit JSON lines (one Event or EventList per line). */
export function kubeLines(): string[] {
  kubeCache ??= lines(
    walk(join(FIXTURES, 'kube'), (n) => n.endsWith('.log') || n.endsWith('.json') || n.endsWith('.jsonl')),
    (l) => l.startsWith('{'),
  );
  return kubeCache;
}

export type Mutation =
  | { kind: 'flip'; at: number; byte: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'duplicate'; at: number; len: number }
  | { kind: 'splice'; at: number; other: number; from: number }
  | { kind: 'huge'; at: number; size: number; byte: number }
  | { kind: 'delete'; at: number; len: number };

/** A mutation with positions as fractions of the line, so it applies to any line. */
export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 200 }) }),
  fc.record({ kind: fc.constant('splice' as const), at: fc.nat(), other: fc.nat(), from: fc.nat() }),
  fc.record({ kind: fc.constant('huge' as const), at: fc.nat(), size: fc.integer({ min: 1, max: 200_000 }), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 50 }) }),
);

/** Applies mutations to a line; `pool` supplies the other line for splices. */
export function mutate(line: string, muts: readonly Mutation[], pool: readonly string[]): string {
  let s = line;
  for (const m of muts) {
    const at = s.length === 0 ? 0 : m.at % (s.length + 1);
    switch (m.kind) {
      case 'flip':
        s = s.slice(0, at) + String.fromCharCode(m.byte) + s.slice(at + 1);
        break;
      case 'truncate':
        s = s.slice(0, at);
        break;
      case 'duplicate':
        s = s.slice(0, at + m.len) + s.slice(at, at + m.len) + s.slice(at);
        break;
      case 'splice': {
        const o = pool[m.other % pool.length] ?? '';
        s = s.slice(0, at) + o.slice(o.length === 0 ? 0 : m.from % o.length);
        break;
      }
      case 'huge':
        s = s.slice(0, at) + String.fromCharCode(m.byte).repeat(m.size) + s.slice(at);
        break;
      case 'delete':
        s = s.slice(0, at) + s.slice(at + m.len);
        break;
    }
  }
  return s;
}

/** A mutated line from `pool`. */
export function mutatedLineArb(pool: readonly string[]): fc.Arbitrary<string> {
  return fc
    .tuple(fc.nat({ max: pool.length - 1 }), fc.array(mutationArb, { minLength: 0, maxLength: 4 }))
    .map(([i, muts]) => mutate(pool[i] as string, muts, pool));
}

/** Random bytes read as latin1 (what a log reader would make of garbage). */
export const randomBytesLineArb: fc.Arbitrary<string> = fc
  .uint8Array({ minLength: 0, maxLength: 2000 })
  .map((b) => Buffer.from(b).toString('latin1'));
