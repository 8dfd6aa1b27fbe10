/**
 * The compiled validator gives the zod schema's answers: on findings mutated at random (a field
 * removed, retyped, set to a length or number at a bound, an unknown key added) both accept or both
 * refuse; accepted, both make the same value; refused for one wrong field, both name that field.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ingestedFindingSchema } from '../../../src/collector/finding-schema';
import { findingProblem } from '../../../src/collector/finding-validator';
import { fullFinding } from '../../helpers/full-finding';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
const wire = (v: unknown): Json => JSON.parse(JSON.stringify(v)) as Json;

/** Every path into a value (object keys and array indices), the root excluded. */
function paths(v: Json, at: (string | number)[] = []): (string | number)[][] {
  if (v === null || typeof v !== 'object') return [];
  const keys: (string | number)[] = Array.isArray(v) ? v.map((_, i) => i) : Object.keys(v);
  return keys.flatMap((k) => [[...at, k], ...paths((v as Record<string | number, Json>)[k]!, [...at, k])]);
}

const BASE = wire(fullFinding());
const BARE = wire({ id: 'b', rule: 'r', title: 't', severity: 'low', time: '2026-11-22T12:00:00Z', host: 'h', source: 'audit' });
const LENGTHS = [0, 1, 40, 41, 63, 64, 65, 127, 128, 129, 200, 201, 253, 254, 256, 257, 1024, 1025];
const value: fc.Arbitrary<Json> = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>,
  fc.constantFrom(...LENGTHS).map((n) => 'x'.repeat(n)),
  fc.constantFrom(...LENGTHS, 2 ** 31, 2 ** 31 + 1, 2 ** 53 - 1, 2 ** 53, -(2 ** 53), 1e6, 1e6 + 1, 1.5, -1),
  fc.constantFrom(...[0, 63, 64, 65, 256, 257].map((n) => Array.from({ length: n }, () => 'x'))),
  fc.constantFrom('2026-11-22T12:00:00Z', '2026-11-22T12:00:00.123456789+01:00', '2026-13-22T12:00:00Z', '2026-11-22 12:00:00Z', '2026-11-22T12:00:00.1234567890Z', 'pod-token', 'inode', 'file', 'bound', 'critical'),
);

type Mutation = { at: number; kind: 'delete' | 'set' | 'extra'; value: Json };
const mutation: fc.Arbitrary<Mutation> = fc.record({ at: fc.nat(), kind: fc.constantFrom('delete', 'set', 'set', 'extra'), value });

/** Applies a mutation at one of the value's paths (or the root, for an unknown key). */
function mutate(v: Json, m: Mutation): (string | number)[] {
  // A copy: generated constants are shared between runs, and a later mutation may reach into this one.
  const put = structuredClone(m.value);
  const all = paths(v);
  const path = all.length === 0 ? [] : all[m.at % all.length]!;
  const parent = path.slice(0, -1).reduce<Json>((o, k) => (o as Record<string | number, Json>)[k]!, v) as Record<string | number, Json>;
  const key = path[path.length - 1]!;
  if (m.kind === 'extra') {
    const target = (parent[key] !== null && typeof parent[key] === 'object' && !Array.isArray(parent[key]) ? parent[key] : v) as Record<string, Json>;
    target['zz_unknown'] = put;
  } else if (m.kind === 'delete' && !Array.isArray(parent)) delete parent[key];
  else parent[key] = put;
  return path;
}

const fieldOf = (problem: string): string | null => /^field "([^"]*)"/.exec(problem)?.[1] ?? null;

function compare(start: Json, ms: Mutation[]): void {
  const v = structuredClone(start);
  for (const m of ms) mutate(v, m);
  const z = ingestedFindingSchema.safeParse(structuredClone(v));
  const mine = structuredClone(v);
  const problem = findingProblem(mine);
  expect(problem === null, `zod ${z.success ? 'accepts' : `refuses (${JSON.stringify(z.error?.issues[0])})`}, compiled says ${problem}`).toBe(z.success);
  if (z.success) expect(mine).toStrictEqual(z.data);
  else if (ms.length === 1 && z.error.issues.length === 1) expect(fieldOf(problem!)).toBe(z.error.issues[0]!.path.join('.') || null);
}

describe('compiled finding validator', () => {
  it('accepts the full finding and a bare one as zod does, filling the same defaults', () => {
    compare(BASE, []);
    compare(BARE, []);
  });

  it('agrees with the zod schema on randomly mutated findings', () => {
    fc.assert(
      fc.property(fc.constantFrom(BASE, BARE), fc.array(mutation, { minLength: 1, maxLength: 3 }), (start, ms) => compare(start, ms)),
      { numRuns: 3000 },
    );
  });

  it('names the field and the reason, echoing no input', () => {
    const f = (over: Record<string, Json>) => findingProblem({ ...structuredClone(BASE as Record<string, Json>), ...over });
    expect(f({ id: '' })).toBe('field "id": must NOT have fewer than 1 characters');
    expect(f({ source: 'syslog' })).toBe('field "source": must be one of "audit", "kube-audit"');
    expect(f({ time: 'yesterday' })).toBe('field "time": must be an ISO 8601 time with a zone, of a date that exists');
    expect(f({ container: 'x' })).toBe('field "container": must be object');
    expect(f({ severity: undefined as unknown as Json })).toBe('field "severity": is required');
    expect(f({ host: `secret-${'h'.repeat(300)}` })).not.toMatch(/secret/);
    expect(findingProblem([1])).toBe('not a JSON object');
  });
});
