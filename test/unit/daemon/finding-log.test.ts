/**
 * The agent's finding log (src/daemon/finding-log.ts): a line for each new incident and each escalation
 * (a new rule, a higher severity), none for an update that only counts more of the same.
 */
import { describe, expect, it } from 'vitest';
import { sink } from './log-sink';
import { FindingLog } from '../../../src/daemon/finding-log';
import { createLogger } from '../../../src/daemon/logger';
import type { Finding } from '../../../src/model/finding';
import { makeFinding } from '../store/fixtures';


describe('FindingLog', () => {
  it('logs revision 1 and escalations, not plain count updates', () => {
    const s = sink();
    const log = new FindingLog(createLogger('info', s.stream));
    const f: Finding = { ...makeFinding(), severity: 'medium', rule: 'h8', rules: ['h8'], revision: 1, count: 1 };
    log.log(f);
    for (let r = 2; r <= 50; r++) log.log({ ...f, revision: r, count: r }); // a storm of repeats
    log.log({ ...f, revision: 51, count: 51, rules: ['h8', 'h2'] }); // a new rule
    log.log({ ...f, revision: 52, count: 52, rules: ['h8', 'h2'], severity: 'high' }); // a higher severity
    log.log({ ...f, revision: 53, count: 60, rules: ['h8', 'h2'], severity: 'high' });
    expect(s.lines.map((l) => [l.revision, l.count, l.severity, (l.rules as string[]).length])).toEqual([
      [1, 1, 'medium', 1],
      [51, 51, 'medium', 2],
      [52, 52, 'high', 2],
    ]);
  });

  it('findings without revisions (API-server findings) are each logged; tracking is bounded', () => {
    const s = sink();
    const log = new FindingLog(createLogger('info', s.stream), 2);
    const a = { ...makeFinding(), revision: 1 };
    const b = { ...makeFinding(), revision: 1 };
    const c = { ...makeFinding(), revision: 1 };
    log.log(makeFinding());
    log.log(a);
    log.log(b);
    log.log(c); // a is forgotten: its next update is logged again rather than never
    log.log({ ...a, revision: 2 });
    log.log({ ...c, revision: 2 });
    expect(s.lines.map((l) => l.finding)).toEqual([expect.any(String), a.id, b.id, c.id, a.id]);
  });
});
