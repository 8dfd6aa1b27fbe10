/**
 * The pipeline's bounded argv (src/audit/argv-bound.ts) changes cost, not results: the same hostile
 * execs give byte-identical findings whether the stages see the exact argv or the bounded one, and no
 * secret past, inside or across the bound reaches a finding.
 */
import { describe, expect, it } from 'vitest';
import { ARG_HEAD_CHARS, ARG_TAIL_CHARS } from '../../../src/audit/argv-bound';
import type { AuditEvent } from '../../../src/audit/event';
import { Reassembler, REPLAY_REASSEMBLY } from '../../../src/audit/reassembler';
import { MAX_ARG_CHARS } from '../../../src/detect/bound';
import { FindingCap } from '../../../src/detect/finding-cap';
import type { Finding } from '../../../src/model/finding';
import { AuditPipeline } from '../../../src/pipeline/audit-pipeline';
import { createHostStages } from '../../../src/pipeline/host-stages';
import { JWT, hostCases } from '../../helpers/secret-forms';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { hostileExecLines } = require('../../../bench/hostile-exec.js') as { hostileExecLines: (e: { serial: number; argv: (string | Buffer)[]; exe?: string; uid?: number }) => string };

const lines = (argvs: (string | Buffer)[][]): string[] =>
  argvs.flatMap((argv, i) => hostileExecLines({ serial: i + 1, argv, exe: `/usr/bin/${String(argv[0])}`, uid: 0 }).trimEnd().split('\n'));

/** The findings of the stages fed the exact-built events (what the pipeline did before the bound). */
function exactFindings(text: string[]): Finding[] {
  const stages = createHostStages({ host: 'lab', users: null });
  const cap = new FindingCap();
  const out: Finding[] = [];
  const r = new Reassembler({ ...REPLAY_REASSEMBLY, argv: 'exact', onEvent: (ev: AuditEvent) => out.push(...cap.applyAll(stages.onAuditEvent(ev))) });
  for (const t of text) r.push({ type: 0, text: t }, null);
  r.flush();
  return out;
}

/** The pipeline as the agent and replay run it (bounded argv). */
function pipelineFindings(text: string[]): { findings: Finding[]; cutEvents: number } {
  const cap = new FindingCap();
  const out: Finding[] = [];
  const p = new AuditPipeline({ stages: createHostStages({ host: 'lab', users: null }), live: false, reassembler: REPLAY_REASSEMBLY, onFindings: (fs) => out.push(...cap.applyAll(fs)) });
  p.pushBatch(text.map((t) => ({ type: 0, text: t })));
  p.flush();
  return { findings: out, cutEvents: p.stats.argvCutEvents };
}

const pad = (n: number, c = 'p'): string => c.repeat(n);

describe('bounded argv through detection', () => {
  it('every issue-15 secret form with 120 KB arguments around it: the same findings as the exact argv, and no secret', () => {
    const cases = hostCases((i) => `Zq${i}W8kx3Lm${i}Rt`);
    const argvs = cases.flatMap((c) => [
      [c.argv[0] as string, pad(120_000), ...c.argv.slice(1)],
      [...c.argv, pad(120_000)],
      // The form inside one long argument, at its end (the part matching sees of it).
      [c.argv[0] as string, `${pad(120_000)} ${c.argv.slice(1).join(' ')}`],
    ]);
    const text = lines(argvs);
    const exact = exactFindings(text);
    const { findings, cutEvents } = pipelineFindings(text);
    expect(cutEvents).toBe(argvs.length);
    expect(findings.length).toBeGreaterThan(5);
    expect(JSON.stringify(findings)).toBe(JSON.stringify(exact));
    const all = JSON.stringify(findings);
    for (const c of cases) {
      expect(all).not.toContain(c.secret);
      expect(all).not.toContain(c.secret.slice(0, 8));
    }
  });

  it('a bearer token at byte 1,000,000 of an argument, or across the head or tail bound: found, same finding, never shown', () => {
    const header = `Authorization: Bearer ${JWT}`;
    const argvs = [
      ['curl', '-H', `${pad(1_000_000)}${header}`, 'https://10.96.0.1/api/v1/secrets'],
      ['curl', '-H', `${pad(ARG_HEAD_CHARS - 10)}${header}${pad(50_000, 'q')}`, 'https://10.96.0.1/api'],
      ['curl', '-H', `${pad(MAX_ARG_CHARS - 10)}${header}${pad(50_000, 'q')}`, 'https://10.96.0.1/api'],
      ['curl', '-H', `${pad(50_000)}${header}${pad(ARG_TAIL_CHARS - 20, 'q')}`, 'https://10.96.0.1/api'],
      ['curl', `${pad(200_000)}https://10.96.0.1/api/v1/namespaces/d/pods/p/exec?command=Authorization%3A%20Bearer%20${JWT}`],
    ];
    const text = lines(argvs);
    const exact = exactFindings(text);
    const { findings } = pipelineFindings(text);
    expect(findings.length).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(findings)).toBe(JSON.stringify(exact));
    const all = JSON.stringify(findings);
    expect(all).not.toContain(JWT.slice(0, 24));
    expect(all).not.toContain(JWT.slice(-24));
    // The marker says how much of the argument is not shown, from its exact length.
    const first = findings.find((f) => f.process?.argv?.[2]?.startsWith('ppp'));
    expect(first?.process?.argv?.[2]).toBe(`${pad(MAX_ARG_CHARS)}…[+${1_000_000 + header.length - MAX_ARG_CHARS} bytes]`);
  });
});
