/**
 * An incident is stored again under its id with a higher revision (src/store/findings.ts): the row and
 * its evidence are replaced, and the new row is pending again for every output (at-least-once updates).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type FindingStore } from '../../../src/store';
import { makeFinding } from './fixtures';

let dir: string;
let s: FindingStore;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-upsert-'));
  s = openStore(path.join(dir, 'findings.db'));
});
afterEach(() => {
  s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function evidence(n: number) {
  return Array.from({ length: n }, (_, i) => ({ event_id: `1.0:${i}`, time: '2026-01-01T00:00:00.000Z', role: `r${i}`, records: [{ type: 'SYSCALL', text: `t${i}` }] }));
}

describe('incident upsert', () => {
  it('a higher revision replaces the stored finding and its evidence; one row per id', () => {
    const base = makeFinding();
    expect(s.insertFindings([{ ...base, revision: 1, count: 1, evidence: evidence(1) }])).toBe(1);
    expect(s.insertFindings([{ ...base, revision: 2, count: 5, rules: ['a', 'b'], evidence: evidence(3) }])).toBe(1);
    const got = s.getFinding(base.id);
    expect(got?.revision).toBe(2);
    expect(got?.count).toBe(5);
    expect(got?.rules).toEqual(['a', 'b']);
    expect(got?.evidence.map((e) => e.event_id)).toEqual(['1.0:0', '1.0:1', '1.0:2']);
    expect((s.db.prepare('SELECT count(*) AS n FROM findings').get() as { n: number }).n).toBe(1);
    expect((s.db.prepare('SELECT count(*) AS n FROM evidence').get() as { n: number }).n).toBe(3);
  });

  it('an equal or lower revision is skipped like any repeat (a late batch cannot roll an incident back)', () => {
    const base = makeFinding();
    s.insertFindings([{ ...base, revision: 3, count: 9 }]);
    expect(s.insertFindings([{ ...base, revision: 3, count: 1 }, { ...base, revision: 2, count: 1 }])).toBe(0);
    expect(s.getFinding(base.id)?.count).toBe(9);
  });

  it('both revisions in one batch: the later one wins', () => {
    const base = makeFinding();
    expect(s.insertFindings([{ ...base, revision: 1, count: 1 }, { ...base, revision: 2, count: 2 }])).toBe(2);
    expect(s.getFinding(base.id)?.count).toBe(2);
  });

  it('an update is pending again for an output that acknowledged the first revision', () => {
    const base = makeFinding();
    s.insertFindings([{ ...base, revision: 1 }]);
    const [first] = s.outbox.pending('collector', 10);
    s.outbox.ack('collector', first!.seq);
    expect(s.outbox.depth('collector')).toBe(0);
    s.insertFindings([{ ...base, revision: 2, count: 7 }]);
    const again = s.outbox.pending('collector', 10);
    expect(again.map((p) => [p.finding.id, p.finding.revision])).toEqual([[base.id, 2]]);
    expect(again[0]!.seq).toBeGreaterThan(first!.seq);
  });

  it('findings without a revision keep the old idempotent insert', () => {
    const base = makeFinding();
    expect(s.insertFindings([base])).toBe(1);
    expect(s.insertFindings([{ ...base, title: 'changed' }])).toBe(0);
    expect(s.getFinding(base.id)?.title).toBe(base.title);
  });
});
