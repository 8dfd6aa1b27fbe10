/**
 * A finding's redacted argv and evidence records are computed once per event and shared by every
 * finding on it (detect/event-redaction.ts). What is shared must be that event's and nobody else's:
 * another event (even of the same pid) gets its own, and no finding can change what the next is given.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { evidenceRecords, findingArgv } from '../../../src/detect/event-redaction';
import { createDetector } from '../../../src/detect/engine';
import { EventView } from '../../../src/enrich/event-view';
import { ProcessTable } from '../../../src/enrich/process-table';
import { interactiveExec } from './interactive-exec';

const T0 = 1_800_000_000_000;
const SECRET = 'Zq7W8kx3Lm9RtPw2Hh';

function view(argv: string[], serial: number, pid = 4242): EventView {
  const ev = interactiveExec(argv, serial, pid, T0 + serial);
  ev.records = [{ type: 'EXECVE', text: `audit(1.0:${serial}): argc=${argv.length} ${argv.map((a, i) => `a${i}="${a}"`).join(' ')}` }];
  const table = new ProcessTable();
  table.observe(ev);
  return new EventView(ev, { table });
}

describe('the redaction one event shares between its findings', () => {
  it("another event of the same pid is given its own argv and records, not the first event's", () => {
    const first = view(['curl', 'https://example.org/'], 1);
    const second = view(['curl', '--token', SECRET, 'https://example.org/'], 2);
    expect(findingArgv(first)).toEqual(['curl', 'https://example.org/']);
    expect(findingArgv(second)).toEqual(['curl', '--token', '[REDACTED]', 'https://example.org/']);
    const records = evidenceRecords(second).map((r) => r.text).join('\n');
    expect(records).toContain('a1="--token" a2="[REDACTED]"');
    expect(records).not.toContain(SECRET);
    expect(evidenceRecords(first).map((r) => r.text).join('\n')).not.toContain('--token');
  });

  it('each call hands out its own copy: a finding that changes its argv or records changes no other', () => {
    const v = view(['curl', '-H', `Authorization: Bearer ${SECRET}`, 'https://example.org/'], 3);
    const a = findingArgv(v) as string[];
    a[2] = 'changed';
    const r = evidenceRecords(v);
    (r[0] as { text: string }).text = 'changed';
    expect(findingArgv(v)).toEqual(['curl', '-H', 'Authorization: Bearer [REDACTED]', 'https://example.org/']);
    expect(evidenceRecords(v)[0]?.text).toMatch(/^audit\(1\.0:3\): argc=4 a0="curl" a1="-H" a2=[0-9A-F]+ a3=/);
    expect(findingArgv(v)).not.toBe(findingArgv(v));
  });

  it('several rules firing on one event all show the same redacted argv, and no finding holds the secret', () => {
    const d = createDetector({ host: 'node-a', incidents: false });
    const token = '/var/run/secrets/kubernetes.io/serviceaccount/token';
    const argv = ['sh', '-c', `cat ${token} | curl -H "Authorization: Bearer ${SECRET}" https://kubernetes.default.svc/api/v1/secrets`];
    const found = d.onEvent(view(argv, 4));
    expect(found.length).toBeGreaterThanOrEqual(2);
    const shown = found.map((f) => f.process?.argv);
    for (const s of shown) expect(s).toEqual(shown[0]);
    expect(shown[0]?.[2]).toContain('Bearer [REDACTED]');
    expect(JSON.stringify(found)).not.toContain(SECRET);
  });

  it("a rule's description is redacted once per rule set: a reload with another text shows the new one, still redacted", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-rule-text-'));
    fs.chmodSync(dir, 0o755);
    const write = (desc: string): void =>
      fs.writeFileSync(
        path.join(dir, 'r.yaml'),
        `rules:\n  - id: t1-curl\n    title: Test curl\n    description: ${desc}\n    severity: low\n    confidence: low\n    mitre: [T1552.007]\n    covers: [H6]\n    indicators:\n      - id: curl\n        weight: 2\n        anchor: true\n        match:\n          event: exec\n          argv: '^curl example-rule-text'\n    threshold: 2\n`,
        { mode: 0o644 },
      );
    write(`first, with api_key=${SECRET}`);
    const d = createDetector({ host: 'node-a', incidents: false, rulesDir: dir });
    const first = d.onEvent(view(['curl', 'example-rule-text', 'a'], 5)).find((f) => f.rule === 't1-curl');
    expect(first?.description).toBe('first, with api_key=[REDACTED]');
    write(`second, with api_key=${SECRET}x`);
    d.reload();
    const second = d.onEvent(view(['curl', 'example-rule-text', 'b'], 6)).find((f) => f.rule === 't1-curl');
    expect(second?.description).toBe('second, with api_key=[REDACTED]');
    fs.rmSync(dir, { recursive: true });
  });
});
